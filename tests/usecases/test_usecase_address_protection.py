"""protect_address by an operator on a real SQLite store: the record names the operator as its
last changer, the audit event names the operator, and no library's view holds the address."""

from __future__ import annotations

import pytest

from nlr_server.domain.actor import Actor, ActorKind
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import PersonalDataPatch
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import EtagMismatch, NotFound
from nlr_server.domain.views import BorrowerView, disclosed
from nlr_server.usecases.address_protection import protect_address
from nlr_server.usecases.borrowers import BorrowerKey, get_borrower, update_borrower
from usecases.usecase_harness import (
    BERGEN,
    NOW,
    OSLO,
    STORGATA,
    TODAY,
    Audited,
    Fed,
    Store,
    temporary_until,
)

LATER = NOW.replace(hour=13)
ADA = Actor.operator("ada")
PROTECT = Acting(ADA, "nlr-admin borrowers protect-address")
UNPROTECT = Acting(ADA, "nlr-admin borrowers unprotect-address")


def test_an_operator_protecting_an_address_is_the_records_last_changer(store: Store) -> None:
    kari = store.enrol("N000000501", OSLO, BERGEN)
    protected = protect_address(store.unit_of_work, PROTECT, kari.card_number, True, LATER)
    assert protected.address_protected is True
    assert protected.last_changed_by == Actor(ActorKind.OPERATOR, "ada")
    assert protected.last_changed_at == LATER
    saved = store.borrower(kari.card_number)
    assert saved is not None
    assert saved.address_protected is True
    assert saved.last_changed_by == ADA
    assert saved.created_by == Actor.library(OSLO)
    row = store.row(kari.card_number)
    assert (row.last_changed_by_kind, row.last_changed_by, row.last_changed_at) == (
        "operator",
        "ada",
        LATER,
    )
    # The address is kept, only never handed out.
    assert saved.personal.registered_address == STORGATA


def test_the_protection_is_audited_as_the_operator_and_fed_to_every_library(
    store: Store,
) -> None:
    kari = store.enrol("N000000502", OSLO, BERGEN)
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    protect_address(store.unit_of_work, PROTECT, kari.card_number, True, LATER)
    assert store.audited(audit_before) == [
        Audited(
            "nlr-admin borrowers protect-address",
            "OK",
            "operator",
            "ada",
            None,
            None,
            None,
            kari.card_number.value,
            kari.borrower.id,
            LATER,
        )
    ]
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "updated", kari.borrower.id, None, None),
        Fed(feed_before + 1, BERGEN.value, "updated", kari.borrower.id, None, None),
    ]


def test_no_library_sees_a_protected_address(store: Store) -> None:
    kari = store.enrol("N000000503", temporary_address=temporary_until(TODAY))
    protect_address(store.unit_of_work, PROTECT, kari.card_number, True, NOW)
    borrower, view = get_borrower(
        store.unit_of_work, Actor.library(OSLO), BorrowerKey(card_number=kari.card_number)
    )
    assert view is BorrowerView.FULL
    shown = disclosed(borrower, view, TODAY).personal
    assert (shown.registered_address, shown.temporary_address) == (None, None)
    assert shown.email == kari.borrower.personal.email


def test_ending_the_protection_shows_the_address_again(store: Store) -> None:
    kari = store.enrol("N000000504")
    protect_address(store.unit_of_work, PROTECT, kari.card_number, True, NOW)
    audit_before = store.audit_mark()
    ended = protect_address(store.unit_of_work, UNPROTECT, kari.card_number, False, LATER)
    assert ended.address_protected is False
    borrower, view = get_borrower(
        store.unit_of_work, Actor.library(OSLO), BorrowerKey(card_number=kari.card_number)
    )
    assert disclosed(borrower, view, TODAY).personal.registered_address == STORGATA
    [event] = store.audited(audit_before)
    assert (event.rpc, event.actor_kind, event.actor_id) == (
        "nlr-admin borrowers unprotect-address",
        "operator",
        "ada",
    )


def test_a_protection_makes_an_earlier_read_stale(store: Store) -> None:
    kari = store.enrol("N000000505")
    protected = protect_address(store.unit_of_work, PROTECT, kari.card_number, True, NOW)
    assert protected.version == kari.borrower.version + 1
    assert protected.etag != kari.borrower.etag
    before = store.contents()
    with pytest.raises(EtagMismatch):
        update_borrower(
            store.unit_of_work,
            store.library(OSLO, "UpdateBorrower"),
            kari.card_number,
            kari.borrower.etag,
            PersonalDataPatch(fields=frozenset({"mobile_phone"})),
            None,
            LATER,
        )
    assert store.contents() == before


def test_protecting_no_such_borrower_changes_nothing(store: Store) -> None:
    store.enrol("N000000506")
    before = store.contents()
    with pytest.raises(NotFound):
        protect_address(store.unit_of_work, PROTECT, CardNumber("N000000599"), True, NOW)
    assert store.contents() == before
