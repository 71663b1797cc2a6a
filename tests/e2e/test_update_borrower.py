"""UpdateBorrower end to end: update_mask, etag, who may change what."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

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
)


def update(
    registry: Registry, borrower: borrower_pb2.Borrower, *paths: str
) -> borrower_pb2.Borrower:
    return registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(borrower=borrower, update_mask=FieldMask(paths=list(paths))),
        metadata=registry.metadata,
    ).borrower


def changes(card_number: str, etag: str, **fields: object) -> borrower_pb2.Borrower:
    return borrower_pb2.Borrower(card_number=card_number, etag=etag, **fields)  # type: ignore[arg-type]


def test_only_the_fields_in_the_mask_change(registry: Registry) -> None:
    created = create(registry, new_borrower("N000000301"))

    updated = update(
        registry,
        changes(
            "N000000301",
            created.etag,
            email="ny@example.org",
            family_name="Ignored",
            mobile_phone="+47 41 23 45 67",
        ),
        "email",
        "mobile_phone",
    )

    assert updated.email == "ny@example.org"
    assert updated.mobile_phone == "+4741234567"
    assert updated.family_name == "Nordmann"
    assert updated.etag != created.etag
    assert get(registry, card_number="N000000301").email == "ny@example.org"


def test_update_records_the_changing_library_and_time(registry: Registry) -> None:
    nid = national_id()
    created = create(registry, new_borrower("N000000302", national_id=nid))
    bergen = registry.as_library(BERGEN)
    affiliated = bergen.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number="N000000302", national_id=nid),
        metadata=bergen.metadata,
    ).borrower

    updated = update(
        bergen, changes("N000000302", affiliated.etag, given_name="Kari Anne"), "given_name"
    )

    assert updated.given_name == "Kari Anne"
    assert updated.last_changed_by == BERGEN
    assert updated.created_by == created.created_by
    assert updated.update_time.ToDatetime() >= created.update_time.ToDatetime()


def test_empty_value_clears_an_optional_field(registry: Registry) -> None:
    created = create(registry, new_borrower("N000000303"))

    updated = update(registry, changes("N000000303", created.etag), "email", "registered_address")

    assert updated.email == ""
    assert not updated.HasField("registered_address")


def test_new_national_id_moves_the_lookup_and_the_birth_date(registry: Registry) -> None:
    old, new = national_id(dt.date(1990, 5, 17)), national_id(dt.date(1991, 2, 3))
    created = create(registry, new_borrower("N000000304", national_id=old))

    updated = update(registry, changes("N000000304", created.etag, national_id=new), "national_id")

    assert updated.birth_date == "1991-02-03"
    assert get(registry, national_id=new).card_number == "N000000304"
    with pytest.raises(grpc.RpcError) as raised:
        get(registry, national_id=old)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_stale_etag_is_aborted_and_changes_nothing(registry: Registry) -> None:
    created = create(registry, new_borrower("N000000305"))
    update(registry, changes("N000000305", created.etag, email="first@example.org"), "email")

    with pytest.raises(grpc.RpcError) as raised:
        update(registry, changes("N000000305", created.etag, email="second@example.org"), "email")

    assert raised.value.code() == grpc.StatusCode.ABORTED
    assert error_details(raised.value)[0] == "ETAG_MISMATCH"
    assert get(registry, card_number="N000000305").email == "first@example.org"


@pytest.mark.parametrize(
    ("fields", "paths", "violations"),
    [
        ({"email": "nope"}, ["email"], {"borrower.email"}),
        ({"given_name": ""}, ["given_name"], {"borrower.given_name"}),
        ({"national_id": "12345678900"}, ["national_id"], {"borrower.national_id"}),
        ({"birth_date": "1990-01-01"}, ["birth_date"], {"borrower.birth_date"}),
        ({"home_library": "2460100"}, ["home_library"], {"update_mask"}),
        ({"created_by": "2460100"}, ["created_by"], {"update_mask"}),
        ({}, [], {"update_mask"}),
        (
            {"email": "x@", "work_phone": "1"},
            ["email", "work_phone"],
            {"borrower.email", "borrower.work_phone"},
        ),
        (
            {
                "registered_address": borrower_pb2.Address(
                    lines=["Gate 1"], postal_code="12", city="Oslo"
                )
            },
            ["registered_address"],
            {"borrower.registered_address.postal_code"},
        ),
    ],
)
def test_bad_update_names_every_bad_field_and_changes_nothing(
    registry: Registry,
    server: ServerThread,
    fields: dict[str, object],
    paths: list[str],
    violations: set[str],
) -> None:
    created = create(registry, new_borrower("N000000306"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        update(registry, changes("N000000306", created.etag, **fields), *paths)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(error_details(raised.value)[1]) == violations
    assert get(registry, card_number="N000000306") == created
    assert count_rows(server.config.database_url) == before


def test_missing_etag_is_invalid_argument(registry: Registry) -> None:
    create(registry, new_borrower("N000000307"))

    with pytest.raises(grpc.RpcError) as raised:
        update(registry, changes("N000000307", "", email="a@example.org"), "email")

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == ["borrower.etag"]


def test_national_id_of_another_borrower_is_already_exists(registry: Registry) -> None:
    taken = national_id()
    create(registry, new_borrower("N000000308", national_id=taken))
    created = create(registry, new_borrower("N000000309"))

    with pytest.raises(grpc.RpcError) as raised:
        update(registry, changes("N000000309", created.etag, national_id=taken), "national_id")

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert get(registry, card_number="N000000309") == created


def test_unknown_borrower_is_not_found(registry: Registry) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        update(registry, changes("N999999999", '"1"', email="a@example.org"), "email")

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("library", "code", "reason"),
    [
        (BERGEN, grpc.StatusCode.PERMISSION_DENIED, "NOT_AFFILIATED"),
        (UNKNOWN_LIBRARY, grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_NOT_ALLOWED"),
        (None, grpc.StatusCode.UNAUTHENTICATED, "LIBRARY_MISSING"),
    ],
)
def test_library_that_may_not_change_the_borrower_is_refused(
    registry: Registry, library: str | None, code: grpc.StatusCode, reason: str
) -> None:
    created = create(registry, new_borrower("N000000310"))

    with pytest.raises(grpc.RpcError) as raised:
        update(
            registry.as_library(library),
            changes("N000000310", created.etag, email="a@example.org"),
            "email",
        )

    assert raised.value.code() == code
    assert error_details(raised.value)[0] == reason
    assert get(registry, card_number="N000000310") == created
