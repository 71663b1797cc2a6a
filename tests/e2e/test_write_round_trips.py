"""How many statements, commits and rollbacks one write sends to the database, on each store.

Counted on the driver's own connection (the hot paths bypass SQLAlchemy's events, see
store/prepared.py), on the server's worker while the use case runs: the access check before
it (cached here) and the audit group commit (its own engine) are not part of the count.
On PostgreSQL every call is a round trip, including psycopg's implicit BEGIN.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import psycopg
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from psycopg import pq
from sqlalchemy import event
from sqlalchemy.engine import Dialect, make_url

from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.usecases import borrowers
from register_harness import (
    OSLO,
    Registry,
    ServerThread,
    client_channel,
    create,
    make_config,
    new_borrower,
)

T = TypeVar("T")
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


@dataclass
class DriverCalls:
    """What one use case sent to the database, in order: each statement's text, and BEGIN,
    COMMIT and ROLLBACK (sent by the driver or as statements) by name."""

    sent: list[str] = field(default_factory=list)

    def add(self, sql: str) -> None:
        text = " ".join(sql.split())
        keyword = text.split(" ", 1)[0].upper()
        self.sent.append(keyword if keyword in _CONTROL else text)

    @property
    def statements(self) -> list[str]:
        return [sql for sql in self.sent if sql not in _CONTROL]

    def count(self, control: str) -> int:
        return self.sent.count(control)

    @property
    def round_trips(self) -> int:
        return len(self.sent)

    def summary(self) -> str:
        return "\n".join(sql[:70] for sql in self.sent)


class _Recording(threading.local):
    calls: DriverCalls | None = None


_recording = _Recording()


def _sent(sql: Any) -> None:
    calls = _recording.calls
    if calls is not None:
        calls.add(sql if isinstance(sql, str) else bytes(sql).decode())


class _CountingSqliteCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> _CountingSqliteCursor:
        _sent(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> _CountingSqliteCursor:
        _sent(sql)
        return super().executemany(sql, parameters)


class _CountingSqliteConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _CountingSqliteCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = self.cursor()
        return cursor.execute(sql, parameters)

    def commit(self) -> None:
        if self.in_transaction:
            _sent("COMMIT")
        super().commit()

    def rollback(self) -> None:
        if self.in_transaction:
            _sent("ROLLBACK")
        super().rollback()


def _pg_begins(connection: psycopg.Connection[Any]) -> None:
    # psycopg sends BEGIN by itself before the first statement of a transaction.
    if (
        not connection.autocommit
        and connection.info.transaction_status == pq.TransactionStatus.IDLE
    ):
        _sent("BEGIN")


class _CountingPgCursor(psycopg.Cursor[Any]):
    def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        _pg_begins(self.connection)
        _sent(query)
        return super().execute(query, params, **options)

    def executemany(self, query: Any, params_seq: Any, **options: Any) -> None:
        _pg_begins(self.connection)
        _sent(query)
        super().executemany(query, params_seq, **options)


class _CountingPgConnection(psycopg.Connection[Any]):
    def commit(self) -> None:
        if self.info.transaction_status != pq.TransactionStatus.IDLE:
            _sent("COMMIT")
        super().commit()

    def rollback(self) -> None:
        if self.info.transaction_status != pq.TransactionStatus.IDLE:
            _sent("ROLLBACK")
        super().rollback()


def _pg_begins_async(connection: psycopg.AsyncConnection[Any]) -> None:
    if (
        not connection.autocommit
        and connection.info.transaction_status == pq.TransactionStatus.IDLE
    ):
        _sent("BEGIN")


class _CountingAsyncPgCursor(psycopg.AsyncCursor[Any]):
    async def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
        _pg_begins_async(self.connection)
        _sent(query)
        return await super().execute(query, params, **options)

    async def executemany(self, query: Any, params_seq: Any, **options: Any) -> None:
        _pg_begins_async(self.connection)
        _sent(query)
        await super().executemany(query, params_seq, **options)


class _CountingAsyncPgConnection(psycopg.AsyncConnection[Any]):
    async def commit(self) -> None:
        if self.info.transaction_status != pq.TransactionStatus.IDLE:
            _sent("COMMIT")
        await super().commit()

    async def rollback(self) -> None:
        if self.info.transaction_status != pq.TransactionStatus.IDLE:
            _sent("ROLLBACK")
        await super().rollback()


def _counting_connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
    if dialect.is_async:
        # PostgreSQL's asyncio engine (api/services.py): the same counting, on its driver's
        # connection under SQLAlchemy's adapter.
        cparams["async_creator_fn"] = functools.partial(
            _CountingAsyncPgConnection.connect, cursor_factory=_CountingAsyncPgCursor
        )
        return None
    if dialect.name == "sqlite":
        return sqlite3.connect(*cargs, factory=_CountingSqliteConnection, **cparams)
    return _CountingPgConnection.connect(*cargs, cursor_factory=_CountingPgCursor, **cparams)


@pytest.fixture
def counted(
    prepared_database: str, pki: DevPkiPaths, keyring_path: Path
) -> Iterator[tuple[Registry, str]]:
    """A registry client of a server whose database connections count what they send; the
    access check is cached, so the calls after the first make none."""
    event.listen(Dialect, "do_connect", _counting_connect)
    try:
        config = make_config(pki, keyring_path, prepared_database, access_cache_seconds=600.0)
        running = ServerThread(config).start()
        try:
            with client_channel(running.target, pki) as channel:
                stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
                yield (
                    Registry(stub, OSLO).as_library(OSLO),
                    make_url(prepared_database).get_backend_name(),
                )
        finally:
            running.stop()
    finally:
        event.remove(Dialect, "do_connect", _counting_connect)


def _recorded(use_case: Callable[..., T], into: list[DriverCalls]) -> Callable[..., T]:
    @functools.wraps(use_case)
    def run(*args: Any, **kwargs: Any) -> T:
        calls = DriverCalls()
        into.append(calls)
        _recording.calls = calls
        try:
            return use_case(*args, **kwargs)
        finally:
            _recording.calls = None

    return run


def _update(registry: Registry, card_number: str, etag: str, email: str) -> borrower_pb2.Borrower:
    return registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(card_number=card_number, etag=etag, email=email),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=registry.metadata,
    ).borrower


Recorded = tuple[Registry, dict[str, list[DriverCalls]], str]


@pytest.fixture
def recorded(counted: tuple[Registry, str], monkeypatch: pytest.MonkeyPatch) -> Recorded:
    """The registry, what each CreateBorrower and UpdateBorrower use case sent, and the store."""
    registry, store = counted
    calls: dict[str, list[DriverCalls]] = {"create": [], "update": []}
    monkeypatch.setattr(
        borrowers, "create_borrower", _recorded(borrowers.create_borrower, calls["create"])
    )
    monkeypatch.setattr(
        borrowers, "update_borrower", _recorded(borrowers.update_borrower, calls["update"])
    )
    return registry, calls, store


def _commits_once_with_the_feed_last(calls: DriverCalls, store: str) -> None:
    # One transaction; the feed's head is taken by the last statement before the commit (on
    # SQLite the entries follow it in the same file), and nothing is read after the commit.
    assert calls.count("BEGIN") == 1, calls.summary()
    assert calls.count("COMMIT") == 1, calls.summary()
    assert calls.count("ROLLBACK") == 0, calls.summary()
    assert calls.sent[0] == "BEGIN" and calls.sent[-1] == "COMMIT", calls.summary()
    feed = [i for i, sql in enumerate(calls.sent) if "feed_head" in sql]
    assert len(feed) == 1, calls.summary()
    after_head = calls.sent[feed[0] + 1 : -1]
    assert len(after_head) == (0 if store == "postgresql" else 1), calls.summary()
    assert all(sql.startswith("INSERT INTO feed_entries") for sql in after_head), calls.summary()


def test_update_borrower_is_one_transaction_of_six_round_trips(
    recorded: Recorded,
) -> None:
    registry, calls, store = recorded
    created = create(registry, new_borrower("N000009001"))
    first = _update(registry, "N000009001", created.etag, "a@example.org")
    second = _update(registry, "N000009001", first.etag, "b@example.org")

    assert second.email == "b@example.org"
    assert second.etag != first.etag
    for update in calls["update"]:
        _commits_once_with_the_feed_last(update, store)
        # BEGIN, the record with its full view, the change, the audit event, the feed, COMMIT
        # (SQLite: the feed's head and its entries are two statements).
        expected = 6 if store == "postgresql" else 7
        assert update.round_trips == expected, update.summary()
        assert update.statements[0].startswith("SELECT"), update.summary()
        assert sum(sql.startswith("SELECT") for sql in update.statements) == 1, update.summary()


def test_update_with_an_old_etag_reads_once_and_rolls_back(
    recorded: Recorded,
) -> None:
    registry, calls, _ = recorded
    created = create(registry, new_borrower("N000009002"))
    _update(registry, "N000009002", created.etag, "a@example.org")

    with pytest.raises(grpc.RpcError) as refused:
        _update(registry, "N000009002", created.etag, "b@example.org")

    assert refused.value.code() == grpc.StatusCode.ABORTED
    stale = calls["update"][-1]
    assert stale.sent[0] == "BEGIN" and stale.sent[-1] == "ROLLBACK", stale.summary()
    assert stale.round_trips == 3, stale.summary()
    assert stale.count("COMMIT") == 0


def test_create_borrower_is_one_transaction_without_a_read_after_it(
    recorded: Recorded,
) -> None:
    registry, calls, store = recorded
    created = create(registry, new_borrower("N000009003"))

    assert created.card_number == "N000009003"
    assert created.view == borrower_pb2.BORROWER_VIEW_FULL
    (made,) = calls["create"]
    _commits_once_with_the_feed_last(made, store)
    # BEGIN; the card number's and national id's status; the reservations; the borrower, its
    # affiliation and card number; the audit event; the feed; COMMIT.
    expected = 9 if store == "postgresql" else 10
    assert made.round_trips == expected, made.summary()
