"""The server's background delivery of deletion notices: one round every poll interval."""

from __future__ import annotations

import asyncio
import functools
import logging

from nlr_server.api.daemon_thread import on_daemon_thread
from nlr_server.api.services import now
from nlr_server.domain.deletion_notice import DeliveryPolicy
from nlr_server.usecases.deletion_notices import NoticeSender, deliver_due_notices
from nlr_server.usecases.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)

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
            done = await on_daemon_thread(
                functools.partial(
                    deliver_due_notices,
                    unit_of_work,
                    send,
                    now,
                    policy=policy,
                    limit=ROUND_SIZE,
                ),
                "nlr-notices",
            )
        except Exception as error:
            log.error("deletion notice delivery round failed: %s", type(error).__name__)
        else:
            if len(done.delivered) + len(done.failed) >= ROUND_SIZE:
                continue
        await asyncio.sleep(poll_seconds)
