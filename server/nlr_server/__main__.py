"""`nlr-server`: runs the register until SIGTERM or SIGINT, then drains and exits 0."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from nlr_server.api.server import RegisterServer, StartupError
from nlr_server.ops.config import Config, ConfigError

log = logging.getLogger("nlr_server")


async def serve(config: Config) -> None:
    server = RegisterServer(config)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping: draining in-flight calls for up to %ss", config.grace_seconds)
    await server.stop()
    abandoned = server.busy_workers
    if abandoned:
        # Worker threads stuck in the database would keep the interpreter alive at exit.
        log.warning("stopped with %d database calls abandoned after the grace period", abandoned)
        logging.shutdown()
        os._exit(0)
    log.info("stopped")


def main() -> None:
    try:
        config = Config.from_env()
    except ConfigError as error:
        sys.exit(f"nlr-server: configuration error: {error}")
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic announces its dialect on every schema check; that is noise in the server's log.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(config))
    except StartupError as error:
        sys.exit(f"nlr-server: cannot start: {error}")


if __name__ == "__main__":
    main()
