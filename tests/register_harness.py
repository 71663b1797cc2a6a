"""Test harness: a real register on an ephemeral port, real certificates, a real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
import psycopg
from cryptography import x509
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from nlr.registry.v1 import borrower_pb2, registry_service_pb2, registry_service_pb2_grpc
from nlr_server.api.server import RegisterServer
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.library_code import make_code_verifier
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.audit import AuditEvent
from nlr_server.domain.library import Library
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import make_synthetic_national_id
from nlr_server.domain.vendor import Role, VendorCertificate
from nlr_server.ops.config import Config
from nlr_server.ops.dev_pki import (
    CertificateAuthority,
    DevPkiPaths,
    certificate_fingerprint,
    issue_client_certificate,
)
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import AuditEventRow, Base
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory

OSLO = "2030100"
BERGEN = "2460100"
TROMSO = "2540200"
DISABLED_LIBRARY = "2110300"
UNKNOWN_LIBRARY = "2999900"
OTHER_VENDORS_LIBRARY = "2300100"

LIBRARY_CODES = {
    OSLO: "oslo-test-code",
    BERGEN: "bergen-test-code",
    TROMSO: "tromso-test-code",
    DISABLED_LIBRARY: "closed-test-code",
    OTHER_VENDORS_LIBRARY: "other-test-code",
    UNKNOWN_LIBRARY: "no-such-library-code",
}

TEST_VENDOR = "Test ILS vendor"
AUTH_VENDOR = "Test ebook vendor"
OTHER_VENDOR = "Other ILS vendor"
DISABLED_VENDOR = "Disabled ILS vendor"

POSTGRES_URL_VARIABLE = "NLR_TEST_POSTGRES_URL"


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (empty, or a copy of ``template``), dropped
    afterwards."""
    admin_url = os.environ[POSTGRES_URL_VARIABLE]
    name = f"nlr_test_{uuid.uuid4().hex[:12]}"
    plain = make_url(admin_url).set(drivername="postgresql")
    conninfo = plain.render_as_string(hide_password=False)
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield (
            make_url(admin_url)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class ClientCertificates:
    """Client certificates beyond the dev PKI's: each stands for one way of being refused."""

    directory: Path
    ca: CertificateAuthority

    def path(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"

    @classmethod
    def create(cls, directory: Path, pki: DevPkiPaths) -> ClientCertificates:
        ca = CertificateAuthority.load(pki.ca_cert, pki.ca_key)
        made = cls(directory, ca)
        for name, vendor, role in (
            ("other_ils", OTHER_VENDOR, "ils"),
            ("disabled_vendor", DISABLED_VENDOR, "ils"),
            ("revoked", TEST_VENDOR, "ils"),
            ("unregistered", TEST_VENDOR, "ils"),
            ("portal", TEST_VENDOR, "portal"),
            ("other_portal", OTHER_VENDOR, "portal"),
        ):
            cert, key = issue_client_certificate(ca, vendor, role, vendor)
            cert_path, key_path = made.path(name)
            cert_path.write_bytes(cert)
            key_path.write_bytes(key)
        return made


@functools.cache
def _code_verifier(code: str) -> str:
    # Slow by design, so made once per test session and reused in every test database.
    return make_code_verifier(code)


def prepare_database(
    url: str, keyring: Keyring, pki: DevPkiPaths, certificates: ClientCertificates
) -> None:
    """Migrates the schema; registers the test vendors, their certificates and libraries."""
    engine = create_store_engine(url)
    now = dt.datetime.now(dt.UTC)
    try:
        migrate.upgrade(engine)
        with SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))() as uow:
            vendors = {
                name: uow.vendors.add(name, now)
                for name in (TEST_VENDOR, AUTH_VENDOR, OTHER_VENDOR, DISABLED_VENDOR)
            }
            registered = [
                (pki.ils_cert, TEST_VENDOR, Role.ILS),
                (pki.auth_cert, AUTH_VENDOR, Role.AUTH),
                (certificates.path("other_ils")[0], OTHER_VENDOR, Role.ILS),
                (certificates.path("disabled_vendor")[0], DISABLED_VENDOR, Role.ILS),
                (certificates.path("revoked")[0], TEST_VENDOR, Role.ILS),
                (certificates.path("portal")[0], TEST_VENDOR, Role.PORTAL),
                (certificates.path("other_portal")[0], OTHER_VENDOR, Role.PORTAL),
            ]
            for cert_path, vendor, role in registered:
                pem = cert_path.read_bytes()
                cert = x509.load_pem_x509_certificate(pem)
                uow.vendors.add_certificate(
                    VendorCertificate(
                        fingerprint=certificate_fingerprint(pem),
                        vendor_id=vendors[vendor].id,
                        role=role,
                        serial_number=format(cert.serial_number, "x"),
                        subject=cert.subject.rfc4514_string(),
                        issued_at=now,
                        not_after=cert.not_valid_after_utc,
                    )
                )
            uow.vendors.revoke_certificate(
                certificate_fingerprint(certificates.path("revoked")[0].read_bytes()), now
            )
            uow.vendors.set_active(vendors[DISABLED_VENDOR].id, False)
            libraries = [
                (OSLO, "Oslo", TEST_VENDOR, True),
                (BERGEN, "Bergen", TEST_VENDOR, True),
                (TROMSO, "Tromsø", TEST_VENDOR, True),
                (DISABLED_LIBRARY, "Closed", TEST_VENDOR, False),
                (OTHER_VENDORS_LIBRARY, "Drammen", OTHER_VENDOR, True),
            ]
            for number, name, vendor, active in libraries:
                uow.libraries.add(
                    Library(
                        LibraryNumber(number),
                        f"Test {name} bibliotek",
                        active=active,
                        vendor_id=vendors[vendor].id,
                        municipality_number=number[1:5],
                        code_verifier=_code_verifier(LIBRARY_CODES[number]),
                    )
                )
            uow.commit()
    finally:
        engine.dispose()


