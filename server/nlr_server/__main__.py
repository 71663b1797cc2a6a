"""`nlr-server`: runs the register until SIGTERM or SIGINT, then drains and exits 0; with
NLR_WORKERS above 1, as that many worker processes under a supervising one (ops/workers.py)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys

from nlr_server.api.server import RegisterServer, StartupError
from nlr_server.ops.config import Config, ConfigError
from nlr_server.ops.workers import LIFELINE_OPTION, SERVING, WORKER_OPTION, Supervisor

log = logging.getLogger("nlr_server")


async def serve(config: Config, *, worker: int | None = None, lifeline: int | None = None) -> None:
    server = RegisterServer(config, worker=worker)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if lifeline is not None:
        _hold_lifeline(socket.socket(fileno=lifeline), stopping)
        log.info("serving as pid %d", os.getpid())
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


def _hold_lifeline(lifeline: socket.socket, stopping: asyncio.Event) -> None:
    """Tells the supervisor this worker serves; drains when the supervisor is gone."""
    lifeline.setblocking(False)
    lifeline.send(SERVING)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            if lifeline.recv(64):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        loop.remove_reader(lifeline.fileno())
        log.warning("the supervising process is gone: stopping")
        stopping.set()

    loop.add_reader(lifeline.fileno(), readable)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nlr-server",
        description="The national borrower register's gRPC server, configured by NLR_* "
        "environment variables (see the README's configuration table).",
    )
    # Set by the supervisor (ops/workers.py) for its workers only.
    parser.add_argument(WORKER_OPTION, type=int, help=argparse.SUPPRESS)
    parser.add_argument(LIFELINE_OPTION, type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    arguments = _arguments()
    try:
        config = Config.from_env()
    except ConfigError as error:
        sys.exit(f"nlr-server: configuration error: {error}")
    worker: int | None = arguments.worker
    if worker is None and config.workers > 1:
        _log_to_stderr(config, "supervisor")
        sys.exit(Supervisor(config).run())
    _log_to_stderr(config, None if worker is None else f"worker {worker}")
    if worker is not None:
        # Workers of one deployment share the address; the kernel spreads connections.
        config = dataclasses.replace(config, shared_port=True)
    try:
        asyncio.run(serve(config, worker=worker, lifeline=arguments.lifeline))
    except StartupError as error:
        sys.exit(f"nlr-server: cannot start: {error}")


def _log_to_stderr(config: Config, process: str | None) -> None:
    """Every line names the process it comes from when there are several."""
    tag = f"{process} " if process else ""
    logging.basicConfig(
        level=config.log_level, format=f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"
    )
    # Alembic announces its dialect on every schema check; that is noise in the server's log.
    logging.getLogger("alembic").setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
