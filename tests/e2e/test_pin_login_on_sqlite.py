"""On SQLite a PIN login runs on the server's event loop, which must never wait for a writer:
while another process holds the database's write lock, the login waits on a worker and the
loop stays free; the login then counts exactly as any other. (Every answer waits for its audit
row, so a read waits for the other writer too, without holding up the loop.)"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import Registry, ServerThread, client_channel, create, get, new_borrower

CARD = "N000000801"
PIN = "2468"
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def authenticate(
    sqlite_server: ServerThread, pki: DevPkiPaths
) -> Iterator[authenticate_pb2_grpc.AuthenticateStub]:
    with client_channel(sqlite_server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield authenticate_pb2_grpc.AuthenticateStub(channel)


def _database(server: ServerThread) -> Path:
    return Path(str(make_url(server.config.database_url).database))


def test_a_pin_login_waits_for_another_processs_writer_without_stopping_other_calls(
    sqlite_registry: Registry,
    sqlite_server: ServerThread,
    authenticate: authenticate_pb2_grpc.AuthenticateStub,
    pki: DevPkiPaths,
) -> None:
    health_channel = client_channel(sqlite_server.target, pki)
    health = health_pb2_grpc.HealthStub(health_channel)
    create(sqlite_registry, new_borrower(CARD))
    sqlite_registry.stub.SetPin(
        pb.SetPinRequest(card_number=CARD, pin=PIN), metadata=sqlite_registry.metadata
    )
    wrong = auth_pb.VerifyPinRequest(card_number=CARD, pin="0000")
    right = auth_pb.VerifyPinRequest(card_number=CARD, pin=PIN)
    # A control: logins answer at once while nobody else writes.
    with pytest.raises(grpc.RpcError) as refused:
        authenticate.VerifyPin(wrong, timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    other_process = sqlite3.connect(_database(sqlite_server), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # the write lock, as nlr-admin import holds it
    try:
        with (
            ThreadPoolExecutor(max_workers=1) as pool,
            ThreadPoolExecutor(max_workers=1) as pool_of_reads,
        ):
            login = pool.submit(authenticate.VerifyPin, right, timeout=30)
            time.sleep(0.5)
            assert not login.done(), "the login must wait for the other writer"
            read = pool_of_reads.submit(get, sqlite_registry, card_number=CARD)
            started = time.monotonic()
            # Meanwhile the loop is free: a call that needs no write is answered at once.
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == SERVING
            assert time.monotonic() - started < 1.0
            # A read is answered only with its audit row written, after the other writer.
            time.sleep(0.2)
            assert not read.done(), "the read's answer waits for its audit row"
            other_process.execute("ROLLBACK")
            borrower = login.result(timeout=30).borrower
            assert read.result(timeout=30).card_number == CARD
    finally:
        other_process.close()
        health_channel.close()
    assert borrower.card_number == CARD
    # The right PIN cleared the wrong one before it: four more wrong ones do not lock the
    # login (the test server locks at the fifth in a row), and the right one still works.
    for _ in range(4):
        with pytest.raises(grpc.RpcError) as refused:
            authenticate.VerifyPin(wrong, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert authenticate.VerifyPin(right, timeout=5).borrower.card_number == CARD
