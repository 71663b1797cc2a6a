"""ReserveCardNumbers end to end: ranges that never overlap each other or a number in use,
and a reserved number is its library's to issue."""

from __future__ import annotations

import threading

import grpc
import pytest

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    BERGEN,
    OSLO,
    TROMSO,
    Registry,
    ServerThread,
    client_channel,
    count_rows,
    create,
    error_details,
    new_borrower,
)


def reserve(registry: Registry, count: int) -> pb.CardNumberReservation:
    return registry.stub.ReserveCardNumbers(
        pb.ReserveCardNumbersRequest(count=count), metadata=registry.metadata
    ).reservation


def span(reservation: pb.CardNumberReservation) -> range:
    first = int(reservation.first_card_number[1:])
    return range(first, int(reservation.last_card_number[1:]) + 1)


def test_a_reservation_is_a_range_past_every_number_in_use(registry: Registry) -> None:
    create(registry, new_borrower("N000500000"))

    first = reserve(registry, 10)
    second = reserve(registry.as_library(BERGEN), 5)

    assert (first.first_card_number, first.last_card_number, first.count) == (
        "N000500001",
        "N000500010",
        10,
    )
    assert first.library_number == OSLO
    assert (second.first_card_number, second.last_card_number) == ("N000500011", "N000500015")
    assert second.library_number == BERGEN


def test_a_library_lists_only_its_own_reservations(registry: Registry) -> None:
    mine = [reserve(registry, 3), reserve(registry, 4)]
    reserve(registry.as_library(BERGEN), 2)

    listed = registry.stub.ListCardNumberReservations(
        pb.ListCardNumberReservationsRequest(), metadata=registry.metadata
    ).reservations

    assert [(r.first_card_number, r.count) for r in listed] == [
        (r.first_card_number, r.count) for r in mine
    ]


@pytest.mark.parametrize("count", [0, -1, 100_001])
def test_a_bad_count_is_invalid_argument_and_reserves_nothing(
    registry: Registry, server: ServerThread, count: int
) -> None:
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        reserve(registry, count)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == ["count"]
    assert count_rows(server.config.database_url) == before


def test_a_number_reserved_by_another_library_is_refused_but_its_own_library_may_issue_it(
    registry: Registry,
) -> None:
    bergens = reserve(registry.as_library(BERGEN), 3)
    create(registry, new_borrower("N000600000"))

    for call in (
        lambda: create(registry, new_borrower(bergens.first_card_number)),
        lambda: registry.stub.ReplaceCard(
            pb.ReplaceCardRequest(
                card_number="N000600000", new_card_number=bergens.last_card_number
            ),
            metadata=registry.metadata,
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_details(raised.value)[0] == "CARD_NUMBER_RESERVED"

    issued = create(registry.as_library(BERGEN), new_borrower(bergens.first_card_number))
    assert issued.card_number == bergens.first_card_number


def test_concurrent_reservations_from_several_libraries_never_overlap(
    registry: Registry, server: ServerThread, pki: DevPkiPaths
) -> None:
    ranges: list[range] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def reserve_many(library: str) -> None:
        with client_channel(server.target, pki) as channel:
            caller = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), None)
            caller = caller.as_library(library)
            for size in (1, 7, 20, 3, 50):
                try:
                    got = span(reserve(caller, size))
                except grpc.RpcError as error:
                    errors.append(error)
                    continue
                with lock:
                    ranges.append(got)

    threads = [
        threading.Thread(target=reserve_many, args=(library,))
        for library in (OSLO, BERGEN, TROMSO, OSLO)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(ranges) == 20
    numbers = [n for r in ranges for n in r]
    assert len(numbers) == len(set(numbers)) == 4 * (1 + 7 + 20 + 3 + 50)
