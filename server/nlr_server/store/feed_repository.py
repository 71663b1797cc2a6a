"""The change feed in the database: entries appended at commit, read per library or for all."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from nlr_server.domain.borrower import DeletionReason
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.change_feed import ChangeKind, FeedEntry, StoredEntry, Tombstone
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.models import FeedEntryRow, FeedHeadRow, table_of
from nlr_server.store.prepared import DriverConnection, PreparedWrite

_ENTRIES = table_of(FeedEntryRow)
_HEAD = table_of(FeedHeadRow)
# Numbers the changes and appends their entries in one statement: the entries' "sequence" is
# their change's place among the queued ones (1, 2, ...), made absolute from the new head. The
# entries come as one JSON array, which costs the driver less to send than an array per column.
_NUMBER_AND_APPEND_POSTGRES = """
WITH head AS (
    UPDATE feed_head SET last_sequence = last_sequence + %(changes)s
    WHERE id = 1
    RETURNING last_sequence - %(changes)s AS before
)
INSERT INTO feed_entries (
    library_number, sequence, kind, occurred_at, borrower_id, card_number, deletion_reason
)
SELECT e.library_number, head.before + e.sequence, e.kind, e.occurred_at, e.borrower_id,
    e.card_number, e.deletion_reason
FROM head, json_to_recordset(%(entries)s::json) AS e(
    library_number varchar, sequence bigint, kind varchar, occurred_at timestamptz,
    borrower_id integer, card_number varchar, deletion_reason varchar
)
RETURNING sequence
"""
# SQLite has no writing CTE; in process, two statements cost little. The entries go through
# the columns' own processing (a timestamp is stored as SQLAlchemy stores it).
_NUMBER_SQLITE = (
    "UPDATE feed_head SET last_sequence = last_sequence + ? WHERE id = 1 RETURNING last_sequence"
)
_APPEND = PreparedWrite(insert(_ENTRIES))


class SqlFeedRepository:
    def __init__(self, session: Session, driver: DriverConnection) -> None:
        self._session = session
        self._driver = driver
        self._pending: list[tuple[list[FeedEntry], dt.datetime]] = []

    def record(self, entries: list[FeedEntry], at: dt.datetime) -> None:
        """Queues one change's entries; they get their sequence number when the unit of work
        commits."""
        if entries:
            self._pending.append((entries, at))

    def discard(self) -> None:
        """Forgets the changes queued in a unit of work that did not commit."""
        self._pending.clear()

    def flush(self) -> int:
        """Numbers and writes the queued changes; returns the last sequence, 0 if none.

        Taking the numbers updates the feed's head row, which holds its lock until commit: a
        second writer waits here, so numbers are committed in the order they are given. The
        unit of work calls this last, right before its commit, and on PostgreSQL the head and
        the entries are written by one statement: the lock is held for one round trip.
        """
        if not self._pending:
            return 0
        changes, self._pending = self._pending, []
        rows = [
            _row(entry, offset, at)
            for offset, (entries, at) in enumerate(changes, start=1)
            for entry in entries
        ]
        driver, dialect = self._driver.get()
        cursor = driver.cursor()
        try:
            if dialect.name == "postgresql":
                cursor.execute(
                    _NUMBER_AND_APPEND_POSTGRES,
                    {"changes": len(changes), "entries": json.dumps(rows, default=_iso)},
                )
                return max(int(sequence) for (sequence,) in cursor.fetchall())
            cursor.execute(_NUMBER_SQLITE, (len(changes),))
            (last,) = cursor.fetchone()
        finally:
            cursor.close()
        before = int(last) - len(changes)
        for row in rows:
            row["sequence"] += before
        _APPEND.run_many(driver, dialect, rows)
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


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: the register works in UTC")
    return value.isoformat()


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
