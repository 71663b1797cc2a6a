"""Periodic housekeeping of the register: removing what has reached its deletion time.

One function runs every job, each in its own transaction, so the server's periodic task and
`nlr-admin maintenance` do the same; add a job here, with a count in the report. Each
borrower a job changes gets an audit event in the job's transaction, and the run one more,
naming who ran it: the system's maintenance task, or the operator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from nlr_server.domain.audit import Acting
from nlr_server.domain.lockout import LockoutPolicy
from nlr_server.usecases import change_feed
from nlr_server.usecases.identities import expire_identities
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """How many things each job removed or changed."""

    identities_removed: int = 0
    temporary_addresses_cleared: int = 0
    feed_entries_compacted: int = 0
    login_attempts_forgotten: int = 0
    sessions_expired: int = 0

    @property
    def total(self) -> int:
        return sum(dataclasses.astuple(self))

    def counts(self) -> dict[str, int]:
        return dataclasses.asdict(self)


# How long change-feed entries are kept unless configured otherwise (NLR_FEED_RETENTION_DAYS).
FEED_RETENTION = dt.timedelta(days=30)
# How long failed logins are remembered unless configured otherwise (NLR_LOCKOUT_FORGET_DAYS).
LOCKOUT_MEMORY = LockoutPolicy().forget_after


def run_maintenance(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    now: dt.datetime,
    feed_retention: dt.timedelta = FEED_RETENTION,
    lockout_forget_after: dt.timedelta = LOCKOUT_MEMORY,
) -> MaintenanceReport:
    with unit_of_work() as uow:
        holders = uow.identities.expired_holders(now)
        identities_removed = expire_identities(uow, now)
        _audit_changes(uow, acting, now, holders)
        uow.commit()
    with unit_of_work() as uow:
        # Past its last day a temporary address is no longer served; now it is not kept either.
        holders = uow.borrowers.with_expired_temporary_address(now.date())
        temporary_addresses_cleared = uow.borrowers.clear_expired_temporary_addresses(
            now.date(), acting.actor, now
        )
        change_feed.record_updates(uow, holders, now)
        _audit_changes(uow, acting, now, holders)
        uow.commit()
    with unit_of_work() as uow:
        feed_entries_compacted = uow.feed.compact(now - feed_retention)
        uow.commit()
    with unit_of_work() as uow:
        # Failed logins past the lockout's memory: of borrowers and of unknown keys alike, as
        # a login forgets them (domain/lockout.py), so that unknown keys do not pile up.
        login_attempts_forgotten = uow.credentials.forget_login_attempts(now - lockout_forget_after)
        # SelfService sessions past their expiry open nothing; now they are not kept either.
        sessions_expired = uow.sessions.remove_expired(now)
        # The run itself, changes or none: who ran maintenance, and when.
        uow.audit.append([acting.event(now)])
        uow.commit()
    return MaintenanceReport(
        identities_removed=identities_removed,
        temporary_addresses_cleared=temporary_addresses_cleared,
        feed_entries_compacted=feed_entries_compacted,
        sessions_expired=sessions_expired,
        login_attempts_forgotten=login_attempts_forgotten,
    )


def _audit_changes(
    uow: UnitOfWork, acting: Acting, now: dt.datetime, borrower_ids: Iterable[int]
) -> None:
    found = uow.borrowers.get_many(list(borrower_ids))
    uow.audit.append(
        [
            acting.event(now, card_number=b.card_number.value, borrower_id=b.id)
            for b in found.values()
        ]
    )
