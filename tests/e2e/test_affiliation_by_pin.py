"""AffiliateBorrower by birth date and PIN: the person at the desk proves who they are by what
they know; a wrong PIN given this way counts towards the PIN lockout like one at login, and the
PIN of a borrower who logs in with a password only proves nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    BERGEN,
    OSLO,
    Registry,
    ServerThread,
    client_channel,
    count_rows,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
)

BIRTH_DATE = dt.date(1985, 3, 9)
PIN = "4711"
Authenticate = authenticate_pb2_grpc.AuthenticateStub


@pytest.fixture
def authenticate(server: ServerThread, pki: DevPkiPaths) -> Iterator[Authenticate]:
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield Authenticate(channel)


def borrower_with_pin(registry: Registry, card_number: str, pin: str | None = PIN) -> None:
    """Created by Oslo (home and only affiliation), born on BIRTH_DATE."""
    create(registry, new_borrower(card_number, national_id=national_id(BIRTH_DATE)))
    if pin is not None:
        request = pb.SetPinRequest(card_number=card_number, pin=pin)
        registry.stub.SetPin(request, metadata=registry.metadata)


def affiliate(
    registry: Registry, card_number: str, birth_date: str = BIRTH_DATE.isoformat(), pin: str = PIN
) -> borrower_pb2.Borrower:
    request = pb.AffiliateBorrowerRequest(
        card_number=card_number,
        birth_date_and_pin=pb.BirthDateAndPin(birth_date=birth_date, pin=pin),
    )
    return registry.stub.AffiliateBorrower(request, metadata=registry.metadata).borrower


def refusal(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), error_details(error)[0]


PROOF_MISMATCH = (grpc.StatusCode.PERMISSION_DENIED, "AFFILIATION_PROOF_MISMATCH")
LOGIN_LOCKED = (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_LOCKED")


def affiliations(registry: Registry, card_number: str) -> list[str]:
    """The borrower's affiliated libraries, as the home library (Oslo) sees them."""
    return [a.library_number for a in get(registry, card_number=card_number).affiliations]


def test_right_birth_date_and_pin_affiliate_the_library_and_show_the_full_view(
    registry: Registry,
) -> None:
    borrower_with_pin(registry, "N000001401")
    bergen = registry.as_library(BERGEN)

    affiliated = affiliate(bergen, "N000001401")

    assert affiliated.view == borrower_pb2.BORROWER_VIEW_FULL
    assert [a.library_number for a in affiliated.affiliations] == [OSLO, BERGEN]
    assert (affiliated.birth_date, affiliated.email) == ("1985-03-09", "kari@example.org")
    assert get(bergen, card_number="N000001401").view == borrower_pb2.BORROWER_VIEW_FULL


@pytest.mark.parametrize(
    ("birth_date", "pin"),
    [
        (BIRTH_DATE.isoformat(), "4712"),
        ("1985-03-10", PIN),
        ("1985-03-10", "4712"),
    ],
    ids=["wrong pin", "wrong birth date", "both wrong"],
)
def test_a_wrong_pin_or_birth_date_is_refused_and_affiliates_nothing(
    registry: Registry, birth_date: str, pin: str
) -> None:
    borrower_with_pin(registry, "N000001402")
    bergen = registry.as_library(BERGEN)

    with pytest.raises(grpc.RpcError) as raised:
        affiliate(bergen, "N000001402", birth_date, pin)

    assert refusal(raised.value) == PROOF_MISMATCH
    assert PIN not in (raised.value.details() or "")
    assert get(bergen, card_number="N000001402").view == borrower_pb2.BORROWER_VIEW_BASIC
    assert affiliations(registry, "N000001402") == [OSLO]
    # The positive control: the right proof from the same library.
    assert [a.library_number for a in affiliate(bergen, "N000001402").affiliations] == [
        OSLO,
        BERGEN,
    ]


def test_a_borrower_without_a_pin_cannot_be_proven_by_one(registry: Registry) -> None:
    borrower_with_pin(registry, "N000001403", pin=None)

    with pytest.raises(grpc.RpcError) as raised:
        affiliate(registry.as_library(BERGEN), "N000001403")

    assert refusal(raised.value) == PROOF_MISMATCH
    assert affiliations(registry, "N000001403") == [OSLO]


def test_wrong_pins_given_as_proof_lock_pin_logins(
    registry: Registry, authenticate: Authenticate
) -> None:
    borrower_with_pin(registry, "N000001404")
    bergen = registry.as_library(BERGEN)
    for _ in range(5):
        with pytest.raises(grpc.RpcError) as raised:
            affiliate(bergen, "N000001404", pin="0000")
        assert refusal(raised.value) == PROOF_MISMATCH

    with pytest.raises(grpc.RpcError) as login:
        authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number="N000001404", pin=PIN))
    assert refusal(login.value) == LOGIN_LOCKED
    # While locked, the right proof by PIN is refused as well.
    with pytest.raises(grpc.RpcError) as proof:
        affiliate(bergen, "N000001404")
    assert refusal(proof.value) == LOGIN_LOCKED
    assert affiliations(registry, "N000001404") == [OSLO]


