"""AffiliateBorrower end to end: proof of the person at the desk, then the full view."""

from __future__ import annotations

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
    DISABLED_LIBRARY,
    OSLO,
    TROMSO,
    Registry,
    ServerThread,
    count_rows,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
)


def affiliate(registry: Registry, card_number: str, proof: str | None) -> borrower_pb2.Borrower:
    request = pb.AffiliateBorrowerRequest(card_number=card_number)
    if proof is not None:
        request.national_id = proof
    return registry.stub.AffiliateBorrower(request, metadata=registry.metadata).borrower


def test_affiliated_library_then_sees_the_full_view(registry: Registry) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000401", national_id=nid))
    bergen = registry.as_library(BERGEN)
    assert get(bergen, card_number="N000000401").view == borrower_pb2.BORROWER_VIEW_BASIC

    affiliated = affiliate(bergen, "N000000401", nid)

    assert affiliated.view == borrower_pb2.BORROWER_VIEW_FULL
    assert [a.library_number for a in affiliated.affiliations] == [OSLO, BERGEN]
    assert affiliated.home_library == OSLO
    assert affiliated.email == "kari@example.org"
    found = get(bergen, card_number="N000000401")
    assert found.view == borrower_pb2.BORROWER_VIEW_FULL
    assert found.registered_address.city == "Oslo"


def test_affiliating_twice_changes_nothing(registry: Registry) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000402", national_id=nid))
    bergen = registry.as_library(BERGEN)
    first = affiliate(bergen, "N000000402", nid)

    second = affiliate(bergen, "N000000402", nid)

    assert second == first


def test_wrong_proof_is_refused_and_reveals_nothing(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000000403"))
    bergen = registry.as_library(BERGEN)
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        affiliate(bergen, "N000000403", national_id())

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(raised.value)[0] == "AFFILIATION_PROOF_MISMATCH"
    assert count_rows(server.config.database_url) == before
    assert get(bergen, card_number="N000000403").view == borrower_pb2.BORROWER_VIEW_BASIC


@pytest.mark.parametrize(
    ("card_number", "proof", "field"),
    [
        ("N12", "valid", "card_number"),
        ("N000000404", None, "proof"),
        ("N000000404", "", "national_id"),
        ("N000000404", "1234", "national_id"),
    ],
)
def test_bad_request_names_the_field(
    registry: Registry, server: ServerThread, card_number: str, proof: str | None, field: str
) -> None:
    create(registry, new_borrower("N000000404"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        affiliate(
            registry.as_library(TROMSO), card_number, national_id() if proof == "valid" else proof
        )

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == [field]
    assert count_rows(server.config.database_url) == before


def test_unknown_borrower_is_not_found(registry: Registry) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        affiliate(registry, "N999999999", national_id())

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("library", "code"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        (DISABLED_LIBRARY, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_library_that_may_not_act_cannot_affiliate(
    registry: Registry, server: ServerThread, library: str | None, code: grpc.StatusCode
) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000405", national_id=nid))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        affiliate(registry.as_library(library), "N000000405", nid)

    assert raised.value.code() == code
    assert count_rows(server.config.database_url) == before
