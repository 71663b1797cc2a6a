"""The server's background delivery of deletion notices: one round every poll interval."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from nlr_server.api.services import now
from nlr_server.domain.deletion_notice import DeliveryPolicy
from nlr_server.usecases.deletion_notices import NoticeSender, deliver_due_notices
from nlr_server.usecases.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)

T = TypeVar("T")

# Notices claimed per round; a full round is followed by the next at once.
ROUND_SIZE = 10


async def deliver_notices(
    unit_of_work: UnitOfWorkFactory,
    send: NoticeSender | None,
    policy: DeliveryPolicy,
    poll_seconds: float,
) -> None:
    """Runs delivery rounds until cancelled. With ``send`` None nothing is sent, but notices
    past the policy's give-up time are still purged."""
    while True:
        try:
            done = await _on_daemon_thread(
                functools.partial(
                    deliver_due_notices,
                    unit_of_work,
                    send,
                    now,
                    policy=policy,
                    limit=ROUND_SIZE,
                )
            )
        except Exception as error:
            log.error("deletion notice delivery round failed: %s", type(error).__name__)
        else:
            if len(done.delivered) + len(done.failed) >= ROUND_SIZE:
                continue
        await asyncio.sleep(poll_seconds)


async def _on_daemon_thread(function: Callable[[], T]) -> T:
    """Runs ``function`` on a thread of its own and awaits it.

    A mail server can keep a connection waiting for its whole timeout: on a daemon thread, a
    round still running when the server stops is abandoned, so that stopping never waits for it
    and it never keeps the process from exiting (a notice it was sending is retried later).
    """
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not done.set_running_or_notify_cancel():
            return
        try:
            done.set_result(function())
        except BaseException as error:
            done.set_exception(error)

    threading.Thread(target=run, name="nlr-notices", daemon=True).start()
    return await asyncio.wrap_future(done)
