"""The change feed in the database: entries appended at commit, read per library or for all."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from nlr_server.domain.borrower import DeletionReason
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.change_feed import ChangeKind, FeedEntry, StoredEntry, Tombstone
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.models import FeedEntryRow, FeedHeadRow, table_of

_ENTRIES = table_of(FeedEntryRow)
_HEAD = table_of(FeedHeadRow)


class SqlFeedRepository:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._pending: list[tuple[list[FeedEntry], dt.datetime]] = []

    def record(self, entries: list[FeedEntry], at: dt.datetime) -> None:
        """Queues one change's entries; they get their sequence number when the unit of work
        commits."""
        if entries:
            self._pending.append((entries, at))

    def flush(self) -> int:
        """Numbers and writes the queued changes; returns the last sequence, 0 if none.

        Taking the numbers updates the feed's head row, which holds its lock until commit: a
        second writer waits here, so numbers are committed in the order they are given.
        """
        if not self._pending:
            return 0
        changes, self._pending = self._pending, []
        last = self._session.execute(
            update(_HEAD)
            .where(_HEAD.c.id == 1)
            .values(last_sequence=_HEAD.c.last_sequence + len(changes))
            .returning(_HEAD.c.last_sequence)
        ).scalar_one()
        first = last - len(changes) + 1
        rows = [
            _row(entry, first + offset, at)
            for offset, (entries, at) in enumerate(changes)
            for entry in entries
        ]
        self._session.execute(insert(_ENTRIES), rows)
        return int(last)

    def head(self) -> tuple[int, int]:
        """The last sequence committed, and the last one compacted away."""
        row = self._session.execute(
            select(_HEAD.c.last_sequence, _HEAD.c.compacted_through).where(_HEAD.c.id == 1)
        ).one()
        return int(row.last_sequence), int(row.compacted_through)

    def for_library(
        self, library: LibraryNumber, after: int, through: int, limit: int
    ) -> list[StoredEntry]:
        """The library's entries with after < sequence <= through, in order."""
        rows = self._session.execute(
            select(_ENTRIES)
            .where(
                _ENTRIES.c.library_number == library.value,
                _ENTRIES.c.sequence > after,
                _ENTRIES.c.sequence <= through,
            )
            .order_by(_ENTRIES.c.sequence)
            .limit(limit)
        ).all()
        return [_entry(row) for row in rows]

    def all_after(self, after: int, through: int, limit: int) -> list[StoredEntry]:
        """Every library's entries with after < sequence <= through, in sequence order; all of
        one change together (``limit`` may be exceeded to finish the last change)."""
        last = self._session.execute(
            select(_ENTRIES.c.sequence)
            .where(_ENTRIES.c.sequence > after, _ENTRIES.c.sequence <= through)
            .order_by(_ENTRIES.c.sequence)
            .offset(max(limit - 1, 0))
            .limit(1)
        ).scalar_one_or_none()
        upto = through if last is None else min(int(last), through)
        rows = self._session.execute(
            select(_ENTRIES)
            .where(_ENTRIES.c.sequence > after, _ENTRIES.c.sequence <= upto)
            .order_by(_ENTRIES.c.sequence, _ENTRIES.c.library_number)
        ).all()
        return [_entry(row) for row in rows]

    def compact(self, before: dt.datetime) -> int:
        """Removes entries that occurred before ``before``; returns how many."""
        cutoff = self._session.execute(
            select(func.max(_ENTRIES.c.sequence)).where(_ENTRIES.c.occurred_at < before)
        ).scalar_one_or_none()
        if cutoff is None:
            return 0
        removed = self._session.execute(delete(_ENTRIES).where(_ENTRIES.c.sequence <= cutoff))
        self._session.execute(
            update(_HEAD)
            .where(_HEAD.c.id == 1, _HEAD.c.compacted_through < cutoff)
            .values(compacted_through=cutoff)
        )
        return int(removed.rowcount)  # type: ignore[attr-defined]


def _row(entry: FeedEntry, sequence: int, at: dt.datetime) -> dict[str, Any]:
    tombstone = entry.tombstone
    return {
        "library_number": entry.library.value,
        "sequence": sequence,
        "kind": entry.kind.value,
        "occurred_at": at,
        "borrower_id": entry.borrower_id,
        "card_number": tombstone.card_number.value if tombstone is not None else None,
        "deletion_reason": (
            tombstone.deletion_reason.value
            if tombstone is not None and tombstone.deletion_reason is not None
            else None
        ),
    }


def _entry(row: Any) -> StoredEntry:
    return StoredEntry(
        sequence=int(row.sequence),
        library=LibraryNumber(row.library_number),
        kind=ChangeKind(row.kind),
        occurred_at=row.occurred_at,
        borrower_id=row.borrower_id,
        tombstone=(
            Tombstone(
                CardNumber(row.card_number),
                DeletionReason(row.deletion_reason) if row.deletion_reason else None,
            )
            if row.card_number is not None
            else None
        ),
    )