def test_a_password_only_borrowers_right_pin_is_refused_as_a_wrong_one_and_counted(
    registry: Registry, authenticate: Authenticate
) -> None:
    borrower_with_pin(registry, "N000001407")
    registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number="N000001407",
                etag=get(registry, card_number="N000001407").etag,
                security_level=borrower_pb2.SECURITY_LEVEL_PASSWORD,
            ),
            update_mask=FieldMask(paths=["security_level"]),
        ),
        metadata=registry.metadata,
    )
    bergen = registry.as_library(BERGEN)

    answers = []
    for pin in (PIN, "0000", PIN, PIN, PIN):
        with pytest.raises(grpc.RpcError) as raised:
            affiliate(bergen, "N000001407", pin=pin)
        answers.append((*refusal(raised.value), raised.value.details()))

    assert len(set(answers)) == 1
    assert answers[0][:2] == PROOF_MISMATCH
    assert affiliations(registry, "N000001407") == [OSLO]
    # Five such proofs were five failures of the PIN: now locked, as after five wrong PINs.
    with pytest.raises(grpc.RpcError) as proof:
        affiliate(bergen, "N000001407")
    assert refusal(proof.value) == LOGIN_LOCKED


def test_a_right_proof_starts_the_count_of_wrong_pins_again(
    registry: Registry, authenticate: Authenticate
) -> None:
    borrower_with_pin(registry, "N000001405")
    bergen = registry.as_library(BERGEN)
    for _ in range(4):
        with pytest.raises(grpc.RpcError):
            affiliate(bergen, "N000001405", pin="0000")
    affiliate(bergen, "N000001405")
    for _ in range(4):
        with pytest.raises(grpc.RpcError) as raised:
            authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number="N000001405", pin="0000"))
        assert refusal(raised.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")

    response = authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number="N000001405", pin=PIN))

    assert list(response.borrower.affiliated_libraries) == [OSLO, BERGEN]


@pytest.mark.parametrize(
    ("birth_date", "pin", "fields"),
    [
        ("", PIN, ["birth_date_and_pin.birth_date"]),
        ("09.03.1985", PIN, ["birth_date_and_pin.birth_date"]),
        ("1985-02-30", PIN, ["birth_date_and_pin.birth_date"]),
        ("2999-01-01", PIN, ["birth_date_and_pin.birth_date"]),
        (BIRTH_DATE.isoformat(), "", ["birth_date_and_pin.pin"]),
        (BIRTH_DATE.isoformat(), "471", ["birth_date_and_pin.pin"]),
        (BIRTH_DATE.isoformat(), "47a1", ["birth_date_and_pin.pin"]),
        (BIRTH_DATE.isoformat(), "123456789", ["birth_date_and_pin.pin"]),
        ("", "", ["birth_date_and_pin.birth_date", "birth_date_and_pin.pin"]),
    ],
)
def test_a_malformed_proof_names_the_bad_field_and_changes_nothing(
    registry: Registry, server: ServerThread, birth_date: str, pin: str, fields: list[str]
) -> None:
    borrower_with_pin(registry, "N000001406")
    bergen = registry.as_library(BERGEN)
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        affiliate(bergen, "N000001406", birth_date, pin)

    assert refusal(raised.value) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert sorted(error_details(raised.value)[1]) == fields
    if pin:
        assert pin not in (raised.value.details() or "")
    assert count_rows(server.config.database_url) == before  # no wrong PIN counted either
    assert get(bergen, card_number="N000001406").view == borrower_pb2.BORROWER_VIEW_BASIC


def test_an_expired_cards_right_pin_proves_nothing_as_at_login(
    registry: Registry, authenticate: Authenticate
) -> None:
    identity_number = national_id(BIRTH_DATE)
    create(registry, new_borrower("N000001409", national_id=identity_number))
    registry.stub.SetPin(
        pb.SetPinRequest(card_number="N000001409", pin=PIN), metadata=registry.metadata
    )
    read = get(registry, card_number="N000001409")
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number="N000001409", etag=read.etag, card_expiry_date=yesterday
            ),
            update_mask=FieldMask(paths=["card_expiry_date"]),
        ),
        metadata=registry.metadata,
    )
    bergen = registry.as_library(BERGEN)

    with pytest.raises(grpc.RpcError) as by_proof:
        affiliate(bergen, "N000001409")
    with pytest.raises(grpc.RpcError) as at_login:
        authenticate.VerifyPin(auth_pb.VerifyPinRequest(card_number="N000001409", pin=PIN))

    expired = (grpc.StatusCode.PERMISSION_DENIED, "CARD_EXPIRED")
    assert refusal(by_proof.value) == expired
    assert refusal(at_login.value) == expired
    assert affiliations(registry, "N000001409") == [OSLO]
    # The positive control: the national id still proves the borrower, expired card or not.
    proven = registry.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number="N000001409", national_id=identity_number),
        metadata=bergen.metadata,
    ).borrower
    assert [a.library_number for a in proven.affiliations] == [OSLO, BERGEN]
