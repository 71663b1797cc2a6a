"""affiliate_borrower on a real SQLite store: a library that proves the borrower is present
(their national id, or birth date and PIN) is affiliated, fed the record and audited; a wrong
proof changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.borrower import Affiliation
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod, Pin
from nlr_server.domain.errors import NotFound, PermissionDenied
from nlr_server.domain.lockout import LoginSubject
from nlr_server.domain.views import BorrowerView
from nlr_server.usecases.borrowers import (
    BirthDateAndPin,
    BorrowerKey,
    affiliate_borrower,
    get_borrower,
)
from nlr_server.usecases.credentials import set_pin
from usecases.usecase_harness import (
    BERGEN,
    CERTIFICATE,
    NOW,
    OSLO,
    TROMSO,
    Audited,
    Enrolled,
    Fed,
    Store,
    new_national_id,
)

LATER = NOW.replace(hour=13)


def test_a_library_proving_the_national_id_is_affiliated_fed_and_audited(store: Store) -> None:
    kari = store.enrol("N000000701")
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    affiliated = affiliate_borrower(
        store.unit_of_work,
        store.library(BERGEN, "AffiliateBorrower"),
        kari.card_number,
        kari.national_id,
        LATER,
        store.pins.matches,
        store.lockout,
    )
    assert affiliated.affiliations == (Affiliation(OSLO, NOW), Affiliation(BERGEN, LATER))
    assert affiliated.home_library == OSLO
    assert store.borrower(kari.card_number) == affiliated
    # Oslo learns of a change; Bergen that it now knows the borrower.
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "updated", kari.borrower.id, None, None),
        Fed(feed_before + 1, BERGEN.value, "affiliated", kari.borrower.id, None, None),
    ]
    assert store.audited(audit_before) == [
        Audited(
            "AffiliateBorrower",
            "OK",
            "library",
            BERGEN.value,
            BERGEN.value,
            store.vendor_id,
            CERTIFICATE,
            kari.card_number.value,
            kari.borrower.id,
            LATER,
        )
    ]
    # From now on Bergen gets the full view.
    _, view = get_borrower(
        store.unit_of_work,
        store.library(BERGEN, "GetBorrower").actor,
        BorrowerKey(card_number=kari.card_number),
    )
    assert view is BorrowerView.FULL


def test_a_wrong_national_id_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000702")
    before = store.contents()
    with pytest.raises(PermissionDenied) as refused:
        affiliate_borrower(
            store.unit_of_work,
            store.library(BERGEN, "AffiliateBorrower"),
            kari.card_number,
            new_national_id(),
            LATER,
            store.pins.matches,
            store.lockout,
        )
    assert refused.value.reason == "AFFILIATION_PROOF_MISMATCH"
    assert store.contents() == before


def test_another_borrowers_national_id_is_no_proof(store: Store) -> None:
    kari = store.enrol("N000000703")
    ola = store.enrol("N000000704", TROMSO)
    before = store.contents()
    with pytest.raises(PermissionDenied) as refused:
        affiliate_borrower(
            store.unit_of_work,
            store.library(BERGEN, "AffiliateBorrower"),
            kari.card_number,
            ola.national_id,
            LATER,
            store.pins.matches,
            store.lockout,
        )
    assert refused.value.reason == "AFFILIATION_PROOF_MISMATCH"
    assert store.contents() == before


def test_an_affiliated_library_proving_again_is_audited_but_nothing_is_fed(store: Store) -> None:
    kari = store.enrol("N000000705", OSLO, BERGEN)
    feed_before, audit_before = store.feed_mark(), store.audit_mark()
    again = affiliate_borrower(
        store.unit_of_work,
        store.library(BERGEN, "AffiliateBorrower"),
        kari.card_number,
        kari.national_id,
        LATER,
        store.pins.matches,
        store.lockout,
    )
    assert again.affiliations == (Affiliation(OSLO, NOW), Affiliation(BERGEN, NOW))
    assert store.fed(feed_before) == []
    assert [(e.rpc, e.actor_id, e.card_number) for e in store.audited(audit_before)] == [
        ("AffiliateBorrower", BERGEN.value, kari.card_number.value)
    ]


def test_no_such_borrower_changes_nothing(store: Store) -> None:
    store.enrol("N000000706")
    before = store.contents()
    with pytest.raises(NotFound):
        affiliate_borrower(
            store.unit_of_work,
            store.library(BERGEN, "AffiliateBorrower"),
            CardNumber("N000000799"),
            new_national_id(),
            LATER,
            store.pins.matches,
            store.lockout,
        )
    assert store.contents() == before


def _with_pin(store: Store, card_number: str, pin: str) -> Enrolled:
    enrolled = store.enrol(card_number)
    verifier = store.pins.make(pin)
    set_pin(
        store.unit_of_work,
        store.library(OSLO, "SetPin"),
        enrolled.card_number,
        verifier,
        store.pins.key_version(verifier),
        NOW,
    )
    return enrolled


def test_the_birth_date_and_pin_prove_the_borrower_too(store: Store) -> None:
    kari = _with_pin(store, "N000000707", "2468")
    proof = BirthDateAndPin(kari.borrower.personal.birth_date, Pin("2468"))
    affiliated = affiliate_borrower(
        store.unit_of_work,
        store.library(BERGEN, "AffiliateBorrower"),
        kari.card_number,
        proof,
        LATER,
        store.pins.matches,
        store.lockout,
    )
    assert [a.library_number for a in affiliated.affiliations] == [OSLO, BERGEN]


def test_a_wrong_pin_is_counted_as_a_failed_login_and_affiliates_nobody(store: Store) -> None:
    kari = _with_pin(store, "N000000708", "2468")
    assert kari.borrower.id is not None
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    wrong = BirthDateAndPin(kari.borrower.personal.birth_date, Pin("1357"))
    with pytest.raises(PermissionDenied) as refused:
        affiliate_borrower(
            store.unit_of_work,
            store.library(BERGEN, "AffiliateBorrower"),
            kari.card_number,
            wrong,
            LATER,
            store.pins.matches,
            store.lockout,
        )
    assert refused.value.reason == "AFFILIATION_PROOF_MISMATCH"
    saved = store.borrower(kari.card_number)
    assert saved is not None
    assert [a.library_number for a in saved.affiliations] == [OSLO]
    with store.unit_of_work(read_only=True) as uow:
        attempts = uow.credentials.login_attempts(
            LoginSubject.of_borrower(kari.borrower.id), LoginMethod.PIN
        )
    assert (attempts.consecutive_failures, attempts.last_failure_at) == (1, LATER)
    # The refusal's audit event is the API layer's to write; the use case fed nothing.
    assert store.audited(audit_before) == []
    assert store.fed(feed_before) == []


def test_the_right_pin_with_a_wrong_birth_date_is_refused(store: Store) -> None:
    kari = _with_pin(store, "N000000709", "2468")
    day_after = kari.borrower.personal.birth_date + dt.timedelta(days=1)
    proof = BirthDateAndPin(day_after, Pin("2468"))
    with pytest.raises(PermissionDenied) as refused:
        affiliate_borrower(
            store.unit_of_work,
            store.library(BERGEN, "AffiliateBorrower"),
            kari.card_number,
            proof,
            LATER,
            store.pins.matches,
            store.lockout,
        )
    assert refused.value.reason == "AFFILIATION_PROOF_MISMATCH"
    saved = store.borrower(kari.card_number)
    assert saved is not None
    assert [a.library_number for a in saved.affiliations] == [OSLO]