# What counts calls and refusals, as the audit trail does, rather than the register's data.
_BOOKKEEPING = frozenset({"audit_events", "limit_buckets", "limit_failures"})


def count_rows(url: str) -> dict[str, int]:
    """Row counts of every table but the audit trail and the shared limits' (a refused vendor or
    a wrong library code is counted there): equal before and after a refused request."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in Base.metadata.sorted_tables
                if table.name not in _BOOKKEEPING
            }
    finally:
        engine.dispose()


def make_config(
    pki: DevPkiPaths, keyring_path: Path, database_url: str, **overrides: object
) -> Config:
    values: dict[str, object] = dict(
        access_cache_seconds=0.0,
        vendor_rate_limit=1000.0,
        vendor_rate_burst=2000.0,
        library_code_failures=5,
        library_code_window_seconds=900.0,
        audit_retry_seconds=0.05,
        password_iterations=210_000,
        password_workers=2,
        lockout_failures=5,
        lockout_seconds=900.0,
        lockout_max_seconds=86400.0,
        lockout_forget_days=7.0,
        keyring_reload_seconds=0.2,
        guardian_age=15,
        identity_lifetime_days=1095,
        maintenance_interval_seconds=3600.0,
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
        smtp_host="",
        smtp_port=25,
        smtp_sender="",
        smtp_starttls=False,
        notice_retry_seconds=60.0,
        notice_give_up_hours=72.0,
        notice_poll_seconds=0.1,
        deletion_vacuum_seconds=300.0,
        feed_retention_days=30.0,
        feed_poll_seconds=0.5,
        feed_heartbeat_seconds=15.0,
        feed_stream_buffer=10_000,
        log_level="INFO",
    )
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


@functools.cache
def _server_loop() -> asyncio.AbstractEventLoop:
    """One event loop for every in-process server of the test session, on a thread of its own:
    grpc.aio is made for one loop per process, as in production."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="test-servers", daemon=True).start()
    return loop


class ServerThread:
    """Runs a RegisterServer (or a test's subclass of it) on the test session's server event
    loop."""

    def __init__(self, config: Config, server_class: type[RegisterServer] = RegisterServer) -> None:
        self.config = config
        self._server_class = server_class
        self.loop = _server_loop()
        self.server: RegisterServer | None = None
        self.port = 0

    def start(self) -> ServerThread:
        async def start() -> int:
            self.server = self._server_class(self.config)
            return await self.server.start()

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(0.5), self.loop).result(timeout=30)
            self.server = None

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


_OWN_CODE = "use the library's own code"


@dataclass
class Registry:
    """A BorrowerRegistry client acting for one library, with its authorization code.

    Every answer through it is checked for a national id (see assert_no_national_id), so each
    test that calls the register checks that none is returned.
    """

    stub: registry_service_pb2_grpc.BorrowerRegistryStub
    library: str | None
    code: str | None = None

    def __post_init__(self) -> None:
        _check_answers(self.stub)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        metadata: list[tuple[str, str]] = []
        if self.library is not None:
            metadata.append(("nlr-library-number", self.library))
        if self.code is not None:
            metadata.append(("nlr-library-code", self.code))
        return tuple(metadata)

    def as_library(self, library: str | None, code: str | None = _OWN_CODE) -> Registry:
        if code == _OWN_CODE:
            code = LIBRARY_CODES.get(library or "")
        return Registry(self.stub, library, code)


_NATIONAL_ID = "national_id"
_reaches_national_id: dict[str, bool] = {}


