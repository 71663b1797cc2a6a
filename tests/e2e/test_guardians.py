"""Guardians end to end: a child under 15 gets one at creation, links are seen by affiliated
libraries, and the last guardian of a child stays."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    ServerThread,
    count_rows,
    error_details,
    get,
    national_id,
    new_borrower,
)

TODAY = dt.date.today()
CHILD_BIRTH = TODAY.replace(year=TODAY.year - 8, day=1)


def create(
    registry: Registry, borrower: borrower_pb2.Borrower, guardian: str = ""
) -> borrower_pb2.Borrower:
    return registry.stub.CreateBorrower(
        pb.CreateBorrowerRequest(borrower=borrower, guardian_card_number=guardian),
        metadata=registry.metadata,
    ).borrower


def child(card: str) -> borrower_pb2.Borrower:
    return new_borrower(card, given_name="Emma", national_id=national_id(CHILD_BIRTH))


def link(registry: Registry, card: str, guardian: str) -> borrower_pb2.Borrower:
    return registry.stub.LinkGuardian(
        pb.LinkGuardianRequest(card_number=card, guardian_card_number=guardian),
        metadata=registry.metadata,
    ).borrower


def unlink(registry: Registry, card: str, guardian: str) -> borrower_pb2.Borrower:
    return registry.stub.UnlinkGuardian(
        pb.UnlinkGuardianRequest(card_number=card, guardian_card_number=guardian),
        metadata=registry.metadata,
    ).borrower


def test_a_child_is_created_with_a_guardian_both_sides_see_the_link(registry: Registry) -> None:
    create(registry, new_borrower("N000001201"))

    created = create(registry, child("N000001202"), guardian="N000001201")

    assert [g.card_number for g in created.guardians] == ["N000001201"]
    assert created.guardians[0].linked_by == OSLO
    assert [w.card_number for w in get(registry, card_number="N000001201").wards] == ["N000001202"]


def test_a_child_without_a_guardian_is_refused_naming_the_field(
    registry: Registry, server: ServerThread
) -> None:
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        create(registry, child("N000001203"))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == ["guardian_card_number"]
    assert count_rows(server.config.database_url) == before


def test_an_unknown_or_young_guardian_is_refused_and_nothing_is_written(
    registry: Registry, server: ServerThread
) -> None:
    create(registry, new_borrower("N000001204"))
    create(registry, child("N000001205"), guardian="N000001204")
    before = count_rows(server.config.database_url)

    outcomes = []
    for guardian in ("N999999999", "N000001205"):
        with pytest.raises(grpc.RpcError) as raised:
            create(registry, child("N000001206"), guardian=guardian)
        outcomes.append((raised.value.code(), error_details(raised.value)[0]))

    assert outcomes == [
        (grpc.StatusCode.NOT_FOUND, "GUARDIAN_NOT_FOUND"),
        (grpc.StatusCode.FAILED_PRECONDITION, "GUARDIAN_NOT_ADULT"),
    ]
    assert count_rows(server.config.database_url) == before


def test_a_second_guardian_is_linked_and_the_last_one_stays(registry: Registry) -> None:
    create(registry, new_borrower("N000001207"))
    create(registry, new_borrower("N000001208"))
    create(registry, child("N000001209"), guardian="N000001207")

    both = link(registry, "N000001209", "N000001208")
    assert [g.card_number for g in both.guardians] == ["N000001207", "N000001208"]

    with pytest.raises(grpc.RpcError) as twice:
        link(registry, "N000001209", "N000001208")
    assert twice.value.code() == grpc.StatusCode.ALREADY_EXISTS

    one = unlink(registry, "N000001209", "N000001207")
    assert [g.card_number for g in one.guardians] == ["N000001208"]
    with pytest.raises(grpc.RpcError) as last:
        unlink(registry, "N000001209", "N000001208")
    assert last.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(last.value)[0] == "GUARDIAN_REQUIRED"


def test_an_adult_may_lose_every_guardian_link(registry: Registry) -> None:
    create(registry, new_borrower("N000001210"))
    create(registry, new_borrower("N000001211"))
    link(registry, "N000001211", "N000001210")

    after = unlink(registry, "N000001211", "N000001210")

    assert list(after.guardians) == []
    with pytest.raises(grpc.RpcError) as again:
        unlink(registry, "N000001211", "N000001210")
    assert again.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_unaffiliated_library_sees_no_links_and_may_not_change_them(
    registry: Registry,
) -> None:
    create(registry, new_borrower("N000001212"))
    create(registry, child("N000001213"), guardian="N000001212")
    bergen = registry.as_library(BERGEN)

    basic = get(bergen, card_number="N000001213")
    assert basic.view == borrower_pb2.BORROWER_VIEW_BASIC
    assert list(basic.guardians) == [] and list(basic.wards) == []
    with pytest.raises(grpc.RpcError) as raised:
        link(bergen, "N000001213", "N000001212")
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("card", "guardian", "field"),
    [("N1", "N000001214", "card_number"), ("N000001215", "", "guardian_card_number")],
)
def test_bad_link_request_names_the_field(
    registry: Registry, card: str, guardian: str, field: str
) -> None:
    create(registry, new_borrower("N000001215"))

    with pytest.raises(grpc.RpcError) as raised:
        link(registry, card, guardian)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == [field]
