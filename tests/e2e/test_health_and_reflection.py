"""The standard health and reflection services: what operators and grpcurl rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from sqlalchemy.engine import make_url

from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    POSTGRES_URL_VARIABLE,
    ClientCertificates,
    ServerThread,
    client_channel,
    make_config,
    postgres_database,
    prepare_database,
)

REGISTRY = "nlr.registry.v1.BorrowerRegistry"
AUTHENTICATE = "nlr.auth.v1.Authenticate"
HEALTH = "grpc.health.v1.Health"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

GRPCURL = Path(sys.executable).parent / "grpcurl"


def check(channel: grpc.Channel, service: str) -> int:
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    status: int = response.status
    return status


def known_status(channel: grpc.Channel, service: str, deadline_seconds: float = 10.0) -> int:
    """The service's status once the server has set one.

    The services' statuses are set by the database watcher's first ping, which may come just
    after start() returns; until then a Check for them answers NOT_FOUND.
    """
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return check(channel, service)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


@pytest.mark.parametrize("service", ["", REGISTRY, AUTHENTICATE])
def test_health_check_reports_serving(channel: grpc.Channel, service: str) -> None:
    assert known_status(channel, service) == SERVING


def test_health_check_of_an_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as unknown:
        check(channel, "nlr.registry.v1.NoSuchService")

    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


# Reflection describes the code, not the data: SQLite alone is enough.


@pytest.fixture
def sqlite_channel(sqlite_server: ServerThread, pki: DevPkiPaths) -> Iterator[grpc.Channel]:
    with client_channel(sqlite_server.target, pki) as opened:
        yield opened


def test_reflection_lists_the_register_auth_and_health_services(
    sqlite_channel: grpc.Channel,
) -> None:
    services = set(ProtoReflectionDescriptorDatabase(sqlite_channel).get_services())

    assert {REGISTRY, AUTHENTICATE, HEALTH} <= services


def test_reflection_resolves_borrower_registry_with_its_methods(
    sqlite_channel: grpc.Channel,
) -> None:
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(sqlite_channel))

    service = pool.FindServiceByName(REGISTRY)
    get_borrower = service.methods_by_name["GetBorrower"]

    assert service.file.package == "nlr.registry.v1"
    assert get_borrower.input_type.full_name == "nlr.registry.v1.GetBorrowerRequest"
    assert get_borrower.output_type.full_name == "nlr.registry.v1.GetBorrowerResponse"
    assert "card_number" in get_borrower.input_type.fields_by_name


def grpcurl(
    server: ServerThread, pki: DevPkiPaths, *command: str, flags: tuple[str, ...] = ()
) -> str:
    """Runs grpcurl with the dev ILS certificate and no .proto files: reflection only."""
    if not GRPCURL.exists():
        pytest.skip(f"grpcurl is not installed at {GRPCURL} (it comes with the dev extras)")
    finished = subprocess.run(
        [
            str(GRPCURL),
            "-cacert",
            str(pki.ca_cert),
            "-cert",
            str(pki.ils_cert),
            "-key",
            str(pki.ils_key),
            *flags,
            server.target,
            *command,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_grpcurl_lists_services_through_reflection(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    listed = grpcurl(sqlite_server, pki, "list").split()

    assert {REGISTRY, AUTHENTICATE, HEALTH} <= set(listed)


def test_grpcurl_describes_borrower_registry_through_reflection(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> None:
    described = grpcurl(sqlite_server, pki, "describe", REGISTRY)

    assert f"{REGISTRY} is a service:" in described
    assert (
        "rpc GetBorrower ( .nlr.registry.v1.GetBorrowerRequest ) "
        "returns ( .nlr.registry.v1.GetBorrowerResponse );"
    ) in described


def test_grpcurl_calls_the_health_check(sqlite_server: ServerThread, pki: DevPkiPaths) -> None:
    answered = grpcurl(
        sqlite_server, pki, f"{HEALTH}/Check", flags=("-d", f'{{"service": "{REGISTRY}"}}')
    )

    assert '"status": "SERVING"' in answered


# --- health follows the database (PostgreSQL: connections to one database can be refused) ---


@pytest.fixture
def postgres_url(
    keyring: Keyring, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[str]:
    if not os.environ.get(POSTGRES_URL_VARIABLE):
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}")
    with postgres_database() as url:
        prepare_database(url, keyring, pki, certificates)
        yield url


def wait_for_status(channel: grpc.Channel, wanted: int, deadline_seconds: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    seen: int | None = None
    while time.monotonic() < deadline:
        seen = known_status(channel, REGISTRY)
        if seen == wanted:
            return
        time.sleep(0.05)
    pytest.fail(f"health stayed {seen} for {deadline_seconds}s, expected {wanted}")


@pytest.mark.postgresql
def test_health_is_not_serving_while_the_database_refuses_connections(
    postgres_url: str, pki: DevPkiPaths, keyring_path: Path
) -> None:
    url = make_url(postgres_url)
    name = url.database
    admin = make_url(os.environ[POSTGRES_URL_VARIABLE]).set(drivername="postgresql")
    server = ServerThread(
        make_config(pki, keyring_path, postgres_url, health_interval_seconds=0.2)
    ).start()
    try:
        with (
            client_channel(server.target, pki) as channel,
            psycopg.connect(
                admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=10
            ) as connection,
        ):
            wait_for_status(channel, SERVING)
            try:
                connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                wait_for_status(channel, NOT_SERVING)
            finally:
                connection.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            wait_for_status(channel, SERVING)
    finally:
        server.stop()
