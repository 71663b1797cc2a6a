"""The unit of work: one database transaction that commits everything or nothing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.errors import EtagMismatch
from nlr_server.store.audit_repository import SqlAuditRepository
from nlr_server.store.borrower_repository import SqlBorrowerRepository
from nlr_server.store.contact_change_repository import SqlContactChangeRepository
from nlr_server.store.credential_repository import SqlCredentialRepository
from nlr_server.store.database import (
    READ_ONLY,
    create_async_store_engine,
    create_store_engine,
    server_closed,
)
from nlr_server.store.erasure import erasure_requested
from nlr_server.store.errors import as_register_error
from nlr_server.store.feed_repository import SqlFeedRepository
from nlr_server.store.full_record import Prefetched
from nlr_server.store.guardian_repository import SqlGuardianRepository
from nlr_server.store.identity_repository import SqlIdentityRepository
from nlr_server.store.library_repository import SqlLibraryRepository
from nlr_server.store.notice_repository import SqlNoticeRepository
from nlr_server.store.population_sync_repository import SqlPopulationSyncRepository
from nlr_server.store.prepared import DriverConnection
from nlr_server.store.reservation_repository import SqlReservationRepository
from nlr_server.store.second_factor_repository import SqlSecondFactorRepository
from nlr_server.store.session_repository import SqlSessionRepository
from nlr_server.store.vendor_repository import SqlVendorRepository
from nlr_server.usecases.ports import WriterBusy

# Told the last feed sequence after a commit that appended to the change feed.
FeedListener = Callable[[int], None]
# Told after a commit that deleted or purged personal data (store/erasure.py).
ErasureListener = Callable[[], None]


class SqlUnitOfWork:
    def __init__(
        self,
        bind: Engine,
        sealer: NationalIdSealer,
        on_feed: FeedListener | None = None,
        write_lock: threading.RLock | None = None,
        *,
        read_only: bool = False,
        wait: bool = True,
        on_erase: ErasureListener | None = None,
        connection: Connection | None = None,
        reuse: ReusableUnits | None = None,
    ) -> None:
        self._write_lock = write_lock
        self._on_erase = on_erase
        self._erase_pending = False
        self._wait = wait
        self._locked = False
        # A reading unit of work takes its connection at once and reads through the driver
        # (store/prepared.py) without the session's transaction machinery; the session, for
        # the other reads, shares the connection and so the snapshot. A reusable one (see
        # ReusableUnits), reading or writing, is given a connection it keeps; a writing one's
        # session begins and ends its transactions on it.
        self._reuse = reuse
        self._read_only = read_only
        self._connection = connection or (_connect(bind) if read_only else None)
        self._session = Session(
            bind=self._connection or bind, expire_on_commit=False, autoflush=False
        )
        self._on_feed = on_feed
        self._driver = DriverConnection(self._session, self._connection if read_only else None)
        # Nothing changes in a reading unit of work, so what one repository read with a
        # borrower can answer another's question about them (store/full_record.py).
        prefetched = self._prefetched = Prefetched() if read_only else None
        self.feed = SqlFeedRepository(self._session, self._driver)
        self.borrowers = SqlBorrowerRepository(self._session, sealer, self._driver, prefetched)
        self.libraries = SqlLibraryRepository(self._session)
        self.vendors = SqlVendorRepository(self._session)
        self.audit = SqlAuditRepository(self._session, self._driver)
        self.credentials = SqlCredentialRepository(self._session, self._driver)
        self.reservations = SqlReservationRepository(self._session)
        self.guardians = SqlGuardianRepository(self._session, self._driver, prefetched)
        self.notices = SqlNoticeRepository(self._session)
        self.population = SqlPopulationSyncRepository(self._session)
        self.identities = SqlIdentityRepository(self._session, self._driver, prefetched)
        self.sessions = SqlSessionRepository(self._session)
        self.second_factors = SqlSecondFactorRepository(self._session)
        self.contact_changes = SqlContactChangeRepository(self._session)

    def __enter__(self) -> SqlUnitOfWork:
        if self._write_lock is not None:
            if not self._write_lock.acquire(blocking=self._wait):
                if self._reuse is not None:
                    self._reuse.give_back(self)  # untouched: no __exit__ follows
                raise WriterBusy("another unit of work in this process is writing")
            self._locked = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Anything not committed explicitly is rolled back: a failed request changes nothing.
        self._driver.forget()
        failed_rollback: Exception | None = None
        if self._reuse is not None:
            # Rolled back, a unit of work is kept for the next, whatever failed in it (a
            # borrower not found, most often). One whose connection was lost or whose rollback
            # failed is dropped, and the next connects afresh.
            try:
                self._end_transaction()
            except Exception as rollback_error:
                failed_rollback = rollback_error
                self._reuse.failed(self)
            else:
                if self.usable:
                    self._reuse.give_back(self)
                else:
                    self._reuse.failed(self)
            finally:
                self._release_lock()
        else:
            try:
                self._session.rollback()
            except Exception as rollback_error:
                # The connection is gone (that is likely why the work failed): nothing to undo.
                failed_rollback = rollback_error
            finally:
                self._session.close()
                self._drop()
                self._release_lock()
        if isinstance(exc, StaleDataError):
            raise EtagMismatch("the borrower changed since it was read; read it again") from None
        failure = exc or failed_rollback
        if failure is not None:
            translated = as_register_error(failure)
            if translated is not None:
                # Not chained: the driver's text may quote personal data, and must not reach
                # a traceback.
                raise translated from None
            if exc is None:
                raise failure
        if exc is None and self._erase_pending and self._on_erase is not None:
            self._erase_pending = False
            # Once this transaction's locks are released: erasing waits for other writers.
            self._on_erase()

    def _release_lock(self) -> None:
        if self._locked:
            assert self._write_lock is not None
            self._locked = False
            self._write_lock.release()

    @property
    def usable(self) -> bool:
        """Whether a kept unit of work's connection is still good to use."""
        connection = self._connection
        if connection is None or connection.closed or connection.invalidated:
            return False
        return not server_closed(connection.connection.driver_connection)

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()  # back to the pool, which rolls the reading back

    def _end_transaction(self) -> None:
        """Ends a reusable unit of work's transaction, leaving the connection, the session and
        the repositories ready for the next: what was read is forgotten, as it may change, and
        what was queued and not committed is dropped."""
        session = self._session
        if session.in_transaction():
            session.rollback()
        if session.identity_map:
            session.expunge_all()
        erasure_requested(session)  # a mark left by a deletion that did not commit
        self.feed.discard()
        assert self._connection is not None
        if self._read_only and self._connection.dialect.name == "sqlite":
            # A read the driver began (store/prepared.py; PostgreSQL reads in autocommit
            # begin none).
            driver = self._connection.connection.dbapi_connection
            if driver.in_transaction:  # type: ignore[union-attr]
                driver.rollback()  # type: ignore[union-attr]
        if self._prefetched is not None:
            self._prefetched.clear()

    def commit(self) -> None:
        # The change feed's entries are numbered last, so the feed's lock is held only for
        # the end of the transaction.
        last_sequence = self.feed.flush()
        self._driver.forget()
        self._session.commit()
        self._erase_pending = erasure_requested(self._session)
        if last_sequence and self._on_feed is not None:
            self._on_feed(last_sequence)


