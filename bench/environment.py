"""The benchmark's own register: dev PKI, keyring, a prepared database, borrowers, the server.

Everything lives in one temporary directory. The database is prepared exactly as the end-to-end
tests prepare theirs (tests/register_harness.py: vendors, certificates, libraries and their
codes), so the benchmark calls the register the way the tests do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import psycopg
from bench.processes import Children, free_port, python_module, wait_until_serving
from psycopg import sql
from sqlalchemy.engine import make_url

from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc
from nlr.registry.v1 import registry_service_pb2, registry_service_pb2_grpc
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.actor import Actor
from nlr_server.domain.address import Address
from nlr_server.domain.borrower import Borrower, PersonalData
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.errors import Violations
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId, make_synthetic_national_id
from nlr_server.domain.person_name import PersonName
from nlr_server.ops.dev_pki import DevPkiPaths, ensure_dev_pki
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from register_harness import LIBRARY_CODES, OSLO, ClientCertificates, prepare_database

# The borrowers' library: it created them, so it is affiliated and GetBorrower gives full views.
LIBRARY = OSLO
LIBRARY_METADATA = [("nlr-library-number", OSLO), ("nlr-library-code", LIBRARY_CODES[OSLO])]

_BATCH = 1000
# Birth dates spread over these days; each day has a few hundred valid synthetic ids.
_FIRST_BIRTH_DATE = dt.date(1940, 1, 1)
_BIRTH_DAYS = (dt.date(2005, 12, 31) - _FIRST_BIRTH_DATE).days + 1
_FIRST_CARD = 100_000_000


Request = TypeVar("Request")
Response = TypeVar("Response")


class Unavailable(Exception):
    """An RPC the benchmark needs is not served (yet); the message says what came back."""


@dataclass(frozen=True)
class Environment:
    directory: Path
    pki: DevPkiPaths
    keyring_path: Path
    keyring: Keyring
    database_url: str

    @property
    def store(self) -> str:
        return make_url(self.database_url).get_backend_name()

    def credentials(self, role: str) -> grpc.ChannelCredentials:
        """Client credentials of the test vendors: ``ils`` (registry) or ``auth`` (logins)."""
        cert, key = self.client_certificate(role)
        return grpc.ssl_channel_credentials(
            root_certificates=self.pki.ca_cert.read_bytes(),
            private_key=key.read_bytes(),
            certificate_chain=cert.read_bytes(),
        )

    def client_certificate(self, role: str) -> tuple[Path, Path]:
        if role == "ils":
            return self.pki.ils_cert, self.pki.ils_key
        if role == "auth":
            return self.pki.auth_cert, self.pki.auth_key
        raise ValueError(f"no client certificate for role {role!r}")


def create(directory: Path, database_url: str | None = None) -> Environment:
    """PKI, keyring and a migrated database with the test vendors, certificates and libraries."""
    pki = ensure_dev_pki(directory / "pki")
    keyring_path = directory / "keyring.json"
    keyring = Keyring.create(keyring_path)
    certificates_directory = directory / "certs"
    certificates_directory.mkdir(mode=0o700)
    certificates = ClientCertificates.create(certificates_directory, pki)
    url = database_url or f"sqlite:///{directory / 'nlr.db'}"
    prepare_database(url, keyring, pki, certificates)
    return Environment(directory, pki, keyring_path, keyring, url)


def postgres_unreachable(admin_url: str) -> str | None:
    """None if a PostgreSQL server answers at ``admin_url``, else why not (without the URL)."""
    try:
        conninfo = (
            make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        with psycopg.connect(conninfo, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as error:
        return type(error).__name__
    return None


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A throwaway database on the PostgreSQL server of ``admin_url``, dropped afterwards."""
    name = f"nlr_bench_{uuid.uuid4().hex[:12]}"
    conninfo = (
        make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def peak_rss_bytes(pid: int) -> int | None:
    """The process's peak resident set size so far (VmHWM in /proc/PID/status), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def card_number(index: int) -> str:
    return f"N{_FIRST_CARD + index:09d}"


def load_borrowers(
    environment: Environment, count: int, progress: Callable[[int], None] | None = None
) -> list[str]:
    """Adds ``count`` borrowers of the benchmark library, straight through the store.

    Batches of rows per transaction through the unit of work: the same rows CreateBorrower
    writes (sealed national id, blind index, card number, first affiliation), minus the RPC.
    """
    engine = create_store_engine(environment.database_url)
    unit_of_work = SqlUnitOfWorkFactory(engine, NationalIdSealer(environment.keyring))
    library = LibraryNumber(LIBRARY)
    creator = Actor.library(library)
    now = dt.datetime.now(dt.UTC)
    template = _personal_data()
    try:
        for start in range(0, count, _BATCH):
            with unit_of_work() as uow:
                for index in range(start, min(count, start + _BATCH)):
                    birth_date = _FIRST_BIRTH_DATE + dt.timedelta(days=index % _BIRTH_DAYS)
                    national_id = NationalId.parse(
                        make_synthetic_national_id(birth_date, index // _BIRTH_DAYS),
                        allow_synthetic=True,
                    )
                    personal = dataclasses.replace(template, birth_date=birth_date)
                    borrower = Borrower.register(
                        CardNumber(card_number(index)), personal, library, creator, now
                    )
                    uow.borrowers.add(borrower, national_id)
                uow.commit()
            if progress is not None:
                progress(min(count, start + _BATCH))
    finally:
        engine.dispose()
    return [card_number(index) for index in range(count)]


def _personal_data() -> PersonalData:
    violations = Violations()
    name = PersonName.parse("Kari", "Nordmann", violations, "")
    address = Address.parse(["Storgata 1"], "0155", "Oslo", "NO", violations, "")
    assert name is not None and address is not None, violations
    return PersonalData(
        name=name,
        birth_date=_FIRST_BIRTH_DATE,
        registered_address=address,
        email=EmailAddress.parse("kari@example.org"),
        mobile_phone=PhoneNumber.parse("912 34 567"),
    )


@dataclass(frozen=True)
class RunningServer:
    process: subprocess.Popen[bytes]
    target: str
    log: Path


def start_register(
    environment: Environment, children: Children, *, workers: int | None = None
) -> RunningServer:
    """The real server (``python -m nlr_server``) in a process of its own, on loopback; with
    ``workers``, NLR_WORKERS of them under a supervising process (the one returned)."""
    target = f"127.0.0.1:{free_port()}"
    settings = {
        "NLR_LISTEN_ADDRESS": target,
        "NLR_DATABASE_URL": environment.database_url,
        "NLR_TLS_CERT": str(environment.pki.server_cert),
        "NLR_TLS_KEY": str(environment.pki.server_key),
        "NLR_TLS_CLIENT_CA": str(environment.pki.ca_cert),
        "NLR_KEYRING": str(environment.keyring_path),
        "NLR_ALLOW_SYNTHETIC_IDS": "true",
        # The per-vendor limiter is a guard against one vendor, not what is measured here.
        "NLR_VENDOR_RATE_LIMIT": "1000000000",
        "NLR_VENDOR_RATE_BURST": "1000000000",
        "NLR_GRACE_SECONDS": "2",
        "NLR_LOG_LEVEL": "WARNING",
    }
    if workers is not None:
        settings["NLR_WORKERS"] = str(workers)
    return _start(
        python_module("nlr_server"),
        _environment_without_nlr_settings() | settings,
        environment,
        children,
        target,
        "register.log" if workers is None else f"register-{workers}-workers.log",
    )


def start_empty_server(environment: Environment, children: Children) -> RunningServer:
    """The ceiling (bench/empty_server.py) with the same certificate files."""
    return _start_bench_server("bench.empty_server", [], environment, children, "empty.log")


def start_floor_server(environment: Environment, children: Children) -> RunningServer:
    """The floor (bench/floor_server.py) on the register's database, same certificates."""
    return _start_bench_server(
        "bench.floor_server",
        ["--database", environment.database_url],
        environment,
        children,
        "floor.log",
    )


def _start_bench_server(
    module: str,
    arguments: list[str],
    environment: Environment,
    children: Children,
    log_name: str,
) -> RunningServer:
    """One of the bench's own servers, on a free port with the register's certificate files."""
    target = f"127.0.0.1:{free_port()}"
    command = python_module(
        module,
        "--listen",
        target,
        "--cert",
        str(environment.pki.server_cert),
        "--key",
        str(environment.pki.server_key),
        "--client-ca",
        str(environment.pki.ca_cert),
        *arguments,
    )
    return _start(
        command, _environment_without_nlr_settings(), environment, children, target, log_name
    )


def _start(
    command: list[str],
    variables: dict[str, str],
    environment: Environment,
    children: Children,
    target: str,
    log_name: str,
) -> RunningServer:
    log = environment.directory / log_name
    with log.open("wb") as log_file:
        process = children.start(command, env=variables, stdout=log_file, stderr=log_file)
    wait_until_serving(process, target, environment.credentials("ils"), log)
    return RunningServer(process, target, log)


def _environment_without_nlr_settings() -> dict[str, str]:
    # Settings from the caller's shell must not change what is measured.
    return {name: value for name, value in os.environ.items() if not name.startswith("NLR_")}


@contextmanager
def _channel(environment: Environment, target: str, role: str) -> Iterator[grpc.Channel]:
    with grpc.secure_channel(target, environment.credentials(role)) as channel:
        yield channel


def set_pins(environment: Environment, target: str, pins: dict[str, str]) -> None:
    """SetPin for each card number; Unavailable if the server does not do it (yet)."""
    with _channel(environment, target, "ils") as channel:
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
        requests = [
            registry_service_pb2.SetPinRequest(card_number=card, pin=pin)
            for card, pin in pins.items()
        ]
        _call_all("SetPin", stub.SetPin, requests, in_flight=16)


def set_passwords(environment: Environment, target: str, passwords: dict[str, str]) -> None:
    """SetPassword for each card number; Unavailable if the server does not do it (yet)."""
    with _channel(environment, target, "ils") as channel:
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
        requests = [
            registry_service_pb2.SetPasswordRequest(card_number=card, password=password)
            for card, password in passwords.items()
        ]
        # Each one is a PBKDF2 hash on the server: a few in flight keep its pool busy.
        _call_all("SetPassword", stub.SetPassword, requests, in_flight=4)


def check_pin(environment: Environment, target: str, card: str, pin: str) -> None:
    """One VerifyPin that must succeed, before the load; Unavailable if it does not."""
    with _channel(environment, target, "auth") as channel:
        stub = authenticate_pb2_grpc.AuthenticateStub(channel)
        request = authenticate_pb2.VerifyPinRequest(card_number=card, pin=pin)
        _call_all("VerifyPin", stub.VerifyPin, [request], in_flight=1, metadata=())


def check_password(environment: Environment, target: str, card: str, password: str) -> None:
    """One VerifyPassword that must succeed, before the load; Unavailable if it does not."""
    with _channel(environment, target, "auth") as channel:
        stub = authenticate_pb2_grpc.AuthenticateStub(channel)
        request = authenticate_pb2.VerifyPasswordRequest(card_number=card, password=password)
        _call_all("VerifyPassword", stub.VerifyPassword, [request], in_flight=1, metadata=())


def _call_all(
    rpc: str,
    method: grpc.UnaryUnaryMultiCallable[Request, Response],
    requests: list[Request],
    *,
    in_flight: int,
    metadata: tuple[tuple[str, str], ...] = tuple(LIBRARY_METADATA),
) -> None:
    """Calls ``method`` with every request, ``in_flight`` at a time; the first failure stops."""
    for start in range(0, len(requests), in_flight):
        futures = [
            method.future(request, metadata=metadata, timeout=60)
            for request in requests[start : start + in_flight]
        ]
        for future in futures:
            try:
                future.result()
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                details = error.details() if isinstance(error, grpc.Call) else str(error)
                name = code.name if code is not None else "ERROR"
                raise Unavailable(f"{rpc}: {name}: {details}") from None
