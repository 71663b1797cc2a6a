"""The server's following of the population register: page after page of Folkeregisteret's
feed while there are events, then one look every NLR_FREG_POLL_SECONDS. Every server may run
it; the lease in the database lets one read at a time (usecases/population.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import socket

from nlr_server.api.daemon_thread import on_daemon_thread
from nlr_server.api.services import now
from nlr_server.population.folkeregisteret import RetryLater
from nlr_server.usecases.population import delete_deceased, sync_page
from nlr_server.usecases.ports import PopulationSource, UnitOfWorkFactory

log = logging.getLogger(__name__)


def sync_owner() -> str:
    """This server process, as the lease names it."""
    return f"server@{socket.gethostname()}:{os.getpid()}"


async def follow_population_register(
    unit_of_work: UnitOfWorkFactory,
    source: PopulationSource,
    poll_seconds: float,
    death_grace: dt.timedelta,
) -> None:
    """Runs until cancelled. An error is logged by its class only (a message might quote
    personal data), kept as the sync's last error, and the next round tries again."""
    owner = sync_owner()
    while True:
        try:
            result = await on_daemon_thread(
                functools.partial(sync_page, unit_of_work, source, owner, now(), death_grace),
                "nlr-population",
            )
        except RetryLater as wait:
            await asyncio.sleep(wait.seconds)
            continue
        except Exception as error:
            log.error("population register sync failed: %s", type(error).__name__)
            await on_daemon_thread(
                functools.partial(_record_error, unit_of_work, owner, type(error).__name__),
                "nlr-population",
            )
            await asyncio.sleep(poll_seconds)
            continue
        if result.applied:
            log.info("population register: %d events read, %d applied", result.read, result.applied)
        if result.caught_up:
            try:
                deleted = await on_daemon_thread(
                    functools.partial(delete_deceased, unit_of_work, now()), "nlr-population"
                )
            except Exception as error:
                log.error("deleting the deceased failed: %s", type(error).__name__)
            else:
                if deleted:
                    log.info("population register: %d deceased borrowers deleted", deleted)
            await asyncio.sleep(poll_seconds)


def _record_error(unit_of_work: UnitOfWorkFactory, owner: str, error: str) -> None:
    try:
        with unit_of_work() as uow:
            uow.population.record_error(owner, error, now())
            uow.commit()
    except Exception as failure:
        log.error(
            "could not record the population register sync's error: %s", type(failure).__name__
        )
