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
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    Connection,
    LargeBinary,
    Table,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Dialect

from nlr_server.crypto.national_id_sealer import SealedNationalId
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.domain.borrower import Borrower
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
# SQLite's page cache on the connection of a bulk load, in KiB (the default is 2 MiB).
_BULK_CACHE_KIB = 256 * 1024


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


def prepare_bulk_writes(connection: Connection) -> None:
    """SQLite: a page cache that holds the indexes a bulk load writes all over (the blind
    index and the card numbers come in no order), instead of reading and spilling their pages
    again for every batch. For the connection's life; setting it again changes nothing."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")


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
        statement = _select_in(
            connection.dialect,
            _CARD_NUMBERS,
            "card_number, borrower_id, retired_at IS NOT NULL",
            "card_number",
            len(chunk),
        )
        for card_number, borrower_id, retired in connection.exec_driver_sql(
            statement, tuple(chunk)
        ):
            found[card_number] = ExistingCard(borrower_id, bool(retired))
    return found


def existing_national_ids(connection: Connection, indexes: Collection[bytes]) -> dict[bytes, int]:
    """The borrower id of each blind index among ``indexes`` that is registered."""
    found: dict[bytes, int] = {}
    for chunk in _chunks(sorted(indexes)):
        statement = _select_in(
            connection.dialect, _BORROWERS, "national_id_index, id", "national_id_index", len(chunk)
        )
        for index, borrower_id in connection.exec_driver_sql(statement, tuple(chunk)):
            found[bytes(index)] = borrower_id
    return found


# The borrowers columns of a new record's row (record_columns.new_row), in the table's order,
# and its PIN verifier (a legacy PIN carried over): all but the id, given by insert_borrowers,
# and the password, which no import carries.
_PIN_COLUMNS = ("pin_verifier", "pin_key_version")
_NOT_IN_NEW_ROW = frozenset({"id", "password_verifier", *_PIN_COLUMNS})
BORROWER_COLUMNS: tuple[str, ...] = (
    *(column.name for column in _BORROWERS.columns if column.name not in _NOT_IN_NEW_ROW),
    *_PIN_COLUMNS,
)
_CARD_COLUMNS = ("card_number", "borrower_id", "retired_at")
_AFFILIATION_COLUMNS = ("borrower_id", "library_number", "affiliated_at")


class NewBorrower(NamedTuple):
    """A new borrower's rows for the bulk insert, as the driver takes them (ImportRows): the
    borrowers row without its id, in BORROWER_COLUMNS order, and the affiliations (library
    number, since). Made where the line was parsed, in a worker process: plain values unpickle
    in the writing process several times faster than the domain record would, and leave that
    process, which every line passes through, nothing to do per value."""

    values: tuple[Any, ...]
    card_number: str
    national_id_index: bytes
    home_library: str
    affiliations: tuple[tuple[str, Any], ...]


_Bind = Callable[[Any], Any]


class ImportRows:
    """Makes the NewBorrower of a record for the database of ``drivername`` (a URL's, such as
    ``sqlite`` or ``postgresql+psycopg``): the row record_columns.new_row makes, each value
    bound as a Core insert would bind it on SQLite; on PostgreSQL COPY adapts the values
    itself. Needs no connection, so that worker processes can make the rows."""

    def __init__(self, drivername: str) -> None:
        dialect = URL.create(drivername).get_dialect()()
        self.dialect_name: str = dialect.name
        columns = [_BORROWERS.c[name] for name in BORROWER_COLUMNS]
        self._binds: list[tuple[int, _Bind]] = []
        self._affiliated_at: _Bind | None = None
        self._last_since: dt.datetime | None = None
        self._last_bound: Any = None
        if dialect.name != "postgresql":
            self._binds = [
                (position, bind)
                for position, column in enumerate(columns)
                if (bind := _bind(column, dialect)) is not None
            ]
            self._affiliated_at = _bind(_AFFILIATIONS.c.affiliated_at, dialect)

    def new_borrower(
        self, borrower: Borrower, national_id: SealedNationalId, pin_verifier: str | None = None
    ) -> NewBorrower:
        """The rows of ``borrower``, with the verifier of their PIN when they have one."""
        row = record_columns.new_row(borrower, national_id)
        row["pin_verifier"] = pin_verifier
        row["pin_key_version"] = (
            PinVerifier.key_version(pin_verifier) if pin_verifier is not None else None
        )
        if len(row) != len(BORROWER_COLUMNS):
            raise KeyError(f"new_row gives {sorted(row)}, not {sorted(BORROWER_COLUMNS)}")
        values = [row[name] for name in BORROWER_COLUMNS]
        for position, bind in self._binds:
            if values[position] is not None:
                values[position] = bind(values[position])
        return NewBorrower(
            tuple(values),
            row["card_number"],
            row["national_id_index"],
            row["home_library"],
            tuple(
                (a.library_number.value, self._since(a.affiliated_at))
                for a in borrower.affiliations
            ),
        )

    def _since(self, affiliated_at: dt.datetime) -> Any:
        # A borrower's affiliations mostly share one time (an import's all do): bound once.
        if self._affiliated_at is None:
            return affiliated_at
        if affiliated_at is not self._last_since:
            self._last_since = affiliated_at
            self._last_bound = self._affiliated_at(affiliated_at)
        return self._last_bound


def _bind(column: Column[Any], dialect: Dialect) -> _Bind | None:
    # The driver takes bytes as they are (SQLAlchemy's Binary wrapper is for other drivers).
    if isinstance(column.type, LargeBinary):
        return None
    bind: _Bind | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return bind


def insert_borrowers(
    connection: Connection, first_id: int, borrowers: Sequence[NewBorrower]
) -> None:
    """Inserts new borrowers with the ids from ``first_id`` on, in order, with their card
    numbers and affiliations."""
    if not borrowers:
        return
    ids = range(first_id, first_id + len(borrowers))
    rows = [(i, *b.values) for i, b in zip(ids, borrowers, strict=True)]
    cards = [(b.card_number, i, None) for i, b in zip(ids, borrowers, strict=True)]
    links = [
        (i, number, since)
        for i, b in zip(ids, borrowers, strict=True)
        for number, since in b.affiliations
    ]
    write = _copy if connection.dialect.name == "postgresql" else _executemany
    write(connection, _BORROWERS, ("id", *BORROWER_COLUMNS), rows)
    write(connection, _CARD_NUMBERS, _CARD_COLUMNS, cards)
    write(connection, _AFFILIATIONS, _AFFILIATION_COLUMNS, links)
    if connection.dialect.name == "postgresql":
        # Ids were given explicitly: the sequence must not hand them out again.
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('borrowers', 'id'), :highest)"),
            {"highest": ids[-1]},
        )


def update_statistics(connection: Connection) -> None:
    """PostgreSQL: refresh the planner's statistics of the tables an import fills. Without them
    a plan made for a nearly empty table (a sequential scan, kept by the prepared lookups of
    card numbers and national ids) makes each batch slower than the one before."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("ANALYZE borrowers, card_numbers, affiliations"))


