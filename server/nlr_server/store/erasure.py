"""Physical erasure of deleted personal data once its deletion has committed: on SQLite the
write-ahead log is truncated, on PostgreSQL the tables that held the data are vacuumed.

A repository that deletes or purges personal data marks its transaction (erase_after_commit);
the unit of work tells the store's eraser after the commit. Deleting a row leaves its bytes
behind: in SQLite's write-ahead log (every earlier version of each page it changed, until a
checkpoint that truncates it) and in PostgreSQL's dead tuples and index entries (until VACUUM).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_ERASE = "nlr_erase_after_commit"

# The tables a borrower's data is written to (directly, or as links to their id): all of them
# are vacuumed after a deletion, with their TOAST tables and indexes.
ERASED_TABLES = (
    "borrowers",
    "identities",
    "deletion_notices",
    "affiliations",
    "guardian_links",
    "login_attempts",
    "feed_entries",
    "card_numbers",
    "totp_credentials",
    "recovery_codes",
    "selfservice_sessions",
    "contact_changes",
)

# SQLite: how long one checkpoint attempt waits for readers and writers (its busy timeout),
# and the pauses between attempts that could not complete. Short, as an attempt keeps writers
# out while it waits, and every answer waits for its audit row to be written.
CHECKPOINT_ATTEMPT_MS = 20
FIRST_RETRY_SECONDS = 0.02
LAST_RETRY_SECONDS = 1.0
# How long a deleting transaction waits for its truncation before it answers (on a store
# worker, never on the event loop); one not done by then goes on in the background.
TRUNCATION_WAIT_SECONDS = 1.0
# A truncation or vacuum still held up this long is logged (once per hold-up).
HELD_UP_WARNING_SECONDS = 10.0


def erase_after_commit(session: Session) -> None:
    """Marks the session's transaction as one that deletes or purges personal data: once it
    commits, the store erases what the deleted rows leave on disk."""
    session.info[_ERASE] = True


def erasure_requested(session: Session) -> bool:
    """Whether the transaction just committed was marked; clears the mark."""
    return bool(session.info.pop(_ERASE, False))


class WalTruncation:
    """Truncates a SQLite database's write-ahead log after each deletion.

    The database file itself holds no deleted bytes (``secure_delete`` zeroes them in every page
    written), but the log keeps the earlier version of every page a transaction changed until a
    checkpoint copies the log into the file and truncates it. A checkpoint cannot complete while
    a reader still reads a snapshot from the log, or a writer is at work, so a thread of its own
    tries again, with short pauses, until one has completed.
    """

    def __init__(self, database: Path) -> None:
        self._database = database
        self._condition = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._stopping = False
        # Set while a truncation waits for another connection to let it complete.
        self._held_up = False
        self._thread: threading.Thread | None = None

    @classmethod
    def for_url(cls, url: str) -> WalTruncation:
        return cls(Path(str(make_url(url).database)))

    @property
    def completed(self) -> bool:
        """Whether every truncation asked for so far has been done."""
        with self._condition:
            return self._completed >= self._requested

    def start(self) -> None:
        """Starts the truncating thread and asks for one truncation at once: a server that
        stopped between a deletion's commit and its truncation leaves nothing behind."""
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nlr-wal-truncation", daemon=True
                )
                self._thread.start()
        self.request()

    def stop(self, timeout: float = 2.0) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def request(self) -> None:
        """Asks for a truncation after a commit that deleted personal data, without waiting
        (safe on the event loop)."""
        self._ask()

    def deleted(self) -> None:
        """Asks for a truncation and waits up to TRUNCATION_WAIT_SECONDS for it, so that the
        deletion's caller is answered once the bytes are gone (the usual case, in milliseconds).
        Called on a store worker, never on the event loop. While another connection holds a
        truncation up, it does not wait: a burst of deletions then would tie up every worker."""
        number = self._ask()
        with self._condition:
            if self._held_up:
                return
            self._condition.wait_for(
                lambda: self._completed >= number or self._stopping, TRUNCATION_WAIT_SECONDS
            )

    def _ask(self) -> int:
        with self._condition:
            self._requested += 1
            self._condition.notify_all()
            return self._requested

    def _run(self) -> None:
        connection = sqlite3.connect(self._database, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout={CHECKPOINT_ATTEMPT_MS}")
            while True:
                with self._condition:
                    self._condition.wait_for(
                        lambda: self._stopping or self._requested > self._completed
                    )
                    if self._stopping:
                        return
                    # A request made while this truncation runs may come from a commit after
                    # its start: it is done by the next one.
                    number = self._requested
                if not self._truncate(connection):
                    return
                with self._condition:
                    self._completed = max(self._completed, number)
                    self._condition.notify_all()
        finally:
            connection.close()

    def _truncate(self, connection: sqlite3.Connection) -> bool:
        """Checkpoints until the log is truncated; False if stopped first."""
        pause = FIRST_RETRY_SECONDS
        started = time.monotonic()
        warned = False
        while True:
            try:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as error:
                log.error("write-ahead log truncation failed: %s", type(error).__name__)
                busy = 1
            with self._condition:
                self._held_up = bool(busy)
            if not busy:
                if warned:
                    log.info("write-ahead log truncated after %.1f s", time.monotonic() - started)
                return True
            if not warned and time.monotonic() - started > HELD_UP_WARNING_SECONDS:
                warned = True
                log.warning(
                    "write-ahead log not yet truncated after a deletion: a reader or writer "
                    "holds the database; retrying"
                )
            with self._condition:
                if self._condition.wait_for(lambda: self._stopping, pause):
                    return False
            pause = min(pause * 2, LAST_RETRY_SECONDS)


class DeletionVacuum:
    """VACUUMs the tables that held a borrower's data after deletions, on PostgreSQL.

    A deleted (or updated) row stays in its page as a dead tuple, and its index entries with it,
    until VACUUM removes them; autovacuum gets to a table only after many such rows. The server
    runs a round (vacuum_if_pending) every quarter of NLR_DELETION_VACUUM_SECONDS. VACUUM can
    only remove what no snapshot may still see, so a round first waits for the transactions
    older than itself to end; one held up by a long transaction is tried again the next round.
    """

    def __init__(self, engine: Engine, *, horizon_wait_seconds: float) -> None:
        # VACUUM cannot run inside a transaction.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._horizon_wait = horizon_wait_seconds
        self._lock = threading.Lock()
        self._pending = False
        self._held_since: float | None = None

    @property
    def pending(self) -> bool:
        with self._lock:
            return self._pending

    def deleted(self) -> None:
        """Told after a commit that deleted personal data: the next round vacuums."""
        with self._lock:
            self._pending = True

    def vacuum_if_pending(self) -> bool:
        """Vacuums if a deletion committed since the last complete round; True if nothing is
        left pending. Blocking: run it on a thread, never on the event loop."""
        with self._lock:
            if not self._pending:
                return True
            # Cleared first: a deletion committing during this round asks for the next one.
            self._pending = False
        done = False
        try:
            done = self._vacuum()
        finally:
            if not done:
                with self._lock:
                    self._pending = True
        return done

    def _vacuum(self) -> bool:
        with self._engine.connect() as connection:
            # Every transaction that committed before this round has an id below this one:
            # once no snapshot older than it is left, VACUUM may remove all they deleted.
            horizon = int(
                connection.execute(
                    text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
                ).scalar_one()
            )
            if not self._wait_for_horizon(connection, horizon):
                return False
            connection.exec_driver_sql(f"VACUUM (INDEX_CLEANUP ON) {', '.join(ERASED_TABLES)}")
        if self._held_since is not None:
            log.info(
                "deletion vacuum done after %.0f s held up", time.monotonic() - self._held_since
            )
            self._held_since = None
        return True

    def _wait_for_horizon(self, connection: Connection, horizon: int) -> bool:
        waiting_since = time.monotonic()
        deadline = waiting_since + self._horizon_wait
        # xid is 32 bits wide and wraps around; age() compares within the wrap.
        parameters = {"horizon": str(horizon % 2**32)}
        while True:
            holders = connection.execute(_OLDER_SNAPSHOTS, parameters).all()
            if not holders:
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if self._held_since is None:
            self._held_since = waiting_since
        if time.monotonic() - self._held_since >= HELD_UP_WARNING_SECONDS:
            log.warning(
                "deletion vacuum held up by a transaction older than the deletion (%s); retrying",
                ", ".join(f"{kind} {name}" for kind, name in holders),
            )
        return False


# Snapshots (and replication slots) in this database older than the horizon: they keep
# VACUUM from removing what was deleted before it. Other VACUUMs are no obstacle.
_OLDER_SNAPSHOTS = text(
    "SELECT 'backend', pid::text FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    "   AND backend_type IN ('client backend', 'walsender')"
    "   AND NOT (state = 'active' AND query ILIKE 'vacuum%')"
    "   AND (age(backend_xmin) > age(CAST(:horizon AS xid))"
    "     OR age(backend_xid) > age(CAST(:horizon AS xid)))"
    " UNION ALL"
    " SELECT 'replication slot', slot_name::text FROM pg_replication_slots"
    " WHERE (database IS NULL OR database = current_database())"
    "   AND age(xmin) > age(CAST(:horizon AS xid))"
)


Eraser = WalTruncation | DeletionVacuum


def eraser_for(engine: Engine, *, vacuum_seconds: float) -> Eraser:
    """The eraser for the engine's store: a round of vacuum waits at most a quarter of the
    bound for older transactions to end."""
    if engine.dialect.name == "sqlite":
        return WalTruncation.for_url(engine.url.render_as_string(False))
    return DeletionVacuum(engine, horizon_wait_seconds=vacuum_seconds / 4)
