"""The erasers (store/erasure.py). SQLite: asking never waits, a deletion waits at most its
second, and a truncation a reader holds up is retried until the log is empty. PostgreSQL: a
vacuum an older snapshot holds up stays pending and names the holder."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from nlr_server.store import erasure, migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.erasure import (
    LAST_RETRY_SECONDS,
    TRUNCATION_WAIT_SECONDS,
    DeletionVacuum,
    WalTruncation,
)
from register_harness import POSTGRES_URL_VARIABLE, postgres_database

VALUE = b"Qxzyerased"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "erased.db"
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA secure_delete=ON")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute("CREATE TABLE people (name TEXT)")
        connection.execute("INSERT INTO people VALUES (?)", (VALUE.decode(),))
    # A connection stays open, as the server's do: closing the last one would checkpoint.
    keeper = sqlite3.connect(path, isolation_level=None)
    keeper.execute("PRAGMA secure_delete=ON")
    keeper.execute("PRAGMA wal_autocheckpoint=0")
    keeper.execute("DELETE FROM people")
    yield path
    keeper.close()


def wal_holds_value(database: Path) -> bool:
    wal = database.with_name(database.name + "-wal")
    return wal.exists() and VALUE in wal.read_bytes()


def test_a_deletion_waits_for_the_truncation_and_leaves_an_empty_log(database: Path) -> None:
    assert wal_holds_value(database)
    eraser = WalTruncation(database)
    eraser.start()
    try:
        eraser.deleted()

        assert eraser.completed
        assert database.with_name(database.name + "-wal").stat().st_size == 0
    finally:
        eraser.stop()


def test_a_reader_holds_the_truncation_up_without_anyone_waiting_for_long(database: Path) -> None:
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM people").fetchone()
    eraser = WalTruncation(database)
    eraser.start()
    try:
        started = time.monotonic()
        eraser.request()  # what the event loop's writes call: never waits
        assert time.monotonic() - started < 0.05

        started = time.monotonic()
        eraser.deleted()  # a worker's: waits its while, then answers
        waited = time.monotonic() - started
        assert TRUNCATION_WAIT_SECONDS - 0.1 < waited < TRUNCATION_WAIT_SECONDS + 0.5

        started = time.monotonic()
        eraser.deleted()  # held up already: answers at once
        assert time.monotonic() - started < 0.05
        assert not eraser.completed
        assert wal_holds_value(database)

        reader.execute("COMMIT")
        deadline = time.monotonic() + LAST_RETRY_SECONDS + 0.5
        while not eraser.completed:
            assert time.monotonic() < deadline, "not truncated after the reader ended"
            time.sleep(0.01)
        assert not wal_holds_value(database)
    finally:
        reader.close()
        eraser.stop()


@pytest.mark.postgresql
def test_a_vacuum_held_up_by_an_older_snapshot_stays_pending_and_says_who_holds_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.environ.get(POSTGRES_URL_VARIABLE):
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_VARIABLE}")
    monkeypatch.setattr(erasure, "HELD_UP_WARNING_SECONDS", 0.0)
    with postgres_database() as url:
        engine = create_store_engine(url)
        try:
            migrate.upgrade(engine)
            vacuum = DeletionVacuum(engine, horizon_wait_seconds=0.2)
            conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
            with psycopg.connect(conninfo) as older:
                older.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                older.execute("SELECT count(*) FROM borrowers").fetchone()
                holder = older.info.backend_pid
                # A write that commits after that snapshot was taken: it may not see the write.
                with engine.begin() as writing:
                    writing.execute(
                        text(
                            "INSERT INTO libraries (library_number, name, active)"
                            " VALUES ('2030100', 'Oslo', true)"
                        )
                    )
                vacuum.deleted()

                assert vacuum.vacuum_if_pending() is False
                assert vacuum.pending
                assert f"backend {holder}" in caplog.text
                older.rollback()

            assert vacuum.vacuum_if_pending() is True
            assert not vacuum.pending
        finally:
            engine.dispose()
