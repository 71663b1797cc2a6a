"""Hot reads compiled once and run on the driver's own connection.

SQLAlchemy spends far longer preparing a call than SQLite or PostgreSQL spend answering a
one-row lookup by an index. The few statements every GetBorrower and login run are therefore
compiled once per dialect by SQLAlchemy itself, and run on the driver's cursor inside the unit
of work's transaction. The columns' own result processing still applies, so a row reads the
same as through SQLAlchemy (a timestamp is a UTC datetime on both stores).
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from nlr_server.store.database import begin_read
from nlr_server.store.models import UtcDateTime

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Positional drivers (SQLite) take the values in this order; named ones (psycopg) by name.
    order: tuple[str, ...] | None
    # Values bound in the statement itself (a literal compared with), under their names.
    defaults: dict[str, Any]
    binds: dict[str, Processor]
    results: tuple[tuple[int, Processor], ...]
    make_row: Callable[..., Any]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        bound = {**self.defaults, **values}
        for name, process in self.binds.items():
            bound[name] = process(bound[name])
        if self.order is None:
            return bound
        return tuple(bound[name] for name in self.order)

    def row(self, raw: tuple[Any, ...]) -> Any:
        if not self.results:
            return self.make_row(*raw)
        values = list(raw)
        for index, process in self.results:
            values[index] = process(values[index])
        return self.make_row(*values)


class DriverConnection:
    """The driver's connection of a unit of work's transaction.

    A writing unit of work asks its session once per transaction (asking costs more than a
    lookup by index) and forgets the answer when the transaction ends. A reading one has a
    connection of its own, which its session shares; the first read begins the transaction.
    """

    def __init__(self, session: Session, connection: Connection | None = None) -> None:
        self._session = session
        self._connection = connection
        self._current: tuple[Any, Dialect] | None = None
        self._in_use: Connection | None = None

    def get(self) -> tuple[Any, Dialect]:
        if self._current is None:
            connection = self._connection or self._session.connection()
            driver = connection.connection.dbapi_connection
            if self._connection is not None:
                begin_read(driver, connection.dialect)
            self._current = (driver, connection.dialect)
            self._in_use = connection
        return self._current

    def forget(self) -> None:
        self._current = None
        self._in_use = None

    def check_lost(self, driver: Any) -> None:
        """After a statement failed: if the driver lost its connection, the pool is told to
        drop it (SQLAlchemy does so itself for the statements it runs), so that it is neither
        rolled back, which would fail again, nor lent again."""
        if getattr(driver, "closed", False) and self._in_use is not None:
            self._in_use.invalidate()


class PreparedRead:
    """A SELECT, compiled the first time it runs on each dialect. Its rows are named tuples
    with the statement's column names, as SQLAlchemy's rows are. The statement may be made
    for each dialect (given the dialect's name), where the two stores' SQL differs."""

    def __init__(self, statement: Select[Any] | Callable[[str], Select[Any]]) -> None:
        self._statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def statement_for(self, dialect: str) -> Select[Any]:
        if isinstance(self._statement, Select):
            return self._statement
        return self._statement(dialect)

    def rows(self, connection: DriverConnection, parameters: Mapping[str, Any]) -> list[Any]:
        """Every row, read in the connection's transaction."""
        driver, dialect = connection.get()
        compiled = self._compiled.get(dialect.name) or self._compile(dialect)
        cursor = driver.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(parameters))
            return [compiled.row(raw) for raw in cursor.fetchall()]
        except Exception:
            connection.check_lost(driver)
            raise
        finally:
            cursor.close()

    def first(self, connection: DriverConnection, parameters: Mapping[str, Any]) -> Any | None:
        found = self.rows(connection, parameters)
        return found[0] if found else None

    def _compile(self, dialect: Dialect) -> _Compiled:
        prepared = _compile(self.statement_for(dialect.name), dialect)
        self._compiled[dialect.name] = prepared
        return prepared


class PreparedWrite:
    """An INSERT, UPDATE or DELETE compiled once per dialect and run as PreparedRead runs a
    SELECT (the few writes a failed login makes). The statement may be made for each dialect,
    as an upsert is spelled differently on each store."""

    def __init__(self, statement: UpdateBase | Callable[[str], UpdateBase]) -> None:
        self._statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def run(self, connection: DriverConnection, parameters: Mapping[str, Any]) -> int:
        """Runs the statement in the connection's transaction; returns the rows it touched."""
        driver, dialect = connection.get()
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = (
                self._statement
                if isinstance(self._statement, UpdateBase)
                else self._statement(dialect.name)
            )
            compiled = self._compiled[dialect.name] = _compile(statement, dialect)
        cursor = driver.cursor()
        try:
            cursor.execute(compiled.sql, compiled.parameters(parameters))
            return int(cursor.rowcount)
        except Exception:
            connection.check_lost(driver)
            raise
        finally:
            cursor.close()

    def run_many(self, driver: Any, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> None:
        """Runs the statement once per row, in one call, on a driver connection the caller
        holds and whose transaction it ends."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = (
                self._statement
                if isinstance(self._statement, UpdateBase)
                else self._statement(dialect.name)
            )
            compiled = self._compiled[dialect.name] = _compile(statement, dialect)
        cursor = driver.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
        finally:
            cursor.close()


def _compile(statement: Select[Any] | UpdateBase, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    names = [column[0] for column in compiled._result_columns]
    results = tuple(
        (index, process)
        for index, column in enumerate(compiled._result_columns)
        if (process := _result_processor(column[3], dialect)) is not None
    )
    prepared = _Compiled(
        sql=compiled.string,
        order=tuple(compiled.positiontup or ()) if compiled.positional else None,
        defaults=dict(compiled.construct_params(_check=False)),
        binds=dict(compiled._bind_processors),  # type: ignore[arg-type]
        results=results,
        make_row=namedtuple("Row", names),
    )
    return prepared


def _result_processor(type_: Any, dialect: Dialect) -> Processor | None:
    """How a column's value is read: as SQLAlchemy reads it, except SQLite's dates and
    timestamps, which SQLAlchemy stores as ISO 8601 text and parses with a regular expression;
    ``fromisoformat`` reads the same text in a fraction of the time."""
    if dialect.name == "sqlite":
        if isinstance(type_, UtcDateTime):
            return _utc_timestamp
        if isinstance(type_, Date) and not isinstance(type_, DateTime):
            return _date
    process: Processor | None = type_._cached_result_processor(dialect, None)
    return process


def _utc_timestamp(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _date(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)
