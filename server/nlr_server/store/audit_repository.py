"""The audit trail in the database: appended in batches, queried by operators."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.orm import Session

from nlr_server.domain.actor import ActorKind
from nlr_server.domain.audit import AuditEvent
from nlr_server.store.database import NO_WAIT
from nlr_server.store.models import AuditEventRow, table_of
from nlr_server.store.prepared import DriverConnection, PreparedWrite
from nlr_server.usecases.ports import WriterBusy


def append_events(target: Session | Connection, events: Sequence[AuditEvent]) -> None:
    """Adds the events to ``target``'s transaction: a unit of work's session, or the
    connection of a bulk write (nlr-admin import)."""
    if events:
        target.execute(insert(AuditEventRow), [_row(e) for e in events])


class AuditLog:
    """Appends audit events in transactions of their own, for the group commit of reads and
    refusals (api/audit_writer.py): on a driver connection of its own, one statement and one
    commit a batch, without a unit of work's machinery, which would cost more than the batch.

    ``write_lock``: the store's writer lock in this process (SQLite's, so that the batch
    queues behind the units of work instead of in SQLite's busy handler).
    """

    def __init__(self, engine: Engine, write_lock: threading.RLock | None = None) -> None:
        self._engine = engine
        self._lock = write_lock
        self._driver: Any = None

    @property
    def engine(self) -> Engine:
        return self._engine

    def append(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        with self._lock if self._lock is not None else contextlib.nullcontext():
            self._append(events)

    def try_append(self, events: Sequence[AuditEvent]) -> bool:
        """As append, but only if no other writer is at work (an engine that never waits,
        store/database.py): False, with nothing written, if one is."""
        if self._lock is not None and not self._lock.acquire(blocking=False):
            return False
        try:
            self._append(events)
        except WriterBusy:
            return False
        finally:
            if self._lock is not None:
                self._lock.release()
        return True

    def _append(self, events: Sequence[AuditEvent]) -> None:
        """Writes the batch; on a connection that was held long enough to have died (the
        database restarted, an idle timeout), once more on a fresh one. A batch whose commit
        was lost mid-way may so be written twice: the trail may say more, never less."""
        held = self._driver is not None
        try:
            self._write(events)
        except WriterBusy:
            raise
        except Exception:
            if not held:
                raise
            self._write(events)

    def _write(self, events: Sequence[AuditEvent]) -> None:
        driver = self._connection()
        try:
            if self._engine.dialect.name == "sqlite":
                _begin_immediate(driver, self._engine)
                _APPEND.run_many(driver, self._engine.dialect, [_row(e) for e in events])
                _run(driver, "COMMIT")
            else:
                # One statement in autocommit is its own transaction: one round trip a batch,
                # and the rows go as one JSON array (less for the driver than a row each).
                cursor = driver.cursor()
                try:
                    cursor.execute(_APPEND_POSTGRES, (_rows_json(events),))
                finally:
                    cursor.close()
        except WriterBusy:
            raise
        except Exception:
            # The connection may be gone (that is likely why): a fresh one next time.
            driver, self._driver = self._driver, None
            with contextlib.suppress(Exception):
                driver.invalidate()
            raise

    def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.close()

    def _connection(self) -> Any:
        if self._driver is None:
            self._driver = self._engine.raw_connection()
            if self._engine.dialect.name == "postgresql":
                self._driver.dbapi_connection.autocommit = True
        return self._driver


def _begin_immediate(driver: Any, engine: Engine) -> None:
    try:
        _run(driver, "BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if engine.get_execution_options().get(NO_WAIT) and "locked" in str(error):
            raise WriterBusy("another connection is writing") from None
        raise


def _run(driver: Any, sql: str) -> None:
    cursor = driver.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


_COLUMNS = (
    "occurred_at",
    "vendor_id",
    "certificate_fingerprint",
    "library_number",
    "rpc",
    "card_number",
    "borrower_id",
    "outcome",
    "reason",
    "actor_kind",
    "actor_id",
)
_APPEND = PreparedWrite(
    insert(table_of(AuditEventRow)).values({name: bindparam(name) for name in _COLUMNS})
)


_APPEND_POSTGRES = f"""
INSERT INTO audit_events ({", ".join(_COLUMNS)})
SELECT {", ".join(_COLUMNS)} FROM json_to_recordset(%s::json) AS e(
    occurred_at timestamptz, vendor_id integer, certificate_fingerprint varchar,
    library_number varchar, rpc varchar, card_number varchar, borrower_id integer,
    outcome varchar, reason varchar, actor_kind varchar, actor_id varchar
)
"""


def _rows_json(events: Sequence[AuditEvent]) -> str:
    return json.dumps(
        [
            {
                **_row(e),
                "occurred_at": e.occurred_at.isoformat(),
            }
            for e in events
        ]
    )


def _row(e: AuditEvent) -> dict[str, Any]:
    return {
        "occurred_at": e.occurred_at,
        "vendor_id": e.vendor_id,
        "certificate_fingerprint": e.certificate_fingerprint,
        "library_number": e.library_number,
        "rpc": e.rpc,
        "card_number": e.card_number,
        "borrower_id": e.borrower_id,
        "outcome": e.outcome,
        "reason": e.reason,
        "actor_kind": e.actor_kind.value if e.actor_kind is not None else None,
        "actor_id": e.actor_id,
    }


class SqlAuditRepository:
    def __init__(self, session: Session, driver: DriverConnection | None = None) -> None:
        self._session = session
        self._driver = driver

    def append(self, events: Sequence[AuditEvent]) -> None:
        if self._driver is not None and len(events) == 1:
            # A change's one event: on the unit of work's driver connection, as its other hot
            # writes (the ORM's bulk insert costs more than the round trip).
            _APPEND.run(self._driver, _row(events[0]))
            return
        append_events(self._session, events)

    def for_card(self, card_number: str) -> list[AuditEvent]:
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.card_number == card_number)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )
        return [_event(r) for r in self._session.scalars(query)]

    def of_cards(
        self, card_numbers: Collection[str], before_id: int | None, limit: int
    ) -> list[tuple[int, AuditEvent]]:
        """The events of these card numbers, newest first, with their ids; only those before
        ``before_id`` when given (the next page)."""
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.card_number.in_(list(card_numbers)))
            .order_by(AuditEventRow.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(AuditEventRow.id < before_id)
        return [(r.id, _event(r)) for r in self._session.scalars(query)]

    def for_certificate(self, fingerprint: str) -> list[AuditEvent]:
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.certificate_fingerprint == fingerprint)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )
        return [_event(r) for r in self._session.scalars(query)]

    def in_window(
        self,
        vendor_id: int,
        start: dt.datetime,
        end: dt.datetime,
        library_number: str | None = None,
    ) -> list[AuditEvent]:
        """Events of one vendor (optionally one library) with start <= occurred_at < end."""
        query = (
            select(AuditEventRow)
            .where(AuditEventRow.vendor_id == vendor_id)
            .where(AuditEventRow.occurred_at >= start, AuditEventRow.occurred_at < end)
            .order_by(AuditEventRow.occurred_at, AuditEventRow.id)
        )
        if library_number is not None:
            query = query.where(AuditEventRow.library_number == library_number)
        return [_event(r) for r in self._session.scalars(query)]


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        occurred_at=row.occurred_at,
        rpc=row.rpc,
        outcome=row.outcome,
        vendor_id=row.vendor_id,
        certificate_fingerprint=row.certificate_fingerprint,
        library_number=row.library_number,
        card_number=row.card_number,
        borrower_id=row.borrower_id,
        reason=row.reason,
        actor_kind=ActorKind(row.actor_kind) if row.actor_kind is not None else None,
        actor_id=row.actor_id,
    )
