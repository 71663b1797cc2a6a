"""delete_borrower on a real SQLite store: the record goes, the card number stays retired, every
library gets a tombstone, the audit trail names who deleted, and a refusal changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nlr_server.domain.borrower import DeletionReason, PersonalDataPatch
from nlr_server.domain.errors import EtagMismatch, NotFound, PermissionDenied
from nlr_server.store.models import AuditEventRow, BorrowerRow, DeletionNoticeRow
from nlr_server.usecases.borrowers import delete_borrower, update_borrower
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


def test_a_deletion_at_the_borrowers_request_queues_a_notice_and_leaves_tombstones(
    store: Store,
) -> None:
    kari = store.enrol("N000000301", OSLO, BERGEN)
    borrower_id = kari.borrower.id
    audit_before, feed_before = store.audit_mark(), store.feed_mark()
    queued = delete_borrower(
        store.unit_of_work,
        store.library(BERGEN, "DeleteBorrower"),
        kari.card_number,
        DeletionReason.BORROWER_REQUEST,
        kari.borrower.etag,
        LATER,
    )
    assert queued is True
    assert store.borrower(kari.card_number) is None
    assert store.count(BorrowerRow) == 0
    assert store.card_retired_reason(kari.card_number) == "borrower_request"
    # The entries that pointed at the borrower are gone; each library gets a tombstone.
    assert store.fed() == [
        Fed(
            feed_before + 1, OSLO.value, "deleted", None, kari.card_number.value, "borrower_request"
        ),
        Fed(
            feed_before + 1,
            BERGEN.value,
            "deleted",
            None,
            kari.card_number.value,
            "borrower_request",
        ),
    ]
    assert store.audited(audit_before) == [
        Audited(
            "DeleteBorrower",
            "OK",
            "library",
            BERGEN.value,
            BERGEN.value,
            store.vendor_id,
            CERTIFICATE,
            kari.card_number.value,
            borrower_id,
            LATER,
        )
    ]
    with store.unit_of_work.engine.connect() as connection:
        notices = connection.execute(
            select(DeletionNoticeRow.status, DeletionNoticeRow.recipient)
        ).all()
    assert [tuple(notice) for notice in notices] == [("pending", "kari@example.org")]


def test_the_audit_trail_of_a_deleted_borrower_stays(store: Store) -> None:
    kari = store.enrol("N000000302", OSLO, BERGEN)
    events = store.audited()
    assert [event.rpc for event in events] == ["CreateBorrower", "AffiliateBorrower"]
    delete_borrower(
        store.unit_of_work,
        store.library(OSLO, "DeleteBorrower"),
        kari.card_number,
        DeletionReason.DECEASED,
        None,
        NOW,
    )
    assert store.audited()[:2] == events
    assert store.count(AuditEventRow) == 3


def test_a_deceased_borrower_gets_no_notice_and_leaves_no_personal_data(store: Store) -> None:
    kari = store.enrol("N000000303")
    queued = delete_borrower(
        store.unit_of_work,
        store.library(OSLO, "DeleteBorrower"),
        kari.card_number,
        DeletionReason.DECEASED,
        None,
        NOW,
    )
    assert queued is False
    assert store.count(DeletionNoticeRow) == 0
    assert store.card_retired_reason(kari.card_number) == "deceased"
    stored = repr(store.contents())
    for value in ("Kari", "Nordmann", "kari@example.org", "+4791234567", "Storgata", "0155"):
        assert value not in stored
    assert kari.national_id.value not in stored


def test_a_deletion_at_the_request_of_a_borrower_without_email_queues_no_notice(
    store: Store,
) -> None:
    kari = store.enrol("N000000304", email=None)
    queued = delete_borrower(
        store.unit_of_work,
        store.library(OSLO, "DeleteBorrower"),
        kari.card_number,
        DeletionReason.BORROWER_REQUEST,
        None,
        NOW,
    )
    assert queued is False
    assert store.count(DeletionNoticeRow) == 0


def test_a_library_not_affiliated_may_not_delete_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000305", OSLO, BERGEN)
    before = store.contents()
    with pytest.raises(PermissionDenied) as refused:
        delete_borrower(
            store.unit_of_work,
            store.library(TROMSO, "DeleteBorrower"),
            kari.card_number,
            DeletionReason.DECEASED,
            None,
            NOW,
        )
    assert refused.value.reason == "NOT_AFFILIATED"
    assert store.contents() == before


def test_a_deletion_from_an_old_read_is_refused_and_nothing_changes(store: Store) -> None:
    kari = store.enrol("N000000306", OSLO, BERGEN)
    # Bergen changes the record after Oslo read it.
    update_borrower(
        store.unit_of_work,
        store.library(BERGEN, "UpdateBorrower"),
        kari.card_number,
        kari.borrower.etag,
        PersonalDataPatch(fields=frozenset({"mobile_phone"})),
        None,
        NOW,
    )
    before = store.contents()
    with pytest.raises(EtagMismatch):
        delete_borrower(
            store.unit_of_work,
            store.library(OSLO, "DeleteBorrower"),
            kari.card_number,
            DeletionReason.DECEASED,
            kari.borrower.etag,
            LATER,
        )
    assert store.contents() == before


def test_a_deleted_borrower_cannot_be_deleted_again(store: Store) -> None:
    kari = store.enrol("N000000307")
    oslo = store.library(OSLO, "DeleteBorrower")
    delete_borrower(store.unit_of_work, oslo, kari.card_number, DeletionReason.DECEASED, None, NOW)
    before = store.contents()
    with pytest.raises(NotFound):
        delete_borrower(
            store.unit_of_work, oslo, kari.card_number, DeletionReason.DECEASED, None, LATER
        )
    assert store.contents() == before
