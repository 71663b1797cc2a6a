"""The change feed: which library learns what about each change to a borrower.

A change is one committed event about one borrower. Each library affiliated with the borrower
after it gets an entry; a library that was affiliated before and is no longer gets a tombstone,
which carries no personal data. Entries point at the borrower; what a reader receives is the
borrower's current full view, read when the entry is delivered.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from nlr_server.domain.borrower import Borrower, DeletionReason
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.views import BorrowerView


class ChangeKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    CARD_REPLACED = "card_replaced"
    AFFILIATED = "affiliated"
    AFFILIATION_REMOVED = "affiliation_removed"
    DELETED = "deleted"

    @property
    def is_tombstone(self) -> bool:
        return self in (ChangeKind.AFFILIATION_REMOVED, ChangeKind.DELETED)


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What a library learns of a borrower it may no longer see."""

    card_number: CardNumber
    deletion_reason: DeletionReason | None = None


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One library's entry for one change, before it has a sequence number."""

    library: LibraryNumber
    kind: ChangeKind
    borrower_id: int | None
    tombstone: Tombstone | None = None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as the feed holds it."""

    sequence: int
    library: LibraryNumber
    kind: ChangeKind
    occurred_at: dt.datetime
    borrower_id: int | None
    tombstone: Tombstone | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """An entry as a library receives it: with the borrower's current record, or a tombstone."""

    sequence: int
    occurred_at: dt.datetime
    kind: ChangeKind
    borrower: Borrower | None = None
    tombstone: Tombstone | None = None
    # The view the library gets of the borrower (the full one, but while the borrower has
    # restricted processing and this is not their home library: domain/policy.py).
    view: BorrowerView = BorrowerView.FULL


def entries_for(
    before: Borrower | None,
    after: Borrower | None,
    kind: ChangeKind = ChangeKind.UPDATED,
    deletion_reason: DeletionReason | None = None,
) -> list[FeedEntry]:
    """The entries of one change from ``before`` to ``after`` (None: not there).

    Libraries affiliated after the change get ``kind`` (AFFILIATED if they are new, CREATED for
    a new borrower); libraries no longer affiliated get a tombstone: DELETED when the borrower
    is gone, else AFFILIATION_REMOVED.
    """
    had = {a.library_number for a in before.affiliations} if before is not None else set()
    entries: list[FeedEntry] = []
    if after is not None:
        assert after.id is not None
        for affiliation in after.affiliations:
            library = affiliation.library_number
            if before is None:
                this = ChangeKind.CREATED
            elif library not in had:
                this = ChangeKind.AFFILIATED
            else:
                this = kind
            entries.append(FeedEntry(library, this, after.id))
    has = {a.library_number for a in after.affiliations} if after is not None else set()
    if before is not None:
        for affiliation in before.affiliations:
            library = affiliation.library_number
            if library in has:
                continue
            gone = ChangeKind.DELETED if after is None else ChangeKind.AFFILIATION_REMOVED
            entries.append(
                FeedEntry(
                    library,
                    gone,
                    None,
                    Tombstone(before.card_number, deletion_reason if after is None else None),
                )
            )
    return entries
