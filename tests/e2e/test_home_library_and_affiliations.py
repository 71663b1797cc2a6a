"""SetHomeLibrary and RemoveAffiliation end to end: the home library is always an affiliated
one, and leaves only with a new home named."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
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


def affiliated(registry: Registry, card: str, *libraries: str) -> None:
    """A borrower created by Oslo and affiliated with the other libraries too."""
    nid = national_id()
    create(registry, new_borrower(card, national_id=nid))
    for library in libraries:
        other = registry.as_library(library)
        other.stub.AffiliateBorrower(
            pb.AffiliateBorrowerRequest(card_number=card, national_id=nid),
            metadata=other.metadata,
        )


def set_home(registry: Registry, card: str, library: str) -> borrower_pb2.Borrower:
    return registry.stub.SetHomeLibrary(
        pb.SetHomeLibraryRequest(card_number=card, library_number=library),
        metadata=registry.metadata,
    ).borrower


def remove(registry: Registry, card: str, new_home: str = "") -> borrower_pb2.Borrower:
    return registry.stub.RemoveAffiliation(
        pb.RemoveAffiliationRequest(card_number=card, new_home_library=new_home),
        metadata=registry.metadata,
    ).borrower


def test_the_home_library_moves_to_another_affiliated_library(registry: Registry) -> None:
    affiliated(registry, "N000001001", BERGEN)

    moved = set_home(registry.as_library(BERGEN), "N000001001", BERGEN)

    assert (moved.home_library, moved.last_changed_by) == (BERGEN, BERGEN)
    assert get(registry, card_number="N000001001").home_library == BERGEN


def test_an_unaffiliated_home_library_is_a_failed_precondition(
    registry: Registry, server: ServerThread
) -> None:
    affiliated(registry, "N000001002")
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        set_home(registry, "N000001002", TROMSO)

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(raised.value)[0] == "HOME_LIBRARY_NOT_AFFILIATED"
    assert count_rows(server.config.database_url) == before
    assert get(registry, card_number="N000001002").home_library == OSLO


@pytest.mark.parametrize(
    ("card", "library", "field"),
    [
        ("N1", OSLO, "card_number"),
        ("N000001003", "12", "library_number"),
        ("N000001003", "", "library_number"),
    ],
)
def test_bad_set_home_request_names_the_field(
    registry: Registry, card: str, library: str, field: str
) -> None:
    affiliated(registry, "N000001003")

    with pytest.raises(grpc.RpcError) as raised:
        set_home(registry, card, library)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == [field]


def test_a_library_that_is_not_affiliated_may_not_set_the_home(registry: Registry) -> None:
    affiliated(registry, "N000001004")

    with pytest.raises(grpc.RpcError) as raised:
        set_home(registry.as_library(BERGEN), "N000001004", BERGEN)

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(raised.value)[0] == "NOT_AFFILIATED"


def test_unknown_borrower_is_not_found(registry: Registry) -> None:
    calls: list[Callable[[], object]] = [
        lambda: set_home(registry, "N999999999", OSLO),
        lambda: remove(registry, "N999999999"),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as raised:
            call()
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_library_that_leaves_sees_the_basic_view_after(registry: Registry) -> None:
    affiliated(registry, "N000001005", BERGEN)

    after = remove(registry.as_library(BERGEN), "N000001005")

    assert after.view == borrower_pb2.BORROWER_VIEW_BASIC
    assert after.email == ""
    full = get(registry, card_number="N000001005")
    assert [a.library_number for a in full.affiliations] == [OSLO]
    assert full.home_library == OSLO


def test_the_home_library_leaves_only_with_a_new_home_named(
    registry: Registry, server: ServerThread
) -> None:
    affiliated(registry, "N000001006", BERGEN, TROMSO)
    before = count_rows(server.config.database_url)

    outcomes = []
    for new_home in ("", OSLO, "2999900"):
        with pytest.raises(grpc.RpcError) as raised:
            remove(registry, "N000001006", new_home)
        outcomes.append((raised.value.code(), error_details(raised.value)[0]))
    assert outcomes == [
        (grpc.StatusCode.FAILED_PRECONDITION, "HOME_LIBRARY_REQUIRED"),
        (grpc.StatusCode.FAILED_PRECONDITION, "HOME_LIBRARY_NOT_AFFILIATED"),
        (grpc.StatusCode.FAILED_PRECONDITION, "HOME_LIBRARY_NOT_AFFILIATED"),
    ]
    assert count_rows(server.config.database_url) == before

    remove(registry, "N000001006", TROMSO)

    full = get(registry.as_library(TROMSO), card_number="N000001006")
    assert full.home_library == TROMSO
    assert [a.library_number for a in full.affiliations] == [BERGEN, TROMSO]


def test_the_last_affiliation_cannot_be_removed(registry: Registry) -> None:
    affiliated(registry, "N000001007")

    with pytest.raises(grpc.RpcError) as raised:
        remove(registry, "N000001007")

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(raised.value)[0] == "LAST_AFFILIATION"
    assert get(registry, card_number="N000001007").view == borrower_pb2.BORROWER_VIEW_FULL


def test_bad_remove_request_names_the_field(registry: Registry) -> None:
    affiliated(registry, "N000001008", BERGEN)

    for card, new_home, field in (
        ("X", "", "card_number"),
        ("N000001008", "1", "new_home_library"),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            remove(registry, card, new_home)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert list(error_details(raised.value)[1]) == [field]