def _may_hold_national_id(descriptor: Descriptor, visiting: frozenset[str] = frozenset()) -> bool:
    """Whether a message of this type can hold a national_id field, at any depth (remembered
    per type, so answers that cannot hold one cost nothing to check)."""
    known = _reaches_national_id.get(descriptor.full_name)
    if known is not None:
        return known
    inner = visiting | {descriptor.full_name}
    reaches = any(
        field.name == _NATIONAL_ID
        or (
            field.message_type is not None
            and field.message_type.full_name not in inner
            and _may_hold_national_id(field.message_type, inner)
        )
        for field in descriptor.fields
    )
    if not visiting:  # an answer found inside a cycle may be incomplete: not remembered
        _reaches_national_id[descriptor.full_name] = reaches
    return reaches


@functools.cache
def _fields_to_check(
    descriptor: Descriptor,
) -> tuple[FieldDescriptor | None, list[FieldDescriptor]]:
    """The type's own national_id field, and its message fields that may hold one deeper."""
    own = descriptor.fields_by_name.get(_NATIONAL_ID)
    inner = [
        field
        for field in descriptor.fields
        if field.message_type is not None and _may_hold_national_id(field.message_type)
    ]
    return own, inner


def assert_no_national_id(message: Message, where: str = "") -> None:
    """Fails if a national_id is set anywhere in the message: the register never returns one.
    The failure names the field, never the value."""
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    if not _may_hold_national_id(descriptor):
        return
    own, inner = _fields_to_check(descriptor)
    if own is not None and (
        message.HasField(own.name)
        if own.has_presence
        else getattr(message, own.name) != own.default_value
    ):
        path = f"{where}.{own.name}" if where else own.name
        raise AssertionError(f"an answer carries {path}: the register never returns one")
    for field in inner:
        path = f"{where}.{field.name}" if where else field.name
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    assert_no_national_id(item, f"{path}[{key!r}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                assert_no_national_id(item, f"{path}[{index}]")
        elif message.HasField(field.name):
            assert_no_national_id(value, path)


class _CheckedResponses:
    """A server stream's responses, each checked as it arrives; the rest is the call's."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> _CheckedResponses:
        return self

    def __next__(self) -> Any:
        response = next(self._call)
        assert_no_national_id(response)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _CheckedFuture:
    def __init__(self, future: Any) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> Any:
        response = self._future.result(timeout)
        assert_no_national_id(response)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._future, name)


class _CheckedMethod:
    """One method of a stub, checking its answers however it is called."""

    def __init__(self, method: Any) -> None:
        self._method = method
        self._streams = isinstance(method, grpc.UnaryStreamMultiCallable)

    def __call__(self, request: Message, *args: Any, **kwargs: Any) -> Any:
        answer = self._method(request, *args, **kwargs)
        if self._streams:
            return _CheckedResponses(answer)
        assert_no_national_id(answer)
        return answer

    def with_call(self, request: Message, *args: Any, **kwargs: Any) -> Any:
        response, call = self._method.with_call(request, *args, **kwargs)
        assert_no_national_id(response)
        return response, call

    def future(self, request: Message, *args: Any, **kwargs: Any) -> Any:
        return _CheckedFuture(self._method.future(request, *args, **kwargs))


def _check_answers(stub: registry_service_pb2_grpc.BorrowerRegistryStub) -> None:
    """Wraps each method of the stub once (clients for other libraries share it)."""
    for name, method in list(vars(stub).items()):
        if not isinstance(method, _CheckedMethod):
            setattr(stub, name, _CheckedMethod(method))


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


_issued = itertools.count()
_issued_on: dict[dt.date, Iterator[int]] = {}
# About 400 synthetic numbers exist per birth date; the default date moves on before that.
_PER_DAY = 300


def national_id(birth_date: dt.date | None = None) -> str:
    """A fresh valid synthetic national id, born in May 1990 unless a birth date is given."""
    if birth_date is None:
        birth_date = dt.date(1990, 5, 1) + dt.timedelta(days=next(_issued) // _PER_DAY % 30)
    serials = _issued_on.setdefault(birth_date, itertools.count(1))
    return make_synthetic_national_id(birth_date, next(serials))


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
    """By card_number or national_id (tests/e2e/test_identities.py finds by identity)."""
    request = registry_service_pb2.GetBorrowerRequest(**key)  # type: ignore[arg-type]
    response = registry.stub.GetBorrower(request, metadata=registry.metadata)
    return response.borrower


def revoke_certificate(url: str, keyring: Keyring, certificate: Path) -> None:
    """What `nlr-admin certs revoke` does, straight on the test database."""
    engine = create_store_engine(url)
    try:
        with SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))() as uow:
            uow.vendors.revoke_certificate(
                certificate_fingerprint(certificate.read_bytes()), dt.datetime.now(dt.UTC)
            )
            uow.commit()
    finally:
        engine.dispose()


def audit_events(url: str, keyring: Keyring, card_number: str) -> list[AuditEvent]:
    engine = create_store_engine(url)
    try:
        with SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring))(read_only=True) as uow:
            return uow.audit.for_card(card_number)
    finally:
        engine.dispose()


def table_text(url: str) -> str:
    """Every row of every table, as text: for tests that a value is stored nowhere."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return "\n".join(
                repr(tuple(row))
                for table in Base.metadata.sorted_tables
                for row in connection.execute(select(table))
            )
    finally:
        engine.dispose()


