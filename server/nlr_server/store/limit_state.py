"""The state of the limits every worker and server shares, kept in the database: token buckets
that calls are leased from in batches, and failed attempts counted in a window.

api/rate_limit.py decides when to come here (rarely: not on every call); this module only
keeps the numbers, each change in one short transaction of its own. Times are seconds since
the epoch on the calling server's clock (servers of one register keep their clocks in step).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Engine, delete, insert, select, text
from sqlalchemy.engine import Connection

from nlr_server.store.database import READ_ONLY
from nlr_server.store.models import LimitFailureRow, table_of

T = TypeVar("T")

_FAILURES = table_of(LimitFailureRow)


def _lease_statement(dialect: str) -> str:
    """Takes up to :want whole tokens from the bucket after refilling it for the time since
    its last lease, in one statement (the row's lock makes concurrent leases queue), and
    answers what is left and what was taken. A new bucket starts full. In the update, every
    column named is the row as it was."""
    if dialect == "sqlite":
        # SQLite's min and max of several arguments; a cast truncates, as floor does for >= 0.
        least, greatest = "min", "max"

        def whole(number: str) -> str:
            return f"CAST(({number}) AS INTEGER)"
    else:
        least, greatest = "least", "greatest"

        def whole(number: str) -> str:
            return f"floor({number})"

    level = (
        f"{least}(:burst, limit_buckets.tokens"
        f" + {greatest}(0, :now - limit_buckets.updated_at) * :rate)"
    )
    first = f"{least}(:want, {whole(':burst')})"
    taken = f"{least}(:want, {whole(level)})"
    return f"""
INSERT INTO limit_buckets (key, tokens, updated_at, granted)
VALUES (:key, :burst - {first}, :now, {first})
ON CONFLICT (key) DO UPDATE SET
    tokens = {level} - {taken},
    granted = {taken},
    updated_at = {greatest}(limit_buckets.updated_at, :now)
RETURNING tokens, granted
"""


class SqlLimitState:
    """Shared limits in the register's database, on an engine and threads of their own.

    ``write_lock``: the store's writer lock in this process (SQLite's), so that a change queues
    behind this process's units of work, as other processes' queue in SQLite's busy handler.
    ``thread_name_prefix``: its threads' names, which the server counts among its database
    calls when it stops (a lease waiting for a writer is one).
    """

    def __init__(
        self,
        engine: Engine,
        write_lock: threading.RLock | None = None,
        *,
        thread_name_prefix: str = "nlr-limits",
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock
        reading: dict[str, object] = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            reading["isolation_level"] = "AUTOCOMMIT"
        self._reading = engine.execution_options(**reading)
        self._lease = text(_lease_statement(engine.dialect.name))
        # Threads of their own: a lease must not queue behind slow calls on the store workers.
        self._threads = ThreadPoolExecutor(2, thread_name_prefix=thread_name_prefix)

    async def lease_tokens(
        self, key: str, want: int, *, rate: float, burst: float, now: float
    ) -> tuple[int, float]:
        """Takes up to ``want`` whole tokens: (how many were taken, how many are left)."""
        return await self._run(self._lease_tokens, key, want, rate, burst, now)

    async def recent_failures(self, key: str, since: float) -> list[float]:
        """The times of the key's failures after ``since``, oldest first."""
        return await self._run(self._recent_failures, key, since)

    async def add_failure(self, key: str, now: float, since: float) -> list[float]:
        """Counts a failure at ``now``; forgets every failure (of any key) from ``since`` or
        before; answers the key's failures after ``since``, oldest first."""
        return await self._run(self._add_failure, key, now, since)

    async def clear_failures(self, key: str) -> None:
        await self._run(self._clear_failures, key)

    async def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._engine.dispose()

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        call = functools.partial(function, *args)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def _writing(self) -> contextlib.AbstractContextManager[object]:
        return self._write_lock if self._write_lock is not None else contextlib.nullcontext()

    def _lease_tokens(
        self, key: str, want: int, rate: float, burst: float, now: float
    ) -> tuple[int, float]:
        parameters = {"key": key, "want": want, "rate": rate, "burst": float(burst), "now": now}
        with self._writing(), self._engine.begin() as connection:
            tokens, granted = connection.execute(self._lease, parameters).one()
        return int(granted), float(tokens)

    def _recent_failures(self, key: str, since: float) -> list[float]:
        with self._reading.connect() as connection:
            return _failures_after(connection, key, since)

    def _add_failure(self, key: str, now: float, since: float) -> list[float]:
        with self._writing(), self._engine.begin() as connection:
            connection.execute(delete(_FAILURES).where(_FAILURES.c.failed_at <= since))
            connection.execute(insert(_FAILURES).values(key=key, failed_at=now))
            return _failures_after(connection, key, since)

    def _clear_failures(self, key: str) -> None:
        with self._writing(), self._engine.begin() as connection:
            connection.execute(delete(_FAILURES).where(_FAILURES.c.key == key))


def _failures_after(connection: Connection, key: str, since: float) -> list[float]:
    rows = connection.execute(
        select(_FAILURES.c.failed_at)
        .where(_FAILURES.c.key == key, _FAILURES.c.failed_at > since)
        .order_by(_FAILURES.c.failed_at)
    )
    return [float(failed_at) for (failed_at,) in rows]
