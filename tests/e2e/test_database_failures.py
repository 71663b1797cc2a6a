"""A database that goes away mid-write or refuses: UNAVAILABLE or ABORTED, and no personal data
in any answer or log line."""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from sqlalchemy.engine import make_url

from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    OSLO,
    Registry,
    ServerThread,
    client_channel,
    error_details,
    get,
    make_config,
    new_borrower,
    retry_delay_seconds,
)

LOST = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}
_serial = itertools.count(1)


def _borrower_with_own_values() -> tuple[borrower_pb2.Borrower, list[str]]:
    """A new borrower whose name, email and phone are found nowhere else."""
    n = next(_serial)
    tag = "".join("abcdefghijklmnopqrstuvwxyz"[int(digit) + 10] for digit in f"{n:04d}")
    given, family = f"Qzyxgiven{tag}", f"Qzyxfamily{tag}"
    email, phone = f"qzyx.{n:04d}@example.org", f"9{n:07d}"
    borrower = new_borrower(
        f"N{700000000 + n:09d}",
        given_name=given,
        family_name=family,
        email=email,
        mobile_phone=phone,
    )
    return borrower, [given, family, email, phone]


def _create(registry: Registry, borrower: borrower_pb2.Borrower) -> grpc.RpcError | None:
    try:
        registry.stub.CreateBorrower(
            pb.CreateBorrowerRequest(borrower=borrower), metadata=registry.metadata, timeout=20
        )
    except grpc.RpcError as error:
        return error
    return None


def _assert_no_values(texts: list[str], values: list[str]) -> None:
    joined = "\n".join(texts)
    leaked = [value for value in values if value in joined]
    assert not leaked, f"personal values in answers or logs: {leaked[:5]}"
    for word in ("[SQL", "INSERT INTO", "[parameters", "psycopg.", "sqlite3.", "Traceback"):
        assert word not in joined, f"{word!r} in answers or logs"


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    return texts


def _admin_dsn(url: str) -> str:
    """The server database's maintenance peer: the cluster's postgres database."""
    return make_url(url).set(drivername="postgresql", database="postgres").render_as_string(False)


@contextlib.contextmanager
def _killing_connections(url: str) -> Iterator[list[int]]:
    """Terminates every connection to the database, over and over, until the block ends."""
    database = make_url(url).database
    killed: list[int] = []
    stop = threading.Event()

    def kill() -> None:
        with psycopg.connect(_admin_dsn(url), autocommit=True) as admin:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
                killed.append(len(rows))
                time.sleep(0.003)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    try:
        yield killed
    finally:
        stop.set()
        killer.join(timeout=10)


@pytest.mark.postgresql
def test_connections_killed_mid_write_give_unavailable_or_aborted_and_leak_nothing(
    postgres_database_url: str, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers: list[grpc.RpcError | None] = []
    values: list[str] = []
    with _killing_connections(postgres_database_url) as killed:
        for _ in range(120):
            borrower, own = _borrower_with_own_values()
            values += own
            answers.append(_create(registry, borrower))
    assert sum(killed) > 0
    errors = [a for a in answers if a is not None]
    assert errors, "no call met a killed connection"
    assert {e.code() for e in errors} <= LOST, [(e.code(), e.details()) for e in errors]
    for error in errors:
        reason, _ = error_details(error)
        assert reason in ("STORE_UNAVAILABLE", "TRANSACTION_ABORTED")
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            assert retry_delay_seconds(error) > 0
    texts = [e.details() or "" for e in errors] + _log_texts(caplog)
    _assert_no_values(texts, values)
    # And it serves again as soon as the database does.
    borrower, _ = _borrower_with_own_values()
    assert _create(registry, borrower) is None


@pytest.mark.postgresql
def test_after_every_connection_was_cut_once_reads_and_refusals_are_answered_as_before(
    postgres_database_url: str, registry: Registry
) -> None:
    """A database restart leaves every pooled connection dead, the audit trail's own too:
    the next calls find fresh ones instead of failing."""
    borrower, _ = _borrower_with_own_values()
    assert _create(registry, borrower) is None
    card = borrower.card_number
    assert get(registry, card_number=card).card_number == card  # the audit connection is held
    with psycopg.connect(_admin_dsn(postgres_database_url), autocommit=True) as admin:
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (make_url(postgres_database_url).database,),
        ).fetchall()
    assert cut, "no connection was cut"

    assert get(registry, card_number=card).card_number == card
    with pytest.raises(grpc.RpcError) as refused:
        get(registry, card_number="N999999997")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.postgresql
def test_a_database_refusing_connections_gives_unavailable_with_retry_info(
    postgres_database_url: str, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    database = make_url(postgres_database_url).database
    with psycopg.connect(_admin_dsn(postgres_database_url), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
            borrower, values = _borrower_with_own_values()
            error = _create(registry, borrower)
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert error is not None
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_details(error)[0] == "STORE_UNAVAILABLE"
    assert retry_delay_seconds(error) > 0
    _assert_no_values([error.details() or "", *_log_texts(caplog)], values)
    assert _create(registry, borrower) is None


@pytest.fixture
def postgres_database_url(prepared_database: str) -> str:
    if not prepared_database.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite's half is the full file system below")
    return prepared_database


@pytest.fixture
def small_file_system(tmp_path: Path) -> Iterator[Path]:
    """A small file system of the test's own, which it can fill under the server."""
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a file system needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@contextlib.contextmanager
def _full(directory: Path) -> Iterator[None]:
    """The file system without a free byte, until the block ends: the database cannot grow.
    (Read-only is not to be had: a file system with files open for writing cannot be made
    read-only, and root writes through file permissions.)"""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as output:
        chunk = b"\0" * (1 << 20)
        with contextlib.suppress(OSError):
            while True:
                output.write(chunk)
        chunk = b"\0" * 512
        with contextlib.suppress(OSError):
            while True:
                output.write(chunk)
    try:
        yield
    finally:
        filler.unlink()


def test_a_sqlite_file_that_cannot_be_written_gives_unavailable_and_leaks_nothing(
    small_file_system: Path,
    sqlite_template: Path,
    pki: DevPkiPaths,
    keyring_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    database = small_file_system / "nlr.db"
    shutil.copyfile(sqlite_template, database)
    server = ServerThread(make_config(pki, keyring_path, f"sqlite:///{database}")).start()
    try:
        with client_channel(server.target, pki) as channel:
            registry = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
            registry = registry.as_library(OSLO)
            first, _ = _borrower_with_own_values()
            assert _create(registry, first) is None
            answers, values = [], []
            with _full(small_file_system):
                for _ in range(3):
                    borrower, own = _borrower_with_own_values()
                    values += own
                    answers.append(_create(registry, borrower))
            for error in answers:
                assert error is not None
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert error_details(error)[0] == "STORE_UNAVAILABLE"
                assert retry_delay_seconds(error) > 0
            texts = [e.details() or "" for e in answers if e] + _log_texts(caplog)
            _assert_no_values(texts, values)
            again, _ = _borrower_with_own_values()
            assert _create(registry, again) is None
    finally:
        server.stop()