def audit_rows(url: str, *columns: Any, where: Any) -> list[tuple[Any, ...]]:
    """The audit trail's rows that match ``where``, oldest first, as tuples of ``columns``
    (e.g. ``AuditEventRow.outcome``): for refusals that name no card number."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            query = select(*columns).where(where).order_by(AuditEventRow.id)
            return [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()


def wait_for_audit_rows(
    url: str, count: int, *columns: Any, where: Any, seconds: float = 10.0
) -> list[tuple[Any, ...]]:
    """As audit_rows, once there are at least ``count`` (the trail is written in batches)."""
    rows: list[tuple[Any, ...]] = []

    def written() -> bool:
        rows[:] = audit_rows(url, *columns, where=where)
        return len(rows) >= count

    wait_until(written, seconds)
    return rows


def wait_for_audit(
    url: str, keyring: Keyring, card_number: str, count: int, deadline_seconds: float = 1.0
) -> list[AuditEvent]:
    """The card's audit events once there are ``count``; fails if not within the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        events = audit_events(url, keyring, card_number)
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.02)


class Servers:
    """Servers with some settings changed, started one after another on one test database."""

    def __init__(self, database_url: str, pki: DevPkiPaths, keyring_path: Path) -> None:
        self._database_url = database_url
        self._pki = pki
        self._keyring_path = keyring_path
        self._running: list[ServerThread] = []

    def start(self, **settings: object) -> ServerThread:
        server = ServerThread(
            make_config(self._pki, self._keyring_path, self._database_url, **settings)
        ).start()
        self._running.append(server)
        return server

    def stop(self, server: ServerThread) -> None:
        self._running.remove(server)
        server.stop()

    def stop_all(self) -> None:
        for server in list(self._running):
            self.stop(server)


def retry_delay_seconds(error: grpc.RpcError) -> float:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToTimedelta().total_seconds())
    raise AssertionError("no RetryInfo in the error")


def sqlite_bytes(url: str) -> bytes:
    """A SQLite database's file and its write-ahead log, read as they are on disk: no checkpoint
    first, so whatever the WAL still holds is read too (a checkpoint here would hide it)."""
    database = Path(str(make_url(url).database))
    wal = database.with_name(database.name + "-wal")
    return database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def postgres_page_bytes(url: str) -> bytes:
    """What the pages of every table of a PostgreSQL test database hold, read with pageinspect:
    the data of every heap tuple, live or dead, of every table and its TOAST table, and the key
    of every b-tree index entry. Free space inside a page is not read (README, Deletion)."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            relations = connection.execute(
                text(
                    "WITH tables AS (SELECT oid, reltoastrelid FROM pg_class"
                    "   WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'),"
                    " heaps AS (SELECT oid FROM tables UNION SELECT reltoastrelid FROM tables"
                    "   WHERE reltoastrelid <> 0),"
                    " indexes AS (SELECT indexrelid AS oid FROM pg_index"
                    "   WHERE indrelid IN (SELECT oid FROM heaps))"
                    " SELECT c.oid::regclass::text, c.relkind,"
                    "   pg_relation_size(c.oid) / current_setting('block_size')::int"
                    " FROM pg_class c JOIN pg_am a ON a.oid = c.relam"
                    " WHERE c.oid IN (SELECT oid FROM heaps UNION SELECT oid FROM indexes)"
                    "   AND a.amname IN ('heap', 'btree')"
                )
            ).all()
            chunks: list[bytes] = []
            for name, kind, pages in relations:
                if kind == "i":
                    # Page 0 of a b-tree is its metapage.
                    for page in range(1, pages):
                        chunks.extend(
                            bytes.fromhex(data.replace(" ", ""))
                            for (data,) in connection.execute(
                                text("SELECT data FROM bt_page_items(:name, :page)"),
                                {"name": name, "page": page},
                            )
                            if data
                        )
                    continue
                for page in range(pages):
                    chunks.extend(
                        bytes(data)
                        for (data,) in connection.execute(
                            text("SELECT t_data FROM heap_page_items(get_raw_page(:name, :page))"),
                            {"name": name, "page": page},
                        )
                        if data is not None
                    )
            connection.commit()
            return b"\n".join(chunks)
    finally:
        engine.dispose()


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Waits for ``condition`` to hold; fails the test if it does not within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.02)
