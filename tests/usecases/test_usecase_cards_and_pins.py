"""replace_card and set_pin on a real SQLite store: a replaced card number is retired for ever,
a new PIN gives a new etag and ends a lockout, and each change is audited as its library."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.borrower import DeletionReason
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.errors import (
    AlreadyExists,
    CardNumberRetired,
    FailedPrecondition,
    PermissionDenied,
)
from nlr_server.domain.lockout import LoginAttempts, LoginSubject
from nlr_server.store.models import LoginAttemptsRow
from nlr_server.usecases.borrowers import delete_borrower
from nlr_server.usecases.cards import replace_card, reserve_card_numbers
from nlr_server.usecases.credentials import set_pin
from usecases.usecase_harness import (
    BERGEN,
    CERTIFICATE,
    NOW,
    OSLO,
    TROMSO,
    Audited,
    Fed,
    Store,
)

LATER = NOW.replace(hour=13)
NEW_CARD = CardNumber("N000000499")


def test_a_replaced_card_number_is_retired_and_the_new_one_names_the_borrower(
    store: Store,
) -> None:
    kari = store.enrol("N000000401", OSLO, BERGEN)
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    replaced = replace_card(
        store.unit_of_work,
        store.library(BERGEN, "ReplaceCard"),
        kari.card_number,
        NEW_CARD,
        LATER,
    )
    assert replaced.card_number == NEW_CARD
    assert replaced.previous_card_number == kari.card_number
    assert replaced.id == kari.borrower.id
    assert store.borrower(kari.card_number) is None
    assert store.borrower(NEW_CARD) == replaced
    assert store.card_retired_reason(kari.card_number) == "replaced"
    assert store.card_retired_reason(NEW_CARD) is None
    row = store.row(NEW_CARD)
    assert (row.last_changed_by_kind, row.last_changed_by) == ("library", BERGEN.value)
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "card_replaced", kari.borrower.id, None, None),
        Fed(feed_before + 1, BERGEN.value, "card_replaced", kari.borrower.id, None, None),
    ]
    # The event names the card the borrower now has.
    assert store.audited(audit_before) == [
        Audited(
            "ReplaceCard",
            "OK",
            "library",
            BERGEN.value,
            BERGEN.value,
            store.vendor_id,
            CERTIFICATE,
            NEW_CARD.value,
            kari.borrower.id,
            LATER,
        )
    ]


def test_a_new_card_number_in_use_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000402")
    store.enrol(NEW_CARD.value)
    before = store.contents()
    with pytest.raises(AlreadyExists) as refused:
        replace_card(
            store.unit_of_work, store.library(OSLO, "ReplaceCard"), kari.card_number, NEW_CARD, NOW
        )
    assert refused.value.reason == "CARD_NUMBER_IN_USE"
    assert store.contents() == before


def test_a_retired_card_number_is_never_issued_again(store: Store) -> None:
    kari = store.enrol("N000000403")
    gone = store.enrol(NEW_CARD.value)
    oslo_deletes = store.library(OSLO, "DeleteBorrower")
    delete_borrower(
        store.unit_of_work, oslo_deletes, gone.card_number, DeletionReason.DECEASED, None, NOW
    )
    before = store.contents()
    with pytest.raises(CardNumberRetired) as refused:
        replace_card(
            store.unit_of_work, store.library(OSLO, "ReplaceCard"), kari.card_number, NEW_CARD, NOW
        )
    assert refused.value.reason == "CARD_NUMBER_RETIRED"
    assert store.contents() == before


def test_a_card_number_another_library_reserved_is_refused(store: Store) -> None:
    kari = store.enrol("N000000404")
    reservation = reserve_card_numbers(
        store.unit_of_work, store.library(BERGEN, "ReserveCardNumbers"), 10, NOW
    )
    before = store.contents()
    with pytest.raises(FailedPrecondition) as refused:
        replace_card(
            store.unit_of_work,
            store.library(OSLO, "ReplaceCard"),
            kari.card_number,
            reservation.first_card_number,
            NOW,
        )
    assert refused.value.reason == "CARD_NUMBER_RESERVED"
    assert store.contents() == before


def test_a_library_not_affiliated_may_not_replace_the_card(store: Store) -> None:
    kari = store.enrol("N000000405")
    before = store.contents()
    with pytest.raises(PermissionDenied) as refused:
        replace_card(
            store.unit_of_work,
            store.library(TROMSO, "ReplaceCard"),
            kari.card_number,
            NEW_CARD,
            NOW,
        )
    assert refused.value.reason == "NOT_AFFILIATED"
    assert store.contents() == before


def test_a_new_pin_gives_a_new_etag_and_is_stored_as_a_verifier(store: Store) -> None:
    kari = store.enrol("N000000406", OSLO, BERGEN)
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    verifier = store.pins.make("2468")
    etag = set_pin(
        store.unit_of_work,
        store.library(BERGEN, "SetPin"),
        kari.card_number,
        verifier,
        store.pins.key_version(verifier),
        LATER,
    )
    assert etag != kari.borrower.etag
    saved = store.borrower(kari.card_number)
    assert saved is not None
    assert saved.etag == etag
    assert saved.has_pin is True
    assert saved.personal == kari.borrower.personal
    row = store.row(kari.card_number)
    assert row.pin_verifier == verifier
    assert row.pin_key_version == store.pins.key_version(verifier)
    assert store.pins.verify("2468", row.pin_verifier)
    assert not store.pins.verify("1357", row.pin_verifier)
    # A PIN is not personal data: who last changed the record (Bergen, by affiliating) stays.
    assert (row.last_changed_by_kind, row.last_changed_by, row.last_changed_at) == (
        "library",
        BERGEN.value,
        NOW,
    )
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "updated", kari.borrower.id, None, None),
        Fed(feed_before + 1, BERGEN.value, "updated", kari.borrower.id, None, None),
    ]
    assert store.audited(audit_before) == [
        Audited(
            "SetPin",
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


def test_each_new_pin_gives_another_etag(store: Store) -> None:
    kari = store.enrol("N000000407")
    oslo = store.library(OSLO, "SetPin")
    etags = [kari.borrower.etag]
    for pin in ("2468", "1357"):
        verifier = store.pins.make(pin)
        etags.append(
            set_pin(
                store.unit_of_work,
                oslo,
                kari.card_number,
                verifier,
                store.pins.key_version(verifier),
                NOW,
            )
        )
    assert len(set(etags)) == 3


def test_a_new_pin_ends_a_pin_lockout(store: Store) -> None:
    kari = store.enrol("N000000408")
    assert kari.borrower.id is not None
    subject = LoginSubject.of_borrower(kari.borrower.id)
    locked = LoginAttempts(
        consecutive_failures=5,
        lockouts=1,
        locked_until=NOW + dt.timedelta(minutes=15),
        last_failure_at=NOW,
    )
    with store.unit_of_work() as uow:
        uow.credentials.save_attempts(kari.borrower.id, LoginMethod.PIN, locked)
        uow.commit()
    assert store.count(LoginAttemptsRow) == 1
    verifier = store.pins.make("2468")
    set_pin(
        store.unit_of_work,
        store.library(OSLO, "SetPin"),
        kari.card_number,
        verifier,
        store.pins.key_version(verifier),
        NOW,
    )
    with store.unit_of_work(read_only=True) as uow:
        assert uow.credentials.login_attempts(subject, LoginMethod.PIN) == LoginAttempts()
    assert store.count(LoginAttemptsRow) == 0


def test_a_library_not_affiliated_may_not_set_the_pin(store: Store) -> None:
    kari = store.enrol("N000000409")
    before = store.contents()
    verifier = store.pins.make("2468")
    with pytest.raises(PermissionDenied) as refused:
        set_pin(
            store.unit_of_work,
            store.library(TROMSO, "SetPin"),
            kari.card_number,
            verifier,
            store.pins.key_version(verifier),
            NOW,
        )
    assert refused.value.reason == "NOT_AFFILIATED"
    assert store.contents() == before
