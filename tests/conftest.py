"""Fixtures: one dev PKI and keyring per session; a fresh database and server per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy.engine import make_url

from mail_harness import Mailbox, MailServer, free_port
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.dev_pki import DevPkiPaths, ensure_dev_pki
from register_harness import (
    OSLO,
    POSTGRES_URL_VARIABLE,
    ClientCertificates,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    make_config,
    postgres_database,
    prepare_database,
)
from selfservice_harness import Portal, portal_client


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPkiPaths:
    return ensure_dev_pki(tmp_path_factory.mktemp("pki") / "pki")


@pytest.fixture(scope="session")
def keyring_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keyring.json"
    Keyring.create(path)
    return path


@pytest.fixture(scope="session")
def keyring(keyring_path: Path) -> Keyring:
    return Keyring.load(keyring_path)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each store: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nlr.db'}"
        return
    if not os.environ.get(POSTGRES_URL_VARIABLE):
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}")
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory, pki: DevPkiPaths) -> ClientCertificates:
    return ClientCertificates.create(tmp_path_factory.mktemp("certs"), pki)


@pytest.fixture(scope="session")
def sqlite_template(
    tmp_path_factory: pytest.TempPathFactory,
    keyring: Keyring,
    pki: DevPkiPaths,
    certificates: ClientCertificates,
) -> Path:
    """A migrated SQLite database with the test vendors and libraries, made once."""
    path = tmp_path_factory.mktemp("template") / "nlr.db"
    prepare_database(f"sqlite:///{path}", keyring, pki, certificates)
    return path


@pytest.fixture(scope="session")
def postgres_template(
    keyring: Keyring, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[str]:
    """The same on PostgreSQL: the name of a database each test's database is copied from."""
    if not os.environ.get(POSTGRES_URL_VARIABLE):
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}")
    with postgres_database() as url:
        prepare_database(url, keyring, pki, certificates)
        yield str(make_url(url).database)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def prepared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database on each store with the schema, test vendors, certificates and libraries."""
    if request.param == "sqlite":
        path = tmp_path / "nlr.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture
def server(prepared_database: str, pki: DevPkiPaths, keyring_path: Path) -> Iterator[ServerThread]:
    running = ServerThread(make_config(pki, keyring_path, prepared_database)).start()
    yield running
    running.stop()


@pytest.fixture
def channel(server: ServerThread, pki: DevPkiPaths) -> Iterator[grpc.Channel]:
    with client_channel(server.target, pki) as opened:
        yield opened


@pytest.fixture
def registry(channel: grpc.Channel) -> Registry:
    """A BorrowerRegistry client acting for the Oslo test library."""
    return Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO).as_library(OSLO)


@pytest.fixture
def sqlite_server(
    tmp_path: Path,
    keyring: Keyring,
    pki: DevPkiPaths,
    keyring_path: Path,
    certificates: ClientCertificates,
) -> Iterator[ServerThread]:
    """A server on SQLite only, for what is about SQLite's file or about the transport."""
    url = f"sqlite:///{tmp_path / 'nlr.db'}"
    prepare_database(url, keyring, pki, certificates)
    running = ServerThread(make_config(pki, keyring_path, url)).start()
    yield running
    running.stop()


@pytest.fixture
def sqlite_registry(sqlite_server: ServerThread, pki: DevPkiPaths) -> Iterator[Registry]:
    with client_channel(sqlite_server.target, pki) as opened:
        yield Registry(registry_service_pb2_grpc.BorrowerRegistryStub(opened), OSLO).as_library(
            OSLO
        )


@pytest.fixture
def portal(
    server: ServerThread, pki: DevPkiPaths, certificates: ClientCertificates
) -> Iterator[Portal]:
    """A SelfService client with the test portal certificate (log in with ``portal.log_in``)."""
    with portal_client(server.target, pki, certificates) as stub:
        yield Portal(stub)


@pytest.fixture
def servers(prepared_database: str, pki: DevPkiPaths, keyring_path: Path) -> Iterator[Servers]:
    """Servers started and stopped by the test, each on the same prepared database."""
    started = Servers(prepared_database, pki, keyring_path)
    yield started
    started.stop_all()


@pytest.fixture
def mail_servers() -> Iterator[Callable[..., MailServer]]:
    """Starts real SMTP servers on loopback: ``mail_servers(refusals=2, started=False)``."""
    made: list[MailServer] = []

    def make(refusals: int = 0, *, started: bool = True) -> MailServer:
        server = MailServer(Mailbox(refusals), free_port())
        made.append(server)
        return server.start() if started else server

    yield make
    for server in made:
        server.stop()
