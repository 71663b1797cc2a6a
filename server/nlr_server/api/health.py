"""Keeps the standard health service's status in step with whether the database answers."""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2
from sqlalchemy import Engine

from nlr_server.store.database import ping

log = logging.getLogger(__name__)

# A database that answers slowly on a busy machine is still reachable: a ping may take twice the
# interval, and never less than this.
PING_TIMEOUT_FLOOR_SECONDS = 5.0


async def watch_database(
    engine: Engine,
    servicer: health.aio.HealthServicer,
    services: list[str],
    interval_seconds: float,
) -> None:
    """Sets every service SERVING while the database answers and NOT_SERVING while it does not."""
    serving: bool | None = None
    while True:
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
            # ping finishes, and then stopping the server waits for this loop for ever.
            async with asyncio.timeout(max(interval_seconds * 2, PING_TIMEOUT_FLOOR_SECONDS)):
                await asyncio.to_thread(ping, engine)
            now_serving = True
        except Exception as error:  # any failure to answer means not serving
            now_serving = False
            if serving is not False:
                log.warning("database unreachable: %s", type(error).__name__)
        if now_serving != serving:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if now_serving
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for service in ["", *services]:
                await servicer.set(service, status)
            if now_serving and serving is False:
                log.info("database reachable again")
            serving = now_serving
        await asyncio.sleep(interval_seconds)
