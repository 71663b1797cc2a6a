"""Writes audit events in batches: durable within a fraction of a second, cheap per call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Executor

from nlr_server.domain.audit import AuditEvent
from nlr_server.usecases.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)

# Past this many unwritten events (the database has been down for a while) new ones are
# still kept; the count is logged so an operator sees the trail is behind.
_WARN_BACKLOG = 100_000


class AuditWriter:
    def __init__(
        self, unit_of_work: UnitOfWorkFactory, executor: Executor, *, flush_seconds: float
    ) -> None:
        self._uow = unit_of_work
        self._executor = executor
        self._flush_seconds = flush_seconds
        self._pending: list[AuditEvent] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def record(self, event: AuditEvent) -> None:
        self._pending.append(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, batch)
        except Exception as error:
            # Keep them for the next attempt: the trail must not lose events.
            self._pending[:0] = batch
            if len(self._pending) >= _WARN_BACKLOG:
                log.error("audit trail %d events behind", len(self._pending))
            log.warning("audit write failed, will retry: %s", type(error).__name__)

    def _write(self, batch: list[AuditEvent]) -> None:
        with self._uow() as uow:
            uow.audit.append(batch)
            uow.commit()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()
