"""No answer leaves without its audit row: while the trail cannot be written, a read is answered
UNAVAILABLE (AUDIT_UNAVAILABLE) instead of with the data, a refusal is still answered as it is,
and both are in the trail once it can be written again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from sqlalchemy import text

from nlr_server.store.database import create_store_engine
from nlr_server.store.models import AuditEventRow
from register_harness import (
    Registry,
    ServerThread,
    audit_rows,
    create,
    error_details,
    get,
    new_borrower,
    wait_for_audit_rows,
)


@contextmanager
def audit_trail_refusing_writes(url: str) -> Iterator[None]:
    """Every insert into audit_events fails, until the block ends."""
    engine = create_store_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.begin() as connection:
            if sqlite:
                connection.execute(
                    text(
                        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                    )
                )
            else:
                connection.execute(
                    text(
                        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
                    )
                )
                connection.execute(
                    text(
                        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                        "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
                    )
                )
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(
                text("DROP TRIGGER refuse_audit" + ("" if sqlite else " ON audit_events"))
            )
            if not sqlite:
                connection.execute(text("DROP FUNCTION refuse_audit()"))
        engine.dispose()


def outcomes(url: str, card_number: str) -> list[tuple[str, str, str | None]]:
    return audit_rows(
        url,
        AuditEventRow.rpc,
        AuditEventRow.outcome,
        AuditEventRow.reason,
        where=AuditEventRow.card_number == card_number,
    )


def test_a_read_is_not_answered_while_its_audit_row_cannot_be_written(
    registry: Registry, server: ServerThread
) -> None:
    url = server.config.database_url
    create(registry, new_borrower("N000002201"))
    assert get(registry, card_number="N000002201").card_number == "N000002201"  # control

    with audit_trail_refusing_writes(url):
        with pytest.raises(grpc.RpcError) as read:
            get(registry, card_number="N000002201")
        with pytest.raises(grpc.RpcError) as refused:
            get(registry, card_number="N000002299")

    assert read.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_details(read.value)[0] == "AUDIT_UNAVAILABLE"
    # A refusal discloses nothing: it is answered as it is, and audited once the trail is back.
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert wait_for_audit_rows(
        url, 1, AuditEventRow.outcome, where=AuditEventRow.card_number == "N000002299"
    ) == [("NOT_FOUND",)]
    wait_for_audit_rows(
        url,
        3,
        AuditEventRow.outcome,
        where=AuditEventRow.card_number == "N000002201",
    )
    assert outcomes(url, "N000002201") == [
        ("CreateBorrower", "OK", None),
        ("GetBorrower", "OK", None),
        ("GetBorrower", "UNAVAILABLE", "AUDIT_UNAVAILABLE"),
    ]
    # And reads are answered again.
    assert get(registry, card_number="N000002201").card_number == "N000002201"


def test_a_change_whose_audit_row_cannot_be_written_is_not_made(
    registry: Registry, server: ServerThread
) -> None:
    url = server.config.database_url

    with audit_trail_refusing_writes(url), pytest.raises(grpc.RpcError) as created:
        create(registry, new_borrower("N000002202"))

    # The trigger's failure as each store reports it (a failed statement on PostgreSQL, which
    # ends the transaction; a constraint on SQLite): either way, nothing was made.
    assert created.value.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL)
    with pytest.raises(grpc.RpcError) as missing:
        get(registry, card_number="N000002202")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
