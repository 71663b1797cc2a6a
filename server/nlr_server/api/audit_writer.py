"""Writes the audit events of reads and refusals, by group commit: a call's answer waits until
its event is committed, and every event that arrived while one batch was being written goes
into the next, so one commit serves many calls.

Changes are not written here: their use cases commit their events with the change
(domain/audit.py). Events recorded without waiting (a stream's, when it ends) go with the next
batch, and are kept and written again after a failed write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from nlr_server.domain.audit import AuditEvent
from nlr_server.domain.errors import Unavailable

# Commits a batch of events in a transaction of its own (store/audit_repository.AuditLog).
Append = Callable[[Sequence[AuditEvent]], None]
# The same on the event loop, if no other writer is at work; False if one is.
TryAppend = Callable[[Sequence[AuditEvent]], bool]

log = logging.getLogger(__name__)

# Past this many unwritten events (the database has been down for a while) new ones are
# still kept; the count is logged so an operator sees the trail is behind.
_WARN_BACKLOG = 100_000


class AuditUnavailable(Unavailable):
    """The audit trail cannot be written just now: the call is answered without its result."""

    reason = "AUDIT_UNAVAILABLE"


class AuditWriter:
    def __init__(
        self,
        append: Append,
        executor: Executor,
        *,
        retry_seconds: float,
        append_on_loop: TryAppend | None = None,
    ) -> None:
        """``append_on_loop``: for an embedded store, where a batch is written faster than
        it is handed to a worker; a batch it cannot write at once goes to a worker."""
        self._append = append
        self._append_on_loop = append_on_loop
        self._executor = executor
        self._retry_seconds = retry_seconds
        # Events whose calls wait for their commit, and events that need not wait.
        self._waiting: list[tuple[AuditEvent, asyncio.Future[None]]] = []
        self._pending: list[AuditEvent] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        return len(self._pending) + len(self._waiting)

    def record(self, event: AuditEvent) -> None:
        """Writes ``event`` with the next batch, without waiting for it."""
        self._pending.append(event)
        if self._wake is not None:
            self._wake.set()

    async def write(self, event: AuditEvent) -> None:
        """Returns once ``event`` is committed; raises AuditUnavailable if it could not be."""
        if self._wake is None:
            # Not started (a server being built or stopped): write it on the spot.
            await asyncio.get_running_loop().run_in_executor(self._executor, self._append, [event])
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        self._wake.set()
        await done

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._wake = None
        await self._flush()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self._flush():
                # Not at once again: the database is most likely still down.
                await asyncio.sleep(self._retry_seconds)
                if self._pending:
                    self._wake.set()

    async def _flush(self) -> bool:
        """Writes what has arrived in one transaction; False if that failed."""
        waiting, self._waiting = self._waiting, []
        pending, self._pending = self._pending, []
        batch = [event for event, _ in waiting] + pending
        if not batch:
            return True
        try:
            if self._append_on_loop is None or not self._append_on_loop(batch):
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._append, batch)
        except Exception as error:
            # The calls that waited are answered UNAVAILABLE (and audited as such by the
            # interceptor); the rest are kept for the next attempt: the trail loses nothing.
            self._pending[:0] = pending
            for _, done in waiting:
                if not done.done():
                    done.set_exception(
                        AuditUnavailable(
                            "the audit trail cannot be written now",
                            retry_after=self._retry_seconds,
                        )
                    )
            if len(self._pending) >= _WARN_BACKLOG:
                log.error("audit trail %d events behind", len(self._pending))
            log.warning("audit write failed, will retry: %s", type(error).__name__)
            return False
        for _, done in waiting:
            if not done.done():
                done.set_result(None)
        return True
