"""Dead PostgreSQL connections cost no round trip to find: the pool lends no connection the
server closed, without asking the server (no SELECT 1 at checkout), and a read whose
connection dies under it is answered from a fresh one.

The server reaches PostgreSQL through a TCP relay of the test's own, which counts what is sent
to the database and can cut a connection the moment it next sends something."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from sqlalchemy.engine import make_url

from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from register_harness import (
    OSLO,
    Registry,
    ServerThread,
    client_channel,
    create,
    error_details,
    get,
    make_config,
    new_borrower,
    postgres_database,
)

pytestmark = pytest.mark.postgresql


class Relay:
    """Forwards TCP connections to the database; counts the bytes sent to it, and cuts the
    connection that next sends the bytes ``cut_on`` (a statement's parameter), as if it had
    died at that moment."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self.sent_upstream = 0
        self.cut_on: bytes | None = None
        self.cuts = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, to_database: bool) -> None:
        try:
            while data := source.recv(65536):
                if to_database:
                    with self._lock:
                        if self.cut_on is not None and self.cut_on in data:
                            self.cut_on = None
                            self.cuts += 1
                            break
                        self.sent_upstream += len(data)
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.close()


@pytest.fixture
def database(postgres_template: str) -> Iterator[str]:
    """PostgreSQL only: an embedded store has no connection to lose."""
    with postgres_database(template=postgres_template) as url:
        yield url


@pytest.fixture
def relayed_url(database: str) -> Iterator[tuple[str, Relay]]:
    url = make_url(database)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield url.set(host="127.0.0.1", port=relay.port).render_as_string(False), relay
    finally:
        relay.close()


def _backend_pid(connection: object) -> int:
    return int(connection.info.backend_pid)  # type: ignore[attr-defined]


def test_lending_a_pooled_connection_sends_nothing_to_the_database(
    relayed_url: tuple[str, Relay],
) -> None:
    url, relay = relayed_url
    engine = create_store_engine(url, pool_size=1)
    try:
        with engine.connect() as warm:
            warm.exec_driver_sql("SELECT 1")
        before = relay.sent_upstream
        lent = engine.pool.connect()
        assert relay.sent_upstream == before, "the pool asked the database before lending"
        lent.close()
    finally:
        engine.dispose()


def test_a_connection_the_server_closed_is_replaced_before_it_is_lent(
    relayed_url: tuple[str, Relay], database: str
) -> None:
    url, _ = relayed_url
    engine = create_store_engine(url, pool_size=1)
    admin_dsn = make_url(database).set(drivername="postgresql").render_as_string(False)
    try:
        lent = engine.pool.connect()
        first = _backend_pid(lent.dbapi_connection)
        lent.close()
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            deadline = time.monotonic() + 5
            while admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,)
            ).fetchone():
                assert time.monotonic() < deadline, "the backend did not end"
                time.sleep(0.01)
        time.sleep(0.2)  # for the relay to pass the server's goodbye on
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 2").scalar() == 2
            second = _backend_pid(connection.connection.dbapi_connection)
        assert second != first
    finally:
        engine.dispose()


def test_a_read_whose_connection_dies_under_it_is_answered_from_a_fresh_one(
    relayed_url: tuple[str, Relay], pki: DevPkiPaths, keyring_path: Path
) -> None:
    url, relay = relayed_url
    running = ServerThread(make_config(pki, keyring_path, url, access_cache_seconds=60.0)).start()
    try:
        with client_channel(running.target, pki) as channel:
            stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
            registry = Registry(stub, OSLO).as_library(OSLO)
            borrower = create(registry, new_borrower("N700990001"))
            assert get(registry, card_number=borrower.card_number).card_number == "N700990001"

            relay.cut_on = b"N700990001"
            again = get(registry, card_number="N700990001")
            assert relay.cuts == 1, "no connection was cut"
            assert again.card_number == "N700990001", "the read was not answered"
            assert again.etag == borrower.etag

            # And the register goes on answering, refusals included.
            relay.cut_on = b"N999999997"
            with pytest.raises(grpc.RpcError) as refused:
                get(registry, card_number="N999999997")
            assert relay.cuts == 2
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND, error_details(refused.value)
    finally:
        running.stop()
