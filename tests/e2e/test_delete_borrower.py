"""DeleteBorrower end to end: personal data goes, the card number stays retired for ever."""

from __future__ import annotations

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
    UNKNOWN_LIBRARY,
    Registry,
    ServerThread,
    count_rows,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
    sqlite_bytes,
)

BORROWER_REQUEST = borrower_pb2.DELETION_REASON_BORROWER_REQUEST


def delete(
    registry: Registry, card_number: str, reason: int = BORROWER_REQUEST, etag: str = ""
) -> pb.DeleteBorrowerResponse:
    return registry.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(card_number=card_number, reason=reason, etag=etag),  # type: ignore[arg-type]
        metadata=registry.metadata,
    )


def test_deleted_borrower_is_gone_and_its_card_number_retired(
    registry: Registry, server: ServerThread
) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000501", national_id=nid))
    before = count_rows(server.config.database_url)

    deleted = delete(registry, "N000000501")

    assert deleted.card_number == "N000000501"
    assert deleted.delete_time.seconds > 0
    after = count_rows(server.config.database_url)
    assert after["borrowers"] == before["borrowers"] - 1
    assert after["affiliations"] == before["affiliations"] - 1
    assert after["card_numbers"] == before["card_numbers"]
    for key in ({"card_number": "N000000501"}, {"national_id": nid}):
        with pytest.raises(grpc.RpcError) as raised:
            get(registry, **key)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_national_id_of_a_deleted_borrower_can_be_registered_again(registry: Registry) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000502", national_id=nid))
    delete(registry, "N000000502", borrower_pb2.DELETION_REASON_DECEASED)

    again = create(registry, new_borrower("N000000503", national_id=nid))

    assert again.card_number == "N000000503"


def test_deleted_personal_data_is_not_left_in_the_sqlite_file(
    sqlite_registry: Registry, sqlite_server: ServerThread
) -> None:
    distinctive = [b"Zyxwqvandre", b"zyxwqvandre@example.org"]
    create(
        sqlite_registry,
        new_borrower("N000000504", given_name="Zyxwqvandre", email="zyxwqvandre@example.org"),
    )
    assert all(
        value in sqlite_bytes(sqlite_server.config.database_url) for value in distinctive
    )  # it was there

    # DECEASED: a borrower's own request queues a notice holding the address until it is
    # delivered (test_deletion_notices checks the file after that).
    delete(sqlite_registry, "N000000504", borrower_pb2.DELETION_REASON_DECEASED)

    raw = sqlite_bytes(sqlite_server.config.database_url)
    assert [value for value in distinctive if value in raw] == []


@pytest.mark.parametrize(
    ("card_number", "reason", "field"),
    [
        ("N12", BORROWER_REQUEST, "card_number"),
        ("N000000505", borrower_pb2.DELETION_REASON_UNSPECIFIED, "reason"),
        ("N000000505", 99, "reason"),
    ],
)
def test_bad_request_names_the_field_and_deletes_nothing(
    registry: Registry, server: ServerThread, card_number: str, reason: int, field: str
) -> None:
    create(registry, new_borrower("N000000505"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        delete(registry, card_number, reason)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == [field]
    assert count_rows(server.config.database_url) == before


def test_stale_etag_is_aborted_and_deletes_nothing(registry: Registry) -> None:
    created = create(registry, new_borrower("N000000506"))

    with pytest.raises(grpc.RpcError) as raised:
        delete(registry, "N000000506", etag='"0"')

    assert raised.value.code() == grpc.StatusCode.ABORTED
    assert get(registry, card_number="N000000506") == created
    assert delete(registry, "N000000506", etag=created.etag).card_number == "N000000506"


def test_unknown_and_already_deleted_borrowers_are_not_found(registry: Registry) -> None:
    create(registry, new_borrower("N000000507"))
    delete(registry, "N000000507")

    for card_number in ("N999999999", "N000000507"):
        with pytest.raises(grpc.RpcError) as raised:
            delete(registry, card_number)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("library", "code", "reason"),
    [
        (BERGEN, grpc.StatusCode.PERMISSION_DENIED, "NOT_AFFILIATED"),
        (UNKNOWN_LIBRARY, grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_NOT_ALLOWED"),
        (None, grpc.StatusCode.UNAUTHENTICATED, "LIBRARY_MISSING"),
    ],
)
def test_library_that_may_not_delete_is_refused(
    registry: Registry,
    server: ServerThread,
    library: str | None,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    create(registry, new_borrower("N000000508"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        delete(registry.as_library(library), "N000000508")

    assert raised.value.code() == code
    assert error_details(raised.value)[0] == reason
    assert count_rows(server.config.database_url) == before
