"""The real `nlr-server` process, for tests that start, signal or kill it."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import client_channel

NLR_SERVER = Path(sys.executable).parent / "nlr-server"
START_DEADLINE = 30.0
EXIT_DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_environment(
    pki: DevPkiPaths, keyring_path: Path, database_url: str, **overrides: str | None
) -> dict[str, str]:
    """The process environment of a working server; an override of None unsets the variable."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("NLR_")}
    settings: dict[str, str | None] = {
        "NLR_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
        "NLR_DATABASE_URL": database_url,
        "NLR_TLS_CERT": str(pki.server_cert),
        "NLR_TLS_KEY": str(pki.server_key),
        "NLR_TLS_CLIENT_CA": str(pki.ca_cert),
        "NLR_KEYRING": str(keyring_path),
        "NLR_ALLOW_SYNTHETIC_IDS": "true",
        "NLR_GRACE_SECONDS": "10",
        "NLR_HEALTH_INTERVAL_SECONDS": "0.2",
    }
    settings.update(overrides)
    environment.update({name: value for name, value in settings.items() if value is not None})
    return environment


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    target: str
    log_path: Path

    @property
    def log(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_server(
    environment: dict[str, str], pki: DevPkiPaths, cwd: Path
) -> Iterator[ServerProcess]:
    """Starts nlr-server and waits until it serves; kills it on the way out whatever happened."""
    log_path = cwd / "nlr-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(NLR_SERVER)],
            env=environment,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    started = ServerProcess(process, environment["NLR_LISTEN_ADDRESS"], log_path)
    try:
        wait_until_serving(started, pki)
        yield started
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=EXIT_DEADLINE)


def health_status(target: str, pki: DevPkiPaths) -> int:
    """The overall health status; raises grpc.RpcError if no call can be made."""
    with client_channel(target, pki) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=2.0
        )
        status: int = response.status
        return status


def wait_until_serving(server: ServerProcess, pki: DevPkiPaths) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"nlr-server exited with {server.process.returncode}:\n{server.log}")
        with contextlib.suppress(grpc.RpcError):
            if health_status(server.target, pki) == health_pb2.HealthCheckResponse.SERVING:
                return
        time.sleep(0.1)
    pytest.fail(f"nlr-server did not serve within {START_DEADLINE}s:\n{server.log}")


@contextlib.contextmanager
def borrowers_write_locked(database_url: str) -> Iterator[None]:
    """Holds the lock a CreateBorrower needs, so that the call waits in flight until released."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        lock_holder = sqlite3.connect(url.database, isolation_level=None, timeout=10)
        try:
            lock_holder.execute("BEGIN IMMEDIATE")
            yield
            lock_holder.execute("ROLLBACK")
        finally:
            lock_holder.close()
        return
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, connect_timeout=10) as connection:
        connection.execute("LOCK TABLE borrowers IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            connection.rollback()
