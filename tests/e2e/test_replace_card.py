"""ReplaceCard end to end: a new number for a lost card; the old one retired for ever."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
    Registry,
    ServerThread,
    count_rows,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
)


def replace(registry: Registry, card: str, new_card: str) -> borrower_pb2.Borrower:
    return registry.stub.ReplaceCard(
        pb.ReplaceCardRequest(card_number=card, new_card_number=new_card),
        metadata=registry.metadata,
    ).borrower


def test_a_replaced_card_has_a_new_number_and_remembers_the_old(registry: Registry) -> None:
    nid = national_id()
    create(registry, new_borrower("N000001101", national_id=nid))

    replaced = replace(registry, "N000001101", "N000001102")

    assert (replaced.card_number, replaced.previous_card_number) == ("N000001102", "N000001101")
    assert get(registry, card_number="N000001102").previous_card_number == "N000001101"
    assert get(registry, national_id=nid).card_number == "N000001102"
    with pytest.raises(grpc.RpcError) as raised:
        get(registry, card_number="N000001101")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_old_number_is_never_accepted_again(registry: Registry) -> None:
    create(registry, new_borrower("N000001103"))
    replace(registry, "N000001103", "N000001104")
    create(registry, new_borrower("N000001105"))

    calls: list[Callable[[], object]] = [
        lambda: create(registry, new_borrower("N000001103")),
        lambda: replace(registry, "N000001105", "N000001103"),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(raised.value)[0] == "CARD_NUMBER_RETIRED"


def test_a_number_in_use_is_already_exists_and_nothing_changes(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001106"))
    create(registry, new_borrower("N000001107"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        replace(registry, "N000001106", "N000001107")

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert count_rows(server.config.database_url) == before
    assert get(registry, card_number="N000001106").previous_card_number == ""


@pytest.mark.parametrize(
    ("card", "new_card", "field"),
    [
        ("N1", "N000001199", "card_number"),
        ("N000001108", "X", "new_card_number"),
        ("N000001108", "", "new_card_number"),
    ],
)
def test_bad_request_names_the_field(
    registry: Registry, card: str, new_card: str, field: str
) -> None:
    create(registry, new_borrower("N000001108"))

    with pytest.raises(grpc.RpcError) as raised:
        replace(registry, card, new_card)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == [field]


def test_unknown_borrower_is_not_found_and_an_unaffiliated_library_is_refused(
    registry: Registry,
) -> None:
    create(registry, new_borrower("N000001109"))

    with pytest.raises(grpc.RpcError) as unknown:
        replace(registry, "N999999999", "N000001110")
    with pytest.raises(grpc.RpcError) as stranger:
        replace(registry.as_library(BERGEN), "N000001109", "N000001110")

    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert stranger.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(stranger.value)[0] == "NOT_AFFILIATED"
