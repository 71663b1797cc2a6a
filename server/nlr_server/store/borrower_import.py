"""Bulk writes of a borrower import: batches of records (COPY on PostgreSQL, the driver's
executemany on SQLite), mapped to rows as the repository maps one (store/record_columns.py),
what each batch is checked against, and the progress row.

One batch is one transaction: its borrowers, their card numbers and affiliations, and the
import's progress commit together, so an interrupted import resumes after its last batch.
Ids are given explicitly (one more than the highest, under the table's write lock), so an
interrupted and resumed import gives every borrower the same id as an uninterrupted one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from sqlalchemy import Column, Connection, Table, func, insert, select, text, update

from nlr_server.crypto.national_id_sealer import SealedNationalId
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.card_reservation import CardNumberReservation
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.store import record_columns
from nlr_server.store.models import (
    AffiliationRow,
    BorrowerRow,
    CardNumberReservationRow,
    CardNumberRow,
    CardNumberSeriesRow,
    ImportRow,
    LibraryRow,
    table_of,
)

_BORROWERS = table_of(BorrowerRow)
_CARD_NUMBERS = table_of(CardNumberRow)
_RESERVATIONS = table_of(CardNumberReservationRow)
_SERIES = table_of(CardNumberSeriesRow)
_AFFILIATIONS = table_of(AffiliationRow)
_IMPORTS = table_of(ImportRow)
_LIBRARIES = table_of(LibraryRow)
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


def reservations(connection: Connection) -> list[CardNumberReservation]:
    """Every card number reservation, with the reservation series locked until the transaction
    ends: a reservation starts past every number issued, so one made while a batch writes its
    card numbers could otherwise cover a number the batch takes (PostgreSQL; SQLite's write
    lock already keeps reservations out)."""
    connection.execute(
        update(_SERIES).where(_SERIES.c.id == 1).values(next_number=_SERIES.c.next_number)
    )
    return [
        CardNumberReservation(
            library_number=LibraryNumber(row.library_number),
            first=row.first_number,
            count=row.last_number - row.first_number + 1,
            reserved_at=row.reserved_at,
        )
        for row in connection.execute(
            select(
                _RESERVATIONS.c.library_number,
                _RESERVATIONS.c.first_number,
                _RESERVATIONS.c.last_number,
                _RESERVATIONS.c.reserved_at,
            )
        )
    ]


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


class NewBorrower(NamedTuple):
    """A new borrower's rows for the bulk insert: the borrowers row without its id, made by
    record_columns.new_row as the repository makes one, and the affiliations (library number,
    since). Made where the line was parsed, in a worker process: a tuple of plain values
    unpickles in the writing process several times faster than the domain record would."""

    row: dict[str, Any]
    affiliations: tuple[tuple[str, dt.datetime], ...]

    @classmethod
    def of(cls, borrower: Borrower, national_id: SealedNationalId) -> NewBorrower:
        return cls(
            record_columns.new_row(borrower, national_id),
            tuple((a.library_number.value, a.affiliated_at) for a in borrower.affiliations),
        )

    @property
    def card_number(self) -> CardNumber:
        return CardNumber(self.row["card_number"])

    @property
    def national_id_index(self) -> bytes:
        return bytes(self.row["national_id_index"])

    @property
    def home_library(self) -> LibraryNumber:
        return LibraryNumber(self.row["home_library"])


def insert_borrowers(
    connection: Connection, first_id: int, borrowers: Sequence[NewBorrower]
) -> None:
    """Inserts new borrowers with the ids from ``first_id`` on, in order, with their card
    numbers and affiliations."""
    if not borrowers:
        return
    rows = [{**b.row, "id": i} for i, b in enumerate(borrowers, first_id)]
    cards = [
        {"card_number": row["card_number"], "borrower_id": row["id"], "retired_at": None}
        for row in rows
    ]
    links = [
        {"borrower_id": row["id"], "library_number": number, "affiliated_at": since}
        for row, borrower in zip(rows, borrowers, strict=True)
        for number, since in borrower.affiliations
    ]
    write = _copy if connection.dialect.name == "postgresql" else _executemany
    write(connection, _BORROWERS, rows)
    write(connection, _CARD_NUMBERS, cards)
    write(connection, _AFFILIATIONS, links)
    if connection.dialect.name == "postgresql":
        # Ids were given explicitly: the sequence must not hand them out again.
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('borrowers', 'id'), :highest)"),
            {"highest": rows[-1]["id"]},
        )


def update_statistics(connection: Connection) -> None:
    """PostgreSQL: refresh the planner's statistics of the tables an import fills. Without them
    a plan made for a nearly empty table (a sequential scan, kept by the prepared lookups of
    card numbers and national ids) makes each batch slower than the one before."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("ANALYZE borrowers, card_numbers, affiliations"))


def _executemany(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """The driver's executemany with each column's own bind processing (the same values a Core
    insert would send), without Core's per-row parameter handling, which costs more than the
    insert itself on SQLite."""
    if not rows:
        return
    dialect = connection.dialect
    assert dialect.paramstyle == "qmark", "written for SQLite's driver"
    columns = _columns(table, rows[0])
    processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    statement = (
        f"INSERT INTO {dialect.identifier_preparer.quote(table.name)} "
        f"({', '.join(dialect.identifier_preparer.quote(c.name) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    names = [column.name for column in columns]
    converted = [
        tuple(
            value if process is None or value is None else process(value)
            for value, process in zip((row[name] for name in names), processors, strict=True)
        )
        for row in rows
    ]
    connection.exec_driver_sql(statement, converted)


def _copy(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL's COPY, in the connection's transaction: several times the rate of an
    executemany (psycopg adapts each value as it would bind it)."""
    if not rows:
        return
    columns = [column.name for column in _columns(table, rows[0])]
    quote = connection.dialect.identifier_preparer.quote
    statement = (
        f"COPY {quote(table.name)} ({', '.join(quote(name) for name in columns)}) FROM STDIN"
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([row[name] for name in columns])


def _columns(table: Table, row: dict[str, Any]) -> list[Column[Any]]:
    """The table's columns that ``row`` gives values for. Neither writer applies Core's
    Python-side defaults, so leaving out a column with a default or without NULL is an error
    rather than a silent NULL."""
    columns = [column for column in table.columns if column.name in row]
    for column in table.columns:
        if column.name not in row and (column.default is not None or not column.nullable):
            raise KeyError(f"no value for {table.name}.{column.name}")
    return columns


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]