def _executemany(
    connection: Connection, table: Table, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """The driver's executemany of rows already bound (ImportRows): Core's per-row parameter
    handling costs more than the insert itself on SQLite."""
    if not rows:
        return
    dialect = connection.dialect
    assert dialect.paramstyle == "qmark", "written for SQLite's driver"
    quote = dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table.name)} "
        f"({', '.join(quote(column.name) for column in _columns(table, names))}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    connection.exec_driver_sql(statement, rows)


def _copy(
    connection: Connection, table: Table, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """PostgreSQL's COPY, in the connection's transaction: several times the rate of an
    executemany (psycopg adapts each value as it would bind it)."""
    if not rows:
        return
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(column.name) for column in _columns(table, names))
    statement = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _columns(table: Table, names: Sequence[str]) -> list[Column[Any]]:
    """The table's columns of ``names``, in that order. Neither writer applies Core's
    Python-side defaults, so leaving out a column with a default or without NULL is an error
    rather than a silent NULL."""
    for column in table.columns:
        if column.name not in names and (column.default is not None or not column.nullable):
            raise KeyError(f"no value for {table.name}.{column.name}")
    return [table.c[name] for name in names]


def _select_in(dialect: Dialect, table: Table, columns: str, key: str, count: int) -> str:
    """``SELECT columns FROM table WHERE key IN (count placeholders)`` for the driver: the
    expanding IN of a Core select costs more per value than the lookup itself."""
    placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    return (
        f"SELECT {columns} FROM {quote(table.name)} "
        f"WHERE {quote(key)} IN ({', '.join([placeholder] * count)})"
    )


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start : start + _CHUNK] for start in range(0, len(values), _CHUNK)]
