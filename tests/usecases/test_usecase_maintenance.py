"""run_maintenance on a real SQLite store: what each job removes, an audit event for every
borrower a job changed and one for the run, each naming whoever ran it."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.actor import Actor
from nlr_server.domain.audit import Acting
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.identity import IdentityKind, IdentityValue
from nlr_server.domain.lockout import LoginAttempts
from nlr_server.store.models import FeedEntryRow, IdentityRow, LoginAttemptsRow
from nlr_server.usecases.identities import add_identity
from nlr_server.usecases.maintenance import LOCKOUT_MEMORY, MaintenanceReport, run_maintenance
from usecases.usecase_harness import (
    BERGEN,
    HYTTA,
    NOW,
    OSLO,
    TODAY,
    Audited,
    Enrolled,
    Fed,
    Store,
    temporary_until,
)

RUN = NOW + dt.timedelta(days=3)
SYSTEM = Acting(Actor.system("maintenance"), "maintenance")
OPERATOR = Acting(Actor.operator("ada"), "nlr-admin maintenance")


def _with_feide(store: Store, card_number: str, delete_after: dt.datetime) -> Enrolled:
    enrolled = store.enrol(card_number)
    add_identity(
        store.unit_of_work,
        store.library(OSLO, "AddIdentity"),
        enrolled.card_number,
        IdentityValue.parse(IdentityKind.FEIDE, f"{card_number.lower()}@uio.no"),
        delete_after,
        dt.timedelta(days=365),
        NOW,
    )
    return enrolled


def _event(acting: Acting, enrolled: Enrolled | None = None) -> Audited:
    return Audited(
        acting.action,
        "OK",
        acting.actor.kind.value,
        acting.actor.id,
        None,
        None,
        None,
        enrolled.card_number.value if enrolled is not None else None,
        enrolled.borrower.id if enrolled is not None else None,
        RUN,
    )


@pytest.mark.parametrize("acting", [SYSTEM, OPERATOR], ids=["system", "operator"])
def test_each_changed_borrower_and_the_run_are_audited_as_who_ran_it(
    store: Store, acting: Acting
) -> None:
    moved_out = store.enrol("N000000601", OSLO, BERGEN, temporary_address=temporary_until(TODAY))
    store.enrol("N000000602", temporary_address=temporary_until(RUN.date()))
    feide_expired = _with_feide(store, "N000000603", NOW + dt.timedelta(days=1))
    _with_feide(store, "N000000604", NOW + dt.timedelta(days=30))
    store.enrol("N000000605")
    audit_before = store.audit_mark()

    report = run_maintenance(store.unit_of_work, acting, RUN)

    assert report == MaintenanceReport(identities_removed=1, temporary_addresses_cleared=1)
    # The identities' job, then the temporary addresses', then the run.
    assert store.audited(audit_before) == [
        _event(acting, feide_expired),
        _event(acting, moved_out),
        _event(acting),
    ]


def test_a_cleared_temporary_address_names_who_ran_maintenance_and_is_fed(store: Store) -> None:
    moved_out = store.enrol("N000000611", OSLO, BERGEN, temporary_address=temporary_until(TODAY))
    staying = store.enrol("N000000612", temporary_address=temporary_until(RUN.date()))
    feed_before = store.feed_mark()

    run_maintenance(store.unit_of_work, OPERATOR, RUN)

    row = store.row(moved_out.card_number)
    assert row.temporary_address_line1 is None
    assert row.temporary_address_valid_until is None
    assert (row.last_changed_by_kind, row.last_changed_by, row.last_changed_at) == (
        "operator",
        "ada",
        RUN,
    )
    assert row.version == moved_out.borrower.version + 1
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "updated", moved_out.borrower.id, None, None),
        Fed(feed_before + 1, BERGEN.value, "updated", moved_out.borrower.id, None, None),
    ]
    # Up to and including its last day a temporary address stays, and so does its record.
    kept = store.row(staying.card_number)
    assert kept.temporary_address_line1 == HYTTA.lines[0]
    assert (kept.last_changed_by_kind, kept.last_changed_by) == ("library", OSLO.value)


def test_an_expired_identity_is_removed_and_its_borrower_fed(store: Store) -> None:
    expired = _with_feide(store, "N000000621", NOW + dt.timedelta(days=1))
    _with_feide(store, "N000000622", NOW + dt.timedelta(days=30))
    feed_before = store.feed_mark()

    report = run_maintenance(store.unit_of_work, SYSTEM, RUN)

    assert report.identities_removed == 1
    assert store.count(IdentityRow) == 1
    assert store.fed(feed_before) == [
        Fed(feed_before + 1, OSLO.value, "updated", expired.borrower.id, None, None)
    ]


def test_a_run_that_changes_no_borrower_is_audited_once(store: Store) -> None:
    store.enrol("N000000631")
    audit_before, feed_before = store.audit_mark(), store.feed_mark()

    report = run_maintenance(store.unit_of_work, SYSTEM, RUN)

    assert report == MaintenanceReport()
    assert report.total == 0
    assert store.audited(audit_before) == [_event(SYSTEM)]
    assert store.fed(feed_before) == []


def test_old_feed_entries_and_forgotten_logins_go_without_an_event_per_borrower(
    store: Store,
) -> None:
    kari = store.enrol("N000000641", OSLO, BERGEN)
    assert kari.borrower.id is not None
    with store.unit_of_work() as uow:
        uow.credentials.save_attempts(
            kari.borrower.id,
            LoginMethod.PIN,
            LoginAttempts(consecutive_failures=2, last_failure_at=NOW),
        )
        uow.commit()
    # Created, then affiliated: three entries, all older than the retention.
    assert store.count(FeedEntryRow) == 3
    later = NOW + max(dt.timedelta(days=31), LOCKOUT_MEMORY + dt.timedelta(days=1))
    audit_before = store.audit_mark()

    report = run_maintenance(
        store.unit_of_work, SYSTEM, later, feed_retention=dt.timedelta(days=30)
    )

    assert report == MaintenanceReport(feed_entries_compacted=3, login_attempts_forgotten=1)
    assert (store.count(FeedEntryRow), store.count(LoginAttemptsRow)) == (0, 0)
    assert store.audited(audit_before) == [
        Audited("maintenance", "OK", "system", "maintenance", None, None, None, None, None, later)
    ]