class ReusableUnits:
    """Units of work used again and again: their connections, sessions and repositories are
    made once, as making them took longer than a lookup by index. On an embedded store, for
    reads and short writes on the event loop (for_loop_reads, for_loop_writes), which run one
    at a time, so one is kept and one asked for while it is lent is a unit of work nested in
    another, a mistake. On PostgreSQL, for reads in greenlets on the loop (for_greenlets),
    which overlap: up to ``keep`` are kept, each holding a connection of the pool.

    One whose connection was lost is dropped with it, and with it those kept on PostgreSQL (a
    lost connection most often means the database restarted); one kept whose connection the
    server closed meanwhile is dropped when next taken, as the pool checks at checkout."""

    def __init__(
        self,
        make: Callable[[ReusableUnits], SqlUnitOfWork],
        *,
        keep: int = 1,
        overlap: bool = False,
    ) -> None:
        """``make`` makes a unit of work on a connection of its own."""
        self._make = make
        self._keep = keep
        self._overlap = overlap
        self._idle: list[SqlUnitOfWork] = []
        self._lent = 0

    def take(self) -> SqlUnitOfWork:
        if self._lent and not self._overlap:
            raise RuntimeError("a unit of work is in use: those on the loop do not nest")
        unit = self._idle.pop() if self._idle else None
        while unit is not None and not unit.usable:
            unit._drop()
            unit = self._idle.pop() if self._idle else None
        if unit is None:
            unit = self._make(self)
        self._lent += 1
        return unit

    def give_back(self, unit: SqlUnitOfWork) -> None:
        self._lent -= 1
        if len(self._idle) < self._keep:
            self._idle.append(unit)
        else:
            unit._drop()

    def failed(self, unit: SqlUnitOfWork) -> None:
        self._lent -= 1
        unit._drop()
        if self._overlap:
            self.close()

    def close(self) -> None:
        """Drops the kept units of work and their connections."""
        idle, self._idle = self._idle, []
        for unit in idle:
            unit._drop()


