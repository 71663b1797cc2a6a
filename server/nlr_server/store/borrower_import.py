"""Bulk writes of a borrower import: batches of rows by Core executemany, and the progress row.

One batch is one transaction: its borrowers, their card numbers and affiliations, and the
import's progress commit together, so an interrupted import resumes after its last batch.
Ids are given explicitly (one more than the highest, under the table's write lock), so an
interrupted and resumed import gives every borrower the same id as an uninterrupted one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text, update

from nlr_server.store.models import (
    AffiliationRow,
    BorrowerRow,
    CardNumberRow,
    ImportRow,
    LibraryRow,
)

_BORROWERS: Table = BorrowerRow.__table__  # type: ignore[assignment]
_CARD_NUMBERS: Table = CardNumberRow.__table__  # type: ignore[assignment]
_AFFILIATIONS: Table = AffiliationRow.__table__  # type: ignore[assignment]
_IMPORTS: Table = ImportRow.__table__  # type: ignore[assignment]
_LIBRARIES: Table = LibraryRow.__table__  # type: ignore[assignment]
# Values per IN list: well under every driver's limit on bound parameters.
_CHUNK = 1000


@dataclass
class ImportProgress:
    """The ``imports`` row of one file: how far its import has committed."""

    file_sha256: str
    file_name: str
    file_size: int
    batch_size: int
    started_at: dt.datetime
    first_borrower_id: int
    finished_at: dt.datetime | None = None
    lines_done: int = 0
    input_offset: int = 0
    rejects_offset: int = 0
    imported: int = 0
    rejected: int = 0

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ExistingCard:
    borrower_id: int | None
    retired: bool


def load_progress(connection: Connection, file_sha256: str) -> ImportProgress | None:
    row = (
        connection.execute(select(_IMPORTS).where(_IMPORTS.c.file_sha256 == file_sha256))
        .mappings()
        .one_or_none()
    )
    return None if row is None else ImportProgress(**row)


def start_progress(connection: Connection, progress: ImportProgress) -> None:
    connection.execute(insert(_IMPORTS), [progress.values()])


def save_progress(connection: Connection, progress: ImportProgress) -> None:
    connection.execute(
        update(_IMPORTS)
        .where(_IMPORTS.c.file_sha256 == progress.file_sha256)
        .values(progress.values())
    )


def library_numbers(connection: Connection) -> frozenset[str]:
    return frozenset(connection.execute(select(_LIBRARIES.c.library_number)).scalars())


def next_borrower_id(connection: Connection) -> int:
    """One more than the highest borrower id, with the borrowers table locked against other
    writers until the transaction ends (SQLite's BEGIN IMMEDIATE already holds the lock)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE borrowers IN EXCLUSIVE MODE"))
    highest = connection.execute(select(func.max(_BORROWERS.c.id))).scalar_one()
    return int(highest or 0) + 1


def existing_cards(
    connection: Connection, card_numbers: Collection[str]
) -> dict[str, ExistingCard]:
    """The card numbers among ``card_numbers`` the register has ever issued."""
    found: dict[str, ExistingCard] = {}
    for chunk in _chunks(sorted(card_numbers)):
        for row in connection.execute(
            select(
                _CARD_NUMBERS.c.card_number,
                _CARD_NUMBERS.c.borrower_id,
                _CARD_NUMBERS.c.retired_at,
            ).where(_CARD_NUMBERS.c.card_number.in_(chunk))
        ):
            found[row.card_number] = ExistingCard(row.borrower_id, row.retired_at is not None)
    return found


def existing_national_ids(connection: Connection, indexes: Collection[bytes]) -> dict[bytes, int]:
    """The borrower id of each blind index among ``indexes`` that is registered."""
    found: dict[bytes, int] = {}
    for chunk in _chunks(sorted(indexes)):
        for row in connection.execute(
            select(_BORROWERS.c.national_id_index, _BORROWERS.c.id).where(
                _BORROWERS.c.national_id_index.in_(chunk)
            )
        ):
            found[bytes(row.national_id_index)] = row.id
    return found


def insert_borrowers(
    connection: Connection,
    rows: Sequence[dict[str, Any]],
    affiliations: Sequence[tuple[str, ...]],
) -> None:
    """Inserts borrowers whose rows carry their ``id``, with their card numbers and
    affiliations (each affiliated since the borrower's creation)."""
    if not rows:
        return
    connection.execute(insert(_BORROWERS), rows)
    connection.execute(
        insert(_CARD_NUMBERS),
        [
            {
                "card_number": row["card_number"],
                "borrower_id": row["id"],
                "retired_at": None,
                "retired_reason": None,
            }
            for row in rows
        ],
    )
    connection.execute(
        insert(_AFFILIATIONS),
        [
            {"borrower_id": row["id"], "library_number": number, "affiliated_at": row["created_at"]}
            for row, numbers in zip(rows, affiliations, strict=True)
            for number in numbers
        ],
    )
    if connection.dialect.name == "postgresql":
        # Ids were given explicitly: the sequence must not hand them out again.
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('borrowers', 'id'), :highest)"),
            {"highest": rows[-1]["id"]},
        )


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]
