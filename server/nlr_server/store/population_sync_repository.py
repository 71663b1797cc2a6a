"""The population register sync's place in Folkeregisteret's feed, and the lease on it.

One row (id 1), made on first use starting at sequence number 1. A worker claims the lease for
a while; another claims it only once it has run out, so one worker across all servers reads.
The place moves only by compare-and-set on the sequence number it was read at, in the same
transaction as the changes of the page read, so a page is applied once even if two workers
overlap after a lease ran out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import case, insert, or_, select, update
from sqlalchemy.orm import Session

from nlr_server.store.models import PopulationReviewRow, PopulationSyncRow, table_of
from nlr_server.usecases.ports import PopulationReview, PopulationSyncState

_SYNC = table_of(PopulationSyncRow)
_REVIEWS = table_of(PopulationReviewRow)
_ID = 1
_ERROR_CHARS = 500


class SqlPopulationSyncRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def state(self) -> PopulationSyncState:
        row = self._session.execute(select(_SYNC).where(_SYNC.c.id == _ID)).one_or_none()
        if row is None:
            return PopulationSyncState(1, None, None, None, 0, 0, None, None)
        return PopulationSyncState(
            row.next_sequence,
            row.etag,
            row.lease_owner,
            row.lease_until,
            row.events_read,
            row.events_applied,
            row.last_run_at,
            row.last_error,
            row.page_failures if row.failed_sequence == row.next_sequence else 0,
        )

    def claim(self, owner: str, now: dt.datetime, until: dt.datetime) -> PopulationSyncState | None:
        """The place, leased to ``owner`` until ``until``; None if another holds the lease."""
        if self._session.get(PopulationSyncRow, _ID) is None:
            self._session.add(
                PopulationSyncRow(id=_ID, next_sequence=1, events_read=0, events_applied=0)
            )
            self._session.flush()
        claimed = self._session.execute(
            update(_SYNC)
            .where(
                _SYNC.c.id == _ID,
                or_(
                    _SYNC.c.lease_owner.is_(None),
                    _SYNC.c.lease_owner == owner,
                    _SYNC.c.lease_until < now,
                ),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        return self.state() if claimed.rowcount == 1 else None  # type: ignore[attr-defined]

    def advance(
        self,
        owner: str,
        read_at: int,
        next_sequence: int,
        etag: str | None,
        read: int,
        applied: int,
        now: dt.datetime,
    ) -> bool:
        """Moves the place from ``read_at`` to ``next_sequence`` if ``owner`` still holds it
        there; False (nothing changes) otherwise."""
        moved = self._session.execute(
            update(_SYNC)
            .where(
                _SYNC.c.id == _ID,
                _SYNC.c.lease_owner == owner,
                _SYNC.c.next_sequence == read_at,
            )
            .values(
                next_sequence=next_sequence,
                etag=etag,
                events_read=_SYNC.c.events_read + read,
                events_applied=_SYNC.c.events_applied + applied,
                last_run_at=now,
                last_error=None,
                failed_sequence=None,
                page_failures=0,
            )
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]

    def record_error(self, owner: str, error: str, now: dt.datetime) -> None:
        """What stopped the last run (no personal data: the callers' messages quote none)."""
        self._session.execute(
            update(_SYNC)
            .where(_SYNC.c.id == _ID, _SYNC.c.lease_owner == owner)
            .values(last_error=error[:_ERROR_CHARS], last_run_at=now)
        )

    def count_page_failure(self, owner: str, sequence: int) -> None:
        """One more failure of the page at ``sequence`` (the first, if another page failed)."""
        self._session.execute(
            update(_SYNC)
            .where(_SYNC.c.id == _ID, _SYNC.c.lease_owner == owner)
            .values(
                page_failures=case(
                    (_SYNC.c.failed_sequence == sequence, _SYNC.c.page_failures + 1), else_=1
                ),
                failed_sequence=sequence,
            )
        )

    def release(self, owner: str) -> None:
        self._session.execute(
            update(_SYNC)
            .where(_SYNC.c.id == _ID, _SYNC.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )

    def add_review(
        self, sequence: int, kind: str, card_numbers: Sequence[str], now: dt.datetime
    ) -> None:
        self._session.execute(
            insert(_REVIEWS).values(
                sequence=sequence, kind=kind, card_numbers=",".join(card_numbers), created_at=now
            )
        )

    def reviews(self, *, open_only: bool) -> list[PopulationReview]:
        query = select(_REVIEWS).order_by(_REVIEWS.c.id)
        if open_only:
            query = query.where(_REVIEWS.c.resolved_at.is_(None))
        return [
            PopulationReview(
                row.id,
                row.sequence,
                row.kind,
                tuple(row.card_numbers.split(",")) if row.card_numbers else (),
                row.created_at,
                row.resolved_at,
                row.resolved_by,
            )
            for row in self._session.execute(query)
        ]

    def resolve_review(self, review_id: int, by: str, now: dt.datetime) -> bool:
        resolved = self._session.execute(
            update(_REVIEWS)
            .where(_REVIEWS.c.id == review_id, _REVIEWS.c.resolved_at.is_(None))
            .values(resolved_at=now, resolved_by=by[:100])
        )
        return bool(resolved.rowcount == 1)  # type: ignore[attr-defined]

    def reconciled_through(self) -> int | None:
        row = self._session.get(PopulationSyncRow, _ID)
        return row.reconciled_through if row is not None else None

    def set_reconciled_through(self, borrower_id: int | None) -> None:
        """Where a reconcile stands (None: done)."""
        if self._session.get(PopulationSyncRow, _ID) is None:
            self._session.add(
                PopulationSyncRow(id=_ID, next_sequence=1, events_read=0, events_applied=0)
            )
            self._session.flush()
        self._session.execute(
            update(_SYNC).where(_SYNC.c.id == _ID).values(reconciled_through=borrower_id)
        )