def _connect(bind: Engine) -> Connection:
    try:
        return bind.connect()
    except Exception as error:
        translated = as_register_error(error)
        if translated is None:
            raise
        raise translated from None


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine; the use cases call it for each transaction."""

    def __init__(
        self,
        engine: Engine,
        sealer: NationalIdSealer,
        *,
        write_lock: threading.RLock | None = None,
        wait: bool = True,
    ) -> None:
        self.engine = engine
        self._sealer = sealer
        self._wait = wait
        # Set by the server: wakes the change feed's watchers after a commit.
        self.on_feed: FeedListener | None = None
        # Set by the server: erases what a deletion left on disk, after its commit.
        self.on_erase: ErasureListener | None = None
        # Made once: an engine with options is cheap to use but not to make per call.
        # PostgreSQL reads run in autocommit: under READ COMMITTED each statement sees its own
        # snapshot either way, and there is then no transaction to roll back, which would
        # cost a round trip to the server on every read.
        reading: dict[str, object] = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            reading["isolation_level"] = "AUTOCOMMIT"
        self._read_only = engine.execution_options(**reading)
        # SQLite has one writer at a time. Writers in this process queue here, woken the
        # moment the lock is free, instead of in SQLite's busy handler, which sleeps and
        # retries (up to 100 ms a turn: one login's p99 was a second with 32 in flight).
        # Reentrant, as a unit of work opened inside another on the same thread does not
        # take SQLite's lock until it writes. Other processes still queue in the busy handler.
        if write_lock is None and engine.dialect.name == "sqlite":
            write_lock = threading.RLock()
        self._write_lock = write_lock
        # Set by for_loop_reads and for_loop_writes: the units of work reused on the loop.
        self._reading: ReusableUnits | None = None
        self._writing: ReusableUnits | None = None

    @property
    def write_lock(self) -> threading.RLock | None:
        """This process's writer lock of an embedded store (None on PostgreSQL)."""
        return self._write_lock

    def for_loop_reads(self) -> SqlUnitOfWorkFactory | None:
        """Units of work for reads run on the event loop itself, on a connection of their own;
        None unless the store is embedded (SQLite), where a read is a local file access that
        never waits for a writer (WAL) and costs less than handing it to a worker."""
        if self.engine.dialect.name != "sqlite":
            return None
        engine = create_store_engine(self.engine.url.render_as_string(False), pool_size=1)
        factory = SqlUnitOfWorkFactory(engine, self._sealer)
        factory._reading = ReusableUnits(factory._make_reading)
        return factory

    def for_greenlets(self, pool_size: int) -> tuple[SqlUnitOfWorkFactory, AsyncEngine] | None:
        """Units of work for use cases run in a greenlet on the event loop (greenlet_spawn),
        on PostgreSQL's asyncio driver; None on an embedded store, whose reads and short
        writes run on the loop itself (for_loop_reads, for_loop_writes). The asyncio engine
        is returned to be disposed of."""
        if self.engine.dialect.name != "postgresql":
            return None
        engine = create_async_store_engine(
            self.engine.url.render_as_string(False), pool_size=pool_size
        )
        factory = SqlUnitOfWorkFactory(engine.sync_engine, self._sealer)
        # Half the pool at most is kept by idle readers, so writers find connections free.
        factory._reading = ReusableUnits(
            factory._make_reading, keep=max(1, pool_size // 2), overlap=True
        )
        return factory, engine

    def for_loop_writes(self) -> SqlUnitOfWorkFactory | None:
        """Units of work for short writes run on the event loop itself, on a connection of
        their own; None unless the store is embedded (SQLite). They share this factory's writer
        lock but never wait, for it or for SQLite's: one that would wait raises WriterBusy
        before it reads or writes anything, and the caller hands the work to a worker."""
        if self.engine.dialect.name != "sqlite":
            return None
        engine = create_store_engine(
            self.engine.url.render_as_string(False), pool_size=1, wait_for_writers=False
        )
        factory = SqlUnitOfWorkFactory(
            engine, self._sealer, write_lock=self._write_lock, wait=False
        )
        factory._writing = ReusableUnits(factory._make_writing)
        return factory

    def _make_reading(self, reuse: ReusableUnits | None = None) -> SqlUnitOfWork:
        """A reading unit of work; a reused one is given the connection it keeps."""
        return SqlUnitOfWork(
            self._read_only,
            self._sealer,
            read_only=True,
            connection=_connect(self._read_only) if reuse is not None else None,
            reuse=reuse,
        )

    def _make_writing(self, reuse: ReusableUnits | None = None) -> SqlUnitOfWork:
        """A writing unit of work; a reused one is given the connection it keeps."""
        return SqlUnitOfWork(
            self.engine,
            self._sealer,
            self.on_feed,
            self._write_lock,
            wait=self._wait,
            on_erase=self.on_erase,
            connection=_connect(self.engine) if reuse is not None else None,
            reuse=reuse,
        )

    def close_kept(self) -> None:
        """Closes the units of work kept for reuse (on an asyncio engine's: in a greenlet,
        greenlet_spawn, as closing one gives its connection back to the pool)."""
        for kept in (self._reading, self._writing):
            if kept is not None:
                kept.close()

    def dispose(self) -> None:
        """Closes the engine's connections, those kept for reuse as well."""
        self.close_kept()
        self.engine.dispose()

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        kept = self._reading if read_only else self._writing
        if kept is not None:
            return kept.take()
        return self._make_reading() if read_only else self._make_writing()
