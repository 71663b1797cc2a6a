"""GetBorrower end to end: by card number or national id, in the view the library may see."""

from __future__ import annotations

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
    DISABLED_LIBRARY,
    UNKNOWN_LIBRARY,
    Registry,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
)

# Everything the basic view may carry; every other field must be unset.
BASIC_FIELDS = {"card_number", "given_name", "family_name", "birth_year", "view", "card_valid"}


def test_affiliated_library_gets_the_full_view_by_card_number(registry: Registry) -> None:
    create(registry, new_borrower("N000000201", sex=borrower_pb2.SEX_MALE))

    found = get(registry, card_number="N000000201")

    assert found.view == borrower_pb2.BORROWER_VIEW_FULL
    assert found.email == "kari@example.org"
    assert found.mobile_phone == "+4791234567"
    assert found.registered_address.city == "Oslo"
    assert found.sex == borrower_pb2.SEX_MALE
    assert found.etag


def test_borrower_is_found_by_national_id(registry: Registry) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000202", national_id=nid))

    found = get(registry, national_id=nid)

    assert found.card_number == "N000000202"


def test_national_id_with_separators_finds_the_same_borrower(registry: Registry) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000203", national_id=nid))

    found = get(registry, national_id=f"{nid[:6]} {nid[6:]}")

    assert found.card_number == "N000000203"


def test_unaffiliated_library_sees_no_contact_data(registry: Registry) -> None:
    create(registry, new_borrower("N000000204", home_phone="22334455", work_phone="22334456"))

    found = get(registry.as_library(BERGEN), card_number="N000000204")

    assert found.view == borrower_pb2.BORROWER_VIEW_BASIC
    assert {f.name for f, _ in found.ListFields()} == BASIC_FIELDS
    assert found.email == ""
    assert found.mobile_phone == found.home_phone == found.work_phone == ""
    assert not found.HasField("registered_address")
    assert found.birth_date == ""
    assert found.home_library == ""
    assert len(found.affiliations) == 0
    assert found.etag == ""
    assert (found.given_name, found.birth_year) == ("Kari", 1990)


def test_national_id_is_never_returned(registry: Registry) -> None:
    nid = national_id()
    create(registry, new_borrower("N000000205", national_id=nid))

    for library in (registry, registry.as_library(BERGEN)):
        found = get(library, national_id=nid)
        assert found.national_id == ""
        assert nid not in found.SerializeToString().decode("utf-8", errors="replace")


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ({"card_number": "N123"}, "card_number"),
        ({"card_number": ""}, "card_number"),
        ({"national_id": "12345678901"}, "national_id"),
        ({"national_id": "abc"}, "national_id"),
        ({}, "key"),
    ],
)
def test_bad_key_is_invalid_argument_naming_the_field(
    registry: Registry, key: dict[str, str], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        get(registry, **key)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == [field]


def test_unknown_card_number_is_not_found(registry: Registry) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        get(registry, card_number="N999999999")

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_national_id_is_not_found(registry: Registry) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        get(registry, national_id=national_id())

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("library", "code"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        (UNKNOWN_LIBRARY, grpc.StatusCode.PERMISSION_DENIED),
        (DISABLED_LIBRARY, grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_caller_without_an_active_library_sees_nothing(
    registry: Registry, library: str | None, code: grpc.StatusCode
) -> None:
    create(registry, new_borrower("N000000206"))

    with pytest.raises(grpc.RpcError) as raised:
        get(registry.as_library(library), card_number="N000000206")

    assert raised.value.code() == code
    assert "Kari" not in (raised.value.details() or "")


def test_deleted_borrower_is_not_found(registry: Registry) -> None:
    create(registry, new_borrower("N000000207"))
    registry.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(
            card_number="N000000207", reason=borrower_pb2.DELETION_REASON_DECEASED
        ),
        metadata=registry.metadata,
    )

    with pytest.raises(grpc.RpcError) as raised:
        get(registry, card_number="N000000207")

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
