"""The change feed: recording each change in its own transaction, and reading it per library."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from nlr_server.domain import policy
from nlr_server.domain.borrower import Borrower, DeletionReason
from nlr_server.domain.change_feed import Change, ChangeKind, StoredEntry, entries_for
from nlr_server.domain.errors import FailedPrecondition, InvalidArgument
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory
from nlr_server.usecases.views import full_views

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def record(
    uow: UnitOfWork,
    before: Borrower | None,
    after: Borrower | None,
    now: dt.datetime,
    kind: ChangeKind = ChangeKind.UPDATED,
    deletion_reason: DeletionReason | None = None,
) -> None:
    """Appends the change from ``before`` to ``after`` when ``uow`` commits."""
    uow.feed.record(entries_for(before, after, kind, deletion_reason), now)


def record_updates(uow: UnitOfWork, borrower_ids: Iterable[int], now: dt.datetime) -> None:
    """An UPDATED change for each borrower (e.g. after maintenance changed them)."""
    for borrower_id in borrower_ids:
        borrower = uow.borrowers.get_by_id(borrower_id)
        if borrower is not None:
            record(uow, borrower, borrower, now)


@dataclass(frozen=True, slots=True)
class ChangePage:
    changes: list[Change]
    cursor: int
    more: bool


def page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument.one("page_size", f"must be 1 to {MAX_PAGE_SIZE}")
    return requested


def check_cursor(after: int, head: int, compacted_through: int) -> None:
    if after < 0:
        raise InvalidArgument.one("after", "must be 0 or a sequence received")
    if after > head:
        raise InvalidArgument.one("after", "is beyond the end of the feed")
    if after < compacted_through:
        raise FailedPrecondition(
            "the feed no longer reaches back to this cursor: sync again with "
            "ListAffiliatedBorrowers",
            reason="RESYNC_REQUIRED",
        )


def list_changes(
    unit_of_work: UnitOfWorkFactory, library: LibraryNumber, after: int, limit: int
) -> ChangePage:
    with unit_of_work(read_only=True) as uow:
        # The head first: every entry up to it is committed and visible from here on.
        head, compacted_through = uow.feed.head()
        check_cursor(after, head, compacted_through)
        entries = uow.feed.for_library(library, after, head, limit + 1)
        # On PostgreSQL each statement sees what is committed when it starts: compaction may
        # have removed entries between the two reads. Then the reader must not skip them.
        _, compacted_since = uow.feed.head()
        check_cursor(after, head, compacted_since)
        more = len(entries) > limit
        entries = entries[:limit]
        cursor = entries[-1].sequence if more else head
        return ChangePage(deliverable(uow, library, entries), cursor, more)


def deliverable(
    uow: UnitOfWork, library: LibraryNumber, entries: list[StoredEntry]
) -> list[Change]:
    """The entries as the library receives them, each with the borrower's current full view.

    An entry whose borrower the library may no longer see is left out: a tombstone for it
    follows later in the feed.
    """
    current = current_full_views(uow, {e.borrower_id for e in entries if e.borrower_id})
    changes: list[Change] = []
    for entry in entries:
        if entry.tombstone is not None:
            changes.append(
                Change(entry.sequence, entry.occurred_at, entry.kind, tombstone=entry.tombstone)
            )
            continue
        borrower = current.get(entry.borrower_id or 0)
        if borrower is not None and borrower.is_affiliated_with(library):
            view = policy.library_view(library, borrower)
            changes.append(
                Change(entry.sequence, entry.occurred_at, entry.kind, borrower, view=view)
            )
    return changes


def current_full_views(uow: UnitOfWork, borrower_ids: Iterable[int]) -> dict[int, Borrower]:
    """The full views of those borrowers that still exist, by internal id."""
    found = list(uow.borrowers.get_many(list(borrower_ids)).values())
    return {b.id: b for b in full_views(uow, found) if b.id is not None}


@dataclass(frozen=True, slots=True)
class BorrowerPage:
    borrowers: list[Borrower]
    last_id: int | None
    cursor: int


def list_affiliated_borrowers(
    unit_of_work: UnitOfWorkFactory,
    library: LibraryNumber,
    after_id: int,
    cursor: int | None,
    limit: int,
) -> BorrowerPage:
    """One page of the library's borrowers after internal id ``after_id``. The first page
    fixes the feed cursor; every change after it is in the feed beyond it."""
    with unit_of_work(read_only=True) as uow:
        head, compacted_through = uow.feed.head()
        if cursor is None:
            cursor = head
        elif not 0 <= cursor <= head:
            raise InvalidArgument.one("page_token", "is not a token from ListAffiliatedBorrowers")
        elif cursor < compacted_through:
            # The sync has taken longer than the feed is kept: start it again.
            check_cursor(cursor, head, compacted_through)
        ids = uow.borrowers.affiliated_ids(library, after_id, limit + 1)
        more = len(ids) > limit
        ids = ids[:limit]
        found = uow.borrowers.get_many(ids)
        borrowers = full_views(uow, [found[i] for i in ids if i in found])
        return BorrowerPage(borrowers, ids[-1] if more else None, cursor)
