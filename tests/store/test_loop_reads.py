"""Reads on the event loop of an embedded store reuse one unit of work, connection and session
(store/unit_of_work.py, ReusableReading). Reused, they must still behave as fresh ones: each
read sees what was committed before it (it leaves no snapshot open behind it), is not spoilt
by the failed read before it, and a read whose connection was lost connects afresh."""

from __future__ import annotations

import sqlite3

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.card_number import CardNumber
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from register_harness import Registry, ServerThread, create, new_borrower


def test_each_read_on_the_loop_sees_the_change_committed_before_it(
    sqlite_registry: Registry,
) -> None:
    created = create(sqlite_registry, new_borrower("N000000801"))
    get = pb.GetBorrowerRequest(card_number="N000000801")
    for email in ("first@example.no", "second@example.no"):
        current = sqlite_registry.stub.GetBorrower(get, metadata=sqlite_registry.metadata)
        sqlite_registry.stub.UpdateBorrower(
            pb.UpdateBorrowerRequest(
                borrower=borrower_pb2.Borrower(
                    card_number="N000000801", etag=current.borrower.etag, email=email
                ),
                update_mask=FieldMask(paths=["email"]),
            ),
            metadata=sqlite_registry.metadata,
        )
        read = sqlite_registry.stub.GetBorrower(get, metadata=sqlite_registry.metadata)
        assert read.borrower.email == email
    assert read.borrower.etag != created.etag


def test_a_read_that_found_nothing_leaves_the_next_read_working(
    sqlite_registry: Registry,
) -> None:
    create(sqlite_registry, new_borrower("N000000802"))
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as missing:
            sqlite_registry.stub.GetBorrower(
                pb.GetBorrowerRequest(card_number="N000000899"), metadata=sqlite_registry.metadata
            )
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        found = sqlite_registry.stub.GetBorrower(
            pb.GetBorrowerRequest(card_number="N000000802"), metadata=sqlite_registry.metadata
        )
        assert found.borrower.card_number == "N000000802"


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
