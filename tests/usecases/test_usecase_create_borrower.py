"""create_borrower on a real SQLite store: the borrower, their feed entry and their audit event
commit together, and a refused creation leaves nothing behind."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.actor import Actor, ActorKind
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Affiliation
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import Aborted, AlreadyExists, InvalidArgument
from nlr_server.domain.person_name import PersonName
from nlr_server.store.models import AuditEventRow, BorrowerRow
from nlr_server.usecases.borrowers import create_borrower
from usecases.usecase_harness import (
    CERTIFICATE,
    NOW,
    OSLO,
    Audited,
    Fed,
    Store,
    new_national_id,
    personal,
)

CARD = CardNumber("N000000101")


def test_a_created_borrower_has_one_audit_event_naming_the_library(store: Store) -> None:
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    created = create_borrower(
        store.unit_of_work,
        store.library(OSLO, "CreateBorrower"),
        OSLO,
        CARD,
        personal(),
        new_national_id(),
        NOW,
    )
    assert created.id is not None
    assert store.audited(audit_before) == [
        Audited(
            rpc="CreateBorrower",
            outcome="OK",
            actor_kind="library",
            actor_id=OSLO.value,
            library_number=OSLO.value,
            vendor_id=store.vendor_id,
            certificate_fingerprint=CERTIFICATE,
            card_number=CARD.value,
            borrower_id=created.id,
            occurred_at=NOW,
        )
    ]
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "created", created.id, None, None)
    ]


def test_the_creating_library_is_the_creator_last_changer_home_and_first_affiliation(
    store: Store,
) -> None:
    create_borrower(
        store.unit_of_work,
        store.library(OSLO, "CreateBorrower"),
        OSLO,
        CARD,
        personal(),
        new_national_id(),
        NOW,
    )
    saved = store.borrower(CARD)
    assert saved is not None
    assert saved.created_by == saved.last_changed_by == Actor(ActorKind.LIBRARY, OSLO.value)
    assert saved.created_at == saved.last_changed_at == NOW
    assert saved.home_library == OSLO
    assert saved.affiliations == (Affiliation(OSLO, NOW),)
    assert saved.personal == personal()
    assert saved.version == 1
    row = store.row(CARD)
    assert (row.created_by_kind, row.created_by) == ("library", OSLO.value)
    assert (row.last_changed_by_kind, row.last_changed_by) == ("library", OSLO.value)


def test_a_borrower_created_by_an_operator_names_the_operator(store: Store) -> None:
    audit_before = store.audit_mark()
    created = create_borrower(
        store.unit_of_work,
        Acting(Actor.operator("ada"), "nlr-admin borrowers create"),
        OSLO,
        CARD,
        personal(),
        new_national_id(),
        NOW,
    )
    row = store.row(CARD)
    assert (row.created_by_kind, row.created_by) == ("operator", "ada")
    assert row.home_library == OSLO.value
    assert store.audited(audit_before) == [
        Audited(
            "nlr-admin borrowers create",
            "OK",
            "operator",
            "ada",
            None,
            None,
            None,
            CARD.value,
            created.id,
            NOW,
        )
    ]


def test_a_national_id_in_use_refuses_the_creation_and_leaves_nothing(store: Store) -> None:
    first = store.enrol("N000000100")
    before = store.contents()
    with pytest.raises(AlreadyExists) as refused:
        create_borrower(
            store.unit_of_work,
            store.library(OSLO, "CreateBorrower"),
            OSLO,
            CARD,
            personal(),
            first.national_id,
            NOW,
        )
    assert refused.value.reason == "NATIONAL_ID_IN_USE"
    assert store.borrower(CARD) is None
    assert store.contents() == before


def test_a_card_number_in_use_refuses_the_creation_and_leaves_nothing(store: Store) -> None:
    store.enrol(CARD.value)
    before = store.contents()
    with pytest.raises(AlreadyExists) as refused:
        create_borrower(
            store.unit_of_work,
            store.library(OSLO, "CreateBorrower"),
            OSLO,
            CARD,
            personal(name=PersonName("Ola", "Hansen")),
            new_national_id(),
            NOW,
        )
    assert refused.value.reason == "CARD_NUMBER_IN_USE"
    assert store.contents() == before


def test_a_child_without_a_guardian_is_refused_and_leaves_nothing(store: Store) -> None:
    before = store.contents()
    with pytest.raises(InvalidArgument) as refused:
        create_borrower(
            store.unit_of_work,
            store.library(OSLO, "CreateBorrower"),
            OSLO,
            CARD,
            personal(birth_date=dt.date(2020, 1, 1)),
            new_national_id(),
            NOW,
        )
    assert [v.field for v in refused.value.violations] == ["guardian_card_number"]
    assert store.contents() == before


@pytest.mark.parametrize("table", ["audit_events", "feed_entries"])
def test_a_creation_whose_audit_event_or_feed_entry_fails_leaves_nothing(
    store: Store, table: str
) -> None:
    # The borrower is written before their audit event and feed entry, in the same
    # transaction: when either is refused, the borrower goes with it.
    store.refuse_inserts(table)
    before = store.contents()
    with pytest.raises(Aborted):
        create_borrower(
            store.unit_of_work,
            store.library(OSLO, "CreateBorrower"),
            OSLO,
            CARD,
            personal(),
            new_national_id(),
            NOW,
        )
    assert store.borrower(CARD) is None
    assert store.contents() == before
    assert (store.count(BorrowerRow), store.count(AuditEventRow), store.fed()) == (0, 0, [])
