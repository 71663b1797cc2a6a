"""Engines for the two stores: embedded SQLite (the default) and PostgreSQL (production)."""

from __future__ import annotations

import functools
import logging
import select
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from nlr_server.store.errors import describe
from nlr_server.usecases.ports import WriterBusy

# The driver's own log lines are its text, which may quote what it was sending; the register
# logs database failures itself, by class and SQLSTATE (store/errors.py).
logging.getLogger("psycopg").setLevel(logging.CRITICAL)


class _ByClassOnly(logging.Filter):
    """The pool logs a failed reset (the rollback of a connection handed back) with its
    traceback, whose chained exceptions quote statements: it is logged by class alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.msg}: {describe(record.exc_info[1])}"
            record.exc_info = None
            record.exc_text = None
        return True


# A filter applies to its own logger only, not to its children's records.
for _pool in ("QueuePool", "AsyncAdaptedQueuePool"):
    logging.getLogger(f"sqlalchemy.pool.impl.{_pool}").addFilter(_ByClassOnly())

# Execution options: a reading connection (BEGIN, not BEGIN IMMEDIATE, on SQLite), and one
# that may not wait for another writer.
READ_ONLY = "nlr_read_only"
NO_WAIT = "nlr_no_wait"

# A pooled PostgreSQL connection is replaced after this long, whatever its state: a firewall
# or load balancer between the register and the database may forget an idle one silently.
POSTGRES_RECYCLE_SECONDS = 1800


def create_store_engine(url: str, *, pool_size: int = 8, wait_for_writers: bool = True) -> Engine:
    """An engine with the settings the register relies on for the URL's dialect.

    ``wait_for_writers=False`` (SQLite only): a write transaction that would wait for another
    writer raises WriterBusy at once, and commits never checkpoint the write-ahead log (for
    writes run on the event loop, which must never wait).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": 30 if wait_for_writers else 0},
            execution_options={NO_WAIT: not wait_for_writers},
            # Parameters are personal data: never in an error's text, a log or a traceback.
            hide_parameters=True,
        )
        event.listen(
            engine,
            "connect",
            functools.partial(_configure_sqlite, wait_for_writers=wait_for_writers),
        )
        # pysqlite's own transaction handling defers BEGIN; take it over so a write
        # transaction starts with BEGIN IMMEDIATE and concurrent writers queue, not deadlock.
        event.listen(engine, "begin", _begin_immediate)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # No pre-ping: a SELECT 1 at every checkout is a round trip as long as a read. A
        # connection the server closed is found at checkout without one (_drop_if_closed); one
        # lost silently fails at its first statement, and a read is then retried once on a
        # fresh connection (api/services.py).
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=4,
            pool_recycle=POSTGRES_RECYCLE_SECONDS,
            hide_parameters=True,
        )
        _drop_closed_connections(engine)
        return engine
    raise ValueError(f"unsupported database backend {parsed.get_backend_name()!r}")


def _configure_sqlite(dbapi_connection: Any, _record: Any, *, wait_for_writers: bool) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Deleted personal data is overwritten, not left in the file's free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    if wait_for_writers:
        cursor.execute("PRAGMA busy_timeout=30000")
    else:
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # other connections checkpoint
    cursor.close()


def create_async_store_engine(url: str, *, pool_size: int = 8) -> AsyncEngine:
    """PostgreSQL on its asyncio driver, with the settings of create_store_engine. Units of
    work use its ``sync_engine`` from code run by ``greenlet_spawn`` on the event loop: each
    round trip then yields to the loop instead of blocking it or needing a thread."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=4,
        pool_recycle=POSTGRES_RECYCLE_SECONDS,
        hide_parameters=True,
    )
    _drop_closed_connections(engine.sync_engine)
    return engine


_FRESH = "nlr_fresh"


def _drop_closed_connections(engine: Engine) -> None:
    event.listen(engine, "connect", _mark_fresh)
    event.listen(engine, "checkout", _drop_if_closed)


def _mark_fresh(_dbapi_connection: Any, record: Any) -> None:
    record.info[_FRESH] = True


def _drop_if_closed(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Refuses a pooled connection the server has closed, so the pool connects afresh.

    An idle connection has nothing to read: the server sends nothing unasked (the register
    uses no LISTEN). A server that ends a session (a restart, pg_terminate_backend, an idle
    timeout) sends its FATAL error and closes the socket, which makes it readable. Polling the
    socket with a zero timeout is one system call, not a round trip.

    A connection just made is lent unchecked: the pool makes a second one at most, never
    fails a checkout for a connection that died as it was made (its first statement fails).
    """
    if record.info.pop(_FRESH, False):
        return
    # The driver's own (under the asyncio one's adapter).
    if server_closed(record.driver_connection):
        raise DisconnectionError("the server closed the connection")


def server_closed(driver: Any) -> bool:
    """Whether a PostgreSQL driver connection is closed, or its server has closed it (its
    socket readable or gone); False for SQLite's, which has no server to lose."""
    if not hasattr(driver, "fileno"):
        return False
    if driver.closed:
        return True
    poll = select.poll()  # not select(): a busy server's descriptors may pass FD_SETSIZE
    try:
        poll.register(driver.fileno(), select.POLLIN)
        events = poll.poll(0)
    except Exception:  # the driver's "connection is lost", or a closed descriptor
        return True
    return bool(events)


def _begin_immediate(connection: Any) -> None:
    # Readers never need the write lock: under WAL they see a snapshot without blocking writers.
    options = connection.get_execution_options()
    if options.get(READ_ONLY):
        begin_read(connection.connection.dbapi_connection, connection.dialect)
        return
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as error:
        if options.get(NO_WAIT) and "locked" in str(error.orig):
            raise WriterBusy("another connection is writing") from error
        raise


def begin_read(driver_connection: Any, dialect: Dialect) -> None:
    """Begins a reading transaction on the driver's connection, once: on SQLite, so that every
    read in it sees one snapshot (PostgreSQL's driver begins one by itself)."""
    if dialect.name == "sqlite" and not driver_connection.in_transaction:
        driver_connection.execute("BEGIN")


def ping(engine: Engine) -> None:
    """Raises if the database cannot answer a trivial query (never waiting on writers)."""
    with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        connection.execute(text("SELECT 1"))
