"""Test harness: a real register on an ephemeral port, real certificates, a real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from nlr.registry.v1 import borrower_pb2, registry_service_pb2, registry_service_pb2_grpc
from nlr_server.api.server import RegisterServer
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import make_synthetic_national_id
from nlr_server.ops.config import Config
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import Base
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory

OSLO = "2030100"
BERGEN = "2460100"
TROMSO = "2540200"
DISABLED_LIBRARY = "2110300"
UNKNOWN_LIBRARY = "2999900"

POSTGRES_URL_VARIABLE = "NLR_TEST_POSTGRES_URL"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin_url = os.environ[POSTGRES_URL_VARIABLE]
    name = f"nlr_test_{uuid.uuid4().hex[:12]}"
    plain = make_url(admin_url).set(drivername="postgresql")
    conninfo = plain.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_database(url: str, keyring: Keyring) -> None:
    """Migrates the schema and registers the test libraries."""
    engine = create_store_engine(url)
    try:
        migrate.upgrade(engine)
        with SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))() as uow:
            for number, name in ((OSLO, "Oslo"), (BERGEN, "Bergen"), (TROMSO, "Tromsø")):
                uow.libraries.add(Library(LibraryNumber(number), f"Test {name} bibliotek"))
            uow.libraries.add(
                Library(LibraryNumber(DISABLED_LIBRARY), "Closed library", active=False)
            )
            uow.commit()
    finally:
        engine.dispose()


def count_rows(url: str) -> dict[str, int]:
    """Row counts of every table: equal before and after a refused request."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def make_config(
    pki: DevPkiPaths, keyring_path: Path, database_url: str, **overrides: object
) -> Config:
    values: dict[str, object] = dict(
        listen_address="127.0.0.1:0",
        database_url=database_url,
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca_cert,
        keyring=keyring_path,
        grace_seconds=2.0,
        allow_synthetic_ids=True,
        db_pool_size=4,
        health_interval_seconds=0.2,
        log_level="INFO",
    )
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


class ServerThread:
    """Runs a RegisterServer on its own event loop in a background thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: RegisterServer | None = None
        self.port = 0

    def start(self) -> ServerThread:
        self._thread.start()

        async def start() -> int:
            self.server = RegisterServer(self.config)
            return await self.server.start()

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(0.5), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def client_channel(
    target: str, pki: DevPkiPaths, *, cert: Path | None = None, key: Path | None = None
) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=(key or pki.ils_key).read_bytes(),
        certificate_chain=(cert or pki.ils_cert).read_bytes(),
    )
    return grpc.secure_channel(target, credentials)


@dataclass
class Registry:
    """A BorrowerRegistry client acting for one library."""

    stub: registry_service_pb2_grpc.BorrowerRegistryStub
    library: str | None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return () if self.library is None else (("nlr-library-number", self.library),)

    def as_library(self, library: str | None) -> Registry:
        return Registry(self.stub, library)


def error_details(error: grpc.RpcError) -> tuple[str, dict[str, str]]:
    """The ErrorInfo reason and the BadRequest field violations ({field: description})."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status details"
    reason = ""
    violations: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations = {v.field: v.description for v in bad_request.field_violations}
    return reason, violations


_serial = iter(range(1, 10**6))


def national_id(birth_date: dt.date = dt.date(1990, 5, 17)) -> str:
    """A fresh valid synthetic national id."""
    return make_synthetic_national_id(birth_date, next(_serial))


def new_borrower(card_number: str, **fields: object) -> borrower_pb2.Borrower:
    values: dict[str, object] = dict(
        card_number=card_number,
        given_name="Kari",
        family_name="Nordmann",
        national_id=national_id(),
        email="kari@example.org",
        mobile_phone="912 34 567",
        registered_address=borrower_pb2.Address(
            lines=["Storgata 1"], postal_code="0155", city="Oslo"
        ),
    )
    values.update(fields)
    return borrower_pb2.Borrower(**values)  # type: ignore[arg-type]


def create(registry: Registry, borrower: borrower_pb2.Borrower) -> borrower_pb2.Borrower:
    response = registry.stub.CreateBorrower(
        registry_service_pb2.CreateBorrowerRequest(borrower=borrower), metadata=registry.metadata
    )
    return response.borrower


def get(registry: Registry, **key: str) -> borrower_pb2.Borrower:
    response = registry.stub.GetBorrower(
        registry_service_pb2.GetBorrowerRequest(**key), metadata=registry.metadata
    )
    return response.borrower
