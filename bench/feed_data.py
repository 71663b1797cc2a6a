"""The change feed's benchmark data, straight in the database, and the catch-up ceiling.

A feed of a million entries takes hours through the API, so it is written in bulk here with the
store's own tables: entries for borrowers that exist and are affiliated with the library, numbered
after the feed's head, with the head moved past them, exactly as commits leave them. The register
renders each entry with the borrower's current full view, so what a reader replays is real.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.environment import Environment
from sqlalchemy import func, select, update

from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.actor import Actor
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.change_feed import ChangeKind
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import (
    AffiliationRow,
    BorrowerRow,
    FeedEntryRow,
    FeedHeadRow,
    GuardianLinkRow,
    IdentityRow,
    table_of,
)
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from nlr_server.usecases import change_feed

_ENTRIES = table_of(FeedEntryRow)
_HEAD = table_of(FeedHeadRow)
_BORROWERS = table_of(BorrowerRow)
_AFFILIATIONS = table_of(AffiliationRow)
_LINKS = table_of(GuardianLinkRow)
_IDENTITIES = table_of(IdentityRow)

# Rows per INSERT (executemany) and per transaction.
_INSERT_BATCH = 10_000
_TRANSACTION = 100_000
# What the register reads per page, and what a catch-up reader asks for.
PAGE_SIZE = 1000


def affiliate(
    environment: Environment, cards: list[str], libraries: list[str], now: dt.datetime
) -> None:
    """Affiliates the borrowers with more libraries through the store, each with its feed
    entry, as AffiliateBorrower leaves them (without the proof, which is not measured)."""
    engine = create_store_engine(environment.database_url)
    unit_of_work = SqlUnitOfWorkFactory(engine, NationalIdSealer(environment.keyring))
    try:
        with unit_of_work() as uow:
            for card in cards:
                before = uow.borrowers.get_by_card_number(CardNumber(card))
                assert before is not None, card
                after = before
                for library in libraries:
                    number = LibraryNumber(library)
                    after = after.affiliate(number, Actor.library(number), now)
                saved = uow.borrowers.save(after)
                change_feed.record(uow, before, saved, now, ChangeKind.AFFILIATED)
            uow.commit()
    finally:
        engine.dispose()


def append_entries(
    database_url: str,
    library: str,
    count: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Appends ``count`` UPDATED entries for ``library``, one per change, going round the
    library's borrowers in id order (so a page of entries names up to a page of different
    borrowers), timed over the last moments before now. Returns the feed's new head."""
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            borrower_ids = list(
                connection.execute(
                    select(_AFFILIATIONS.c.borrower_id)
                    .where(_AFFILIATIONS.c.library_number == library)
                    .order_by(_AFFILIATIONS.c.borrower_id)
                ).scalars()
            )
        if not borrower_ids:
            raise ValueError(f"no borrowers are affiliated with {library}")
        now = dt.datetime.now(dt.UTC)
        head = 0
        for start in range(0, count, _TRANSACTION):
            size = min(_TRANSACTION, count - start)
            # One transaction per slice: it takes the next numbers under the head's row lock,
            # as a commit does, and moves the head past them.
            with engine.begin() as connection:
                head = int(
                    connection.execute(
                        select(_HEAD.c.last_sequence).where(_HEAD.c.id == 1)
                    ).scalar_one()
                )
                rows = [
                    _entry(library, head + 1 + offset, borrower_ids, start + offset, count, now)
                    for offset in range(size)
                ]
                for batch in range(0, size, _INSERT_BATCH):
                    connection.execute(_ENTRIES.insert(), rows[batch : batch + _INSERT_BATCH])
                head += size
                connection.execute(update(_HEAD).where(_HEAD.c.id == 1).values(last_sequence=head))
            if progress is not None:
                progress(start + size)
        return head
    finally:
        engine.dispose()


def _entry(
    library: str, sequence: int, borrower_ids: list[int], index: int, count: int, now: dt.datetime
) -> dict[str, Any]:
    return {
        "library_number": library,
        "sequence": sequence,
        "kind": ChangeKind.UPDATED.value,
        # One millisecond apart, the last one just now: well within any retention.
        "occurred_at": now - dt.timedelta(milliseconds=count - index),
        "borrower_id": borrower_ids[index % len(borrower_ids)],
        "card_number": None,
        "deletion_reason": None,
    }


def last_sequence(database_url: str, library: str) -> int:
    """The sequence of the library's last entry (0 if it has none)."""
    engine = create_store_engine(database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            last = connection.execute(
                select(func.max(_ENTRIES.c.sequence)).where(_ENTRIES.c.library_number == library)
            ).scalar_one_or_none()
    finally:
        engine.dispose()
    return int(last or 0)


@dataclass(frozen=True)
class RawRead:
    entries: int
    seconds: float

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0


def raw_read(database_url: str, library: str, through: int) -> RawRead:
    """The catch-up ceiling: the library's entries up to ``through``, a page of PAGE_SIZE at a
    time, with every row the register reads to render them (the borrowers, their affiliations,
    guardian links and other identities), as plain SQL rows: no domain objects, no protobuf."""
    engine = create_store_engine(database_url, pool_size=1)
    entries = 0
    try:
        with engine.connect() as connection:
            started = time.perf_counter()
            after = 0
            while True:
                page = connection.execute(
                    select(_ENTRIES)
                    .where(
                        _ENTRIES.c.library_number == library,
                        _ENTRIES.c.sequence > after,
                        _ENTRIES.c.sequence <= through,
                    )
                    .order_by(_ENTRIES.c.sequence)
                    .limit(PAGE_SIZE)
                ).all()
                if not page:
                    break
                ids = list({row.borrower_id for row in page if row.borrower_id is not None})
                connection.execute(select(_BORROWERS).where(_BORROWERS.c.id.in_(ids))).all()
                connection.execute(
                    select(_AFFILIATIONS).where(_AFFILIATIONS.c.borrower_id.in_(ids))
                ).all()
                connection.execute(
                    select(_LINKS).where(_LINKS.c.child_id.in_(ids) | _LINKS.c.guardian_id.in_(ids))
                ).all()
                connection.execute(
                    select(_IDENTITIES).where(_IDENTITIES.c.borrower_id.in_(ids))
                ).all()
                entries += len(page)
                after = int(page[-1].sequence)
            seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return RawRead(entries, seconds)
