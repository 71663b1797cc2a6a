"""Units of work are reused with their connections and sessions (store/unit_of_work.py,
ReusableUnits): on SQLite one each for reads and short writes on the event loop, on PostgreSQL
up to half the pool for reads in greenlets, which overlap. Reused, they must still behave as
fresh ones: each read sees what was committed before it (it leaves no snapshot open behind it),
a read or write is not spoilt by the one that failed before it, overlapping reads each answer
with their own borrower, and one whose connection was lost connects afresh. The tests through
the server run on both stores; on PostgreSQL, reads go on after the server closed every
connection the register held."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy.engine import make_url
from sqlalchemy.util import greenlet_spawn

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.card_number import CardNumber
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from register_harness import Registry, ServerThread, create, new_borrower


def test_each_reused_read_sees_the_change_committed_before_it(registry: Registry) -> None:
    created = create(registry, new_borrower("N000000801"))
    get = pb.GetBorrowerRequest(card_number="N000000801")
    for email in ("first@example.no", "second@example.no"):
        current = registry.stub.GetBorrower(get, metadata=registry.metadata)
        registry.stub.UpdateBorrower(
            pb.UpdateBorrowerRequest(
                borrower=borrower_pb2.Borrower(
                    card_number="N000000801", etag=current.borrower.etag, email=email
                ),
                update_mask=FieldMask(paths=["email"]),
            ),
            metadata=registry.metadata,
        )
        read = registry.stub.GetBorrower(get, metadata=registry.metadata)
        assert read.borrower.email == email
    assert read.borrower.etag != created.etag


def test_a_read_that_found_nothing_leaves_the_next_read_working(registry: Registry) -> None:
    create(registry, new_borrower("N000000802"))
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as missing:
            registry.stub.GetBorrower(
                pb.GetBorrowerRequest(card_number="N000000899"), metadata=registry.metadata
            )
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        found = registry.stub.GetBorrower(
            pb.GetBorrowerRequest(card_number="N000000802"), metadata=registry.metadata
        )
        assert found.borrower.card_number == "N000000802"


def test_a_refused_write_leaves_nothing_behind_for_the_next_write(registry: Registry) -> None:
    created = create(registry, new_borrower("N000000807"))
    before = registry.stub.ListChanges(
        pb.ListChangesRequest(after=0, page_size=1000), metadata=registry.metadata
    ).cursor

    def update(etag: str, email: str) -> None:
        registry.stub.UpdateBorrower(
            pb.UpdateBorrowerRequest(
                borrower=borrower_pb2.Borrower(card_number="N000000807", etag=etag, email=email),
                update_mask=FieldMask(paths=["email"]),
            ),
            metadata=registry.metadata,
        )

    with pytest.raises(grpc.RpcError) as stale:
        update('"999"', "refused@example.no")
    assert stale.value.code() is grpc.StatusCode.ABORTED
    update(created.etag, "taken@example.no")
    changes = registry.stub.ListChanges(
        pb.ListChangesRequest(after=before, page_size=1000), metadata=registry.metadata
    ).changes
    assert [change.borrower.email for change in changes] == ["taken@example.no"]
    read = registry.stub.GetBorrower(
        pb.GetBorrowerRequest(card_number="N000000807"), metadata=registry.metadata
    )
    assert read.borrower.email == "taken@example.no"


def test_overlapping_reads_each_answer_with_their_own_borrower(registry: Registry) -> None:
    cards = [f"N0000009{index:02d}" for index in range(24)]
    for index, card in enumerate(cards):
        create(registry, new_borrower(card, email=f"reader{index}@example.no"))

    def read(card: str) -> tuple[str, str]:
        found = registry.stub.GetBorrower(
            pb.GetBorrowerRequest(card_number=card), metadata=registry.metadata
        )
        return found.borrower.card_number, found.borrower.email

    # 16 at a time, so reads overlap and more units of work are lent than are kept; every
    # card read many times, so kept ones serve many borrowers in turn.
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(read, cards * 8))
    assert answers == [
        (card, f"reader{index}@example.no") for _ in range(8) for index, card in enumerate(cards)
    ]


def test_reads_in_greenlets_are_never_lent_twice_and_keep_half_the_pool(
    server: ServerThread, keyring: Keyring
) -> None:
    if make_url(server.config.database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only: SQLite's reads on the loop never overlap")
    factory = SqlUnitOfWorkFactory(
        create_store_engine(server.config.database_url), NationalIdSealer(keyring)
    )
    made = factory.for_greenlets(pool_size=4)
    assert made is not None
    greenlets, engine = made
    card = CardNumber.parse("N000000808")

    def overlapping() -> None:
        units = [greenlets(read_only=True) for _ in range(3)]
        for unit in units:
            unit.__enter__()
            assert unit.borrowers.get_by_card_number(card) is None
        assert len({id(unit) for unit in units}) == 3, "each overlapping read has its own"
        for unit in units:
            unit.__exit__(None, None, None)
        # Two kept (half the pool), so the next three are two of those and a new one.
        again = [greenlets(read_only=True) for _ in range(3)]
        assert len({id(u) for u in again} & {id(u) for u in units}) == 2
        for unit in again:
            unit.__enter__()
            unit.__exit__(None, None, None)
        greenlets.close_kept()

    async def run() -> None:
        try:
            await greenlet_spawn(overlapping)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    finally:
        factory.dispose()


def test_reads_go_on_after_the_server_closed_the_pooled_connections(
    registry: Registry, server: ServerThread
) -> None:
    url = make_url(server.config.database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only: an embedded store has no server to close connections")
    create(registry, new_borrower("N000000806"))
    get = pb.GetBorrowerRequest(card_number="N000000806")
    for _ in range(4):
        registry.stub.GetBorrower(get, metadata=registry.metadata)
    admin = url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        ended = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        assert ended, "a control: the server held connections"
        deadline = time.monotonic() + 5
        while connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the backends did not end"
            time.sleep(0.01)
    time.sleep(0.2)
    for _ in range(4):
        found = registry.stub.GetBorrower(get, metadata=registry.metadata)
        assert found.borrower.card_number == "N000000806"


def test_the_reused_reading_unit_of_work_connects_afresh_after_losing_its_connection(
    sqlite_registry: Registry, sqlite_server: ServerThread, keyring: Keyring
) -> None:
    create(sqlite_registry, new_borrower("N000000804"))
    engine = create_store_engine(sqlite_server.config.database_url)
    loop_reads = SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring)).for_loop_reads()
    assert loop_reads is not None
    card = CardNumber.parse("N000000804")
    try:
        with loop_reads(read_only=True) as first:
            assert first.borrowers.get_by_card_number(card) is not None
        with loop_reads(read_only=True) as again:
            assert again is first, "one reading unit of work, reused"
            assert again.borrowers.get_by_card_number(card) is not None
        # Its connection is lost (the file's connection closed under it): the read fails,
        # and the next one is made on a new connection.
        with pytest.raises(sqlite3.ProgrammingError), loop_reads(read_only=True) as broken:
            broken._connection.connection.dbapi_connection.close()  # type: ignore[union-attr]
            broken.borrowers.get_by_card_number(card)
        with loop_reads(read_only=True) as fresh:
            assert fresh is not first
            found = fresh.borrowers.get_by_card_number(card)
            assert found is not None and found.card_number == card
    finally:
        loop_reads.dispose()
        engine.dispose()


def test_reused_reads_do_not_nest(sqlite_server: ServerThread, keyring: Keyring) -> None:
    engine = create_store_engine(sqlite_server.config.database_url)
    loop_reads = SqlUnitOfWorkFactory(engine, NationalIdSealer(keyring)).for_loop_reads()
    assert loop_reads is not None
    try:
        with (
            loop_reads(read_only=True),
            pytest.raises(RuntimeError, match="do not nest"),
            loop_reads(read_only=True),
        ):
            pass
        with loop_reads(read_only=True) as after:  # the outer one ended as usual
            assert after.borrowers.get_by_card_number(CardNumber.parse("N000000805")) is None
    finally:
        loop_reads.dispose()
        engine.dispose()
