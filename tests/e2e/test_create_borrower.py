"""CreateBorrower end to end: a real server over mTLS on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.domain.national_id import make_fodselsnummer
from register_harness import (
    BERGEN,
    DISABLED_LIBRARY,
    OSLO,
    UNKNOWN_LIBRARY,
    Registry,
    ServerThread,
    count_rows,
    create,
    error_details,
    national_id,
    new_borrower,
)


def test_created_borrower_is_returned_in_full_view_with_the_library_as_home(
    registry: Registry,
) -> None:
    created = create(
        registry,
        new_borrower(
            "N000000101",
            national_id=national_id(dt.date(1990, 5, 17)),
            sex=borrower_pb2.SEX_FEMALE,
            home_phone="22 33 44 55",
        ),
    )

    assert created.card_number == "N000000101"
    assert (created.given_name, created.family_name) == ("Kari", "Nordmann")
    assert created.birth_date == "1990-05-17"
    assert created.birth_year == 1990
    assert created.sex == borrower_pb2.SEX_FEMALE
    assert created.email == "kari@example.org"
    assert created.mobile_phone == "+4791234567"
    assert created.home_phone == "+4722334455"
    assert list(created.registered_address.lines) == ["Storgata 1"]
    assert created.registered_address.country_code == "NO"
    assert created.home_library == OSLO
    assert [a.library_number for a in created.affiliations] == [OSLO]
    assert created.created_by == OSLO
    assert created.last_changed_by == OSLO
    assert created.create_time.seconds > 0
    assert created.etag
    assert created.view == borrower_pb2.BORROWER_VIEW_FULL
    assert created.national_id == ""


def test_created_borrower_can_be_read_back(registry: Registry) -> None:
    create(registry, new_borrower("N000000102"))

    read = registry.stub.GetBorrower(
        pb.GetBorrowerRequest(card_number="N000000102"), metadata=registry.metadata
    ).borrower

    assert read.card_number == "N000000102"
    assert read.email == "kari@example.org"


def test_every_bad_field_is_named_and_nothing_is_written(
    registry: Registry, server: ServerThread
) -> None:
    before = count_rows(server.config.database_url)
    bad = borrower_pb2.Borrower(
        card_number="X12",
        given_name="K4ri",
        family_name="",
        national_id="12345678901",
        email="not-an-email",
        mobile_phone="12",
        work_phone="abc",
        registered_address=borrower_pb2.Address(
            lines=["Storgata 1"], postal_code="12", city="Oslo"
        ),
    )

    with pytest.raises(grpc.RpcError) as raised:
        create(registry, bad)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(raised.value)
    assert reason == "INVALID_ARGUMENT"
    assert set(violations) == {
        "borrower.card_number",
        "borrower.given_name",
        "borrower.family_name",
        "borrower.national_id",
        "borrower.email",
        "borrower.mobile_phone",
        "borrower.work_phone",
        "borrower.registered_address.postal_code",
    }
    assert count_rows(server.config.database_url) == before


@pytest.mark.parametrize(
    ("field", "value", "violation"),
    [
        ("card_number", "N12345678", "borrower.card_number"),
        ("card_number", "", "borrower.card_number"),
        ("national_id", "", "borrower.national_id"),
        ("given_name", "Kari\n", "borrower.given_name"),
        ("family_name", "x" * 101, "borrower.family_name"),
        ("birth_date", "1991-01-01", "borrower.birth_date"),
        ("birth_date", "17.05.1990", "borrower.birth_date"),
        ("email", "kari@", "borrower.email"),
        ("home_phone", "+47 1", "borrower.home_phone"),
    ],
)
def test_one_bad_field_is_named(
    registry: Registry, server: ServerThread, field: str, value: str, violation: str
) -> None:
    before = count_rows(server.config.database_url)
    borrower = new_borrower("N000000103", national_id=national_id(dt.date(1990, 5, 17)))
    setattr(borrower, field, value)

    with pytest.raises(grpc.RpcError) as raised:
        create(registry, borrower)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error_details(raised.value)[1]) == [violation]
    assert count_rows(server.config.database_url) == before


def test_duf_number_needs_a_birth_date(registry: Registry) -> None:
    duf = "201212345603"  # year 2012, serial 123456, check digits 03

    with pytest.raises(grpc.RpcError) as raised:
        create(registry, new_borrower("N000000104", national_id=duf))

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(raised.value)[1] == {
        "borrower.birth_date": "is required with a DUF number"
    }
    created = create(registry, new_borrower("N000000104", national_id=duf, birth_date="1988-02-29"))
    assert created.birth_date == "1988-02-29"


def test_real_national_id_is_accepted(registry: Registry) -> None:
    created = create(
        registry,
        new_borrower("N000000105", national_id=make_fodselsnummer(dt.date(1970, 1, 31), 7)),
    )

    assert created.birth_date == "1970-01-31"


def test_duplicate_card_number_is_already_exists(registry: Registry, server: ServerThread) -> None:
    create(registry, new_borrower("N000000106"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        create(registry, new_borrower("N000000106"))

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_details(raised.value)[0] == "CARD_NUMBER_IN_USE"
    assert count_rows(server.config.database_url) == before


def test_duplicate_national_id_is_already_exists(registry: Registry, server: ServerThread) -> None:
    same = national_id()
    create(registry, new_borrower("N000000107", national_id=same))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        create(registry.as_library(BERGEN), new_borrower("N000000108", national_id=same))

    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_details(raised.value)[0] == "NATIONAL_ID_IN_USE"
    assert count_rows(server.config.database_url) == before


def test_retired_card_number_is_refused(registry: Registry) -> None:
    create(registry, new_borrower("N000000109"))
    registry.stub.DeleteBorrower(
        pb.DeleteBorrowerRequest(
            card_number="N000000109", reason=borrower_pb2.DELETION_REASON_BORROWER_REQUEST
        ),
        metadata=registry.metadata,
    )

    with pytest.raises(grpc.RpcError) as raised:
        create(registry, new_borrower("N000000109"))

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_details(raised.value)[0] == "CARD_NUMBER_RETIRED"


@pytest.mark.parametrize(
    ("library", "code", "reason"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED, "LIBRARY_MISSING"),
        ("123", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        (UNKNOWN_LIBRARY, grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_NOT_ALLOWED"),
        (DISABLED_LIBRARY, grpc.StatusCode.PERMISSION_DENIED, "LIBRARY_NOT_ALLOWED"),
    ],
)
def test_caller_without_an_active_library_cannot_create(
    registry: Registry,
    server: ServerThread,
    library: str | None,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        create(registry.as_library(library), new_borrower("N000000110"))

    assert raised.value.code() == code
    assert error_details(raised.value)[0] == reason
    assert count_rows(server.config.database_url) == before
