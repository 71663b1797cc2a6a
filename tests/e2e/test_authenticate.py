"""Authenticate end to end: a right PIN or password tells an auth-only caller the least it needs,
a wrong one tells nothing, and a password-only borrower's PIN opens nothing, answered as a wrong
PIN or an unknown card is."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status
from sqlalchemy import create_engine, select

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import BorrowerRow
from register_harness import (
    BERGEN,
    OSLO,
    ClientCertificates,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    count_rows,
    create,
    error_details,
    get,
    national_id,
    new_borrower,
)

PIN = "4711"
PASSWORD = "correct horse battery staple"
Authenticate = authenticate_pb2_grpc.AuthenticateStub


@pytest.fixture
def authenticate(server: ServerThread, pki: DevPkiPaths) -> Iterator[Authenticate]:
    """An Authenticate client with the ebook vendor's auth-only certificate, no library."""
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield Authenticate(channel)


def set_pin(registry: Registry, card_number: str, pin: str = PIN) -> str:
    request = pb.SetPinRequest(card_number=card_number, pin=pin)
    return registry.stub.SetPin(request, metadata=registry.metadata).etag


def set_password(registry: Registry, card_number: str, password: str = PASSWORD) -> str:
    request = pb.SetPasswordRequest(card_number=card_number, password=password)
    return registry.stub.SetPassword(request, metadata=registry.metadata).etag


def verify_pin(
    authenticate: Authenticate, card_number: str, pin: str = PIN
) -> auth_pb.AuthenticatedBorrower:
    request = auth_pb.VerifyPinRequest(card_number=card_number, pin=pin)
    return authenticate.VerifyPin(request).borrower


def verify_password(
    authenticate: Authenticate, card_number: str, password: str = PASSWORD
) -> auth_pb.AuthenticatedBorrower:
    request = auth_pb.VerifyPasswordRequest(card_number=card_number, password=password)
    return authenticate.VerifyPassword(request).borrower


def refusal(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), error_details(error)[0]


def years_before(day: dt.date, years: int) -> dt.date:
    # A multiple of 4 keeps 29 February valid (2000 was a leap year too).
    assert years % 4 == 0
    return day.replace(year=day.year - years)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_a_right_pin_tells_an_auth_only_caller_only_card_age_libraries_and_assurance(
    registry: Registry, authenticate: Authenticate
) -> None:
    nid = national_id(years_before(today(), 28))
    create(registry, new_borrower("N000001201", national_id=nid))
    registry.as_library(BERGEN).stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number="N000001201", national_id=nid),
        metadata=registry.as_library(BERGEN).metadata,
    )
    set_pin(registry, "N000001201")

    borrower = verify_pin(authenticate, "N000001201")

    assert {field.name for field, _ in borrower.ListFields()} == {
        "card_number",
        "age",
        "home_library",
        "affiliated_libraries",
        "assurance_level",
    }
    assert borrower == auth_pb.AuthenticatedBorrower(
        card_number="N000001201",
        age=28,
        home_library=OSLO,
        affiliated_libraries=[OSLO, BERGEN],
        assurance_level=auth_pb.ASSURANCE_LEVEL_PIN,
    )


def test_age_is_in_whole_years_so_a_birthday_tomorrow_makes_one_year_less(
    registry: Registry, authenticate: Authenticate
) -> None:
    birthday_today = years_before(today(), 28)
    birthday_tomorrow = years_before(today() + dt.timedelta(days=1), 28)
    create(registry, new_borrower("N000001202", national_id=national_id(birthday_today)))
    create(registry, new_borrower("N000001203", national_id=national_id(birthday_tomorrow)))
    set_pin(registry, "N000001202")
    set_pin(registry, "N000001203")

    assert verify_pin(authenticate, "N000001202").age == 28
    assert verify_pin(authenticate, "N000001203").age == 27


def test_a_library_system_may_verify_a_pin_with_its_ils_certificate(
    registry: Registry, server: ServerThread, pki: DevPkiPaths
) -> None:
    create(registry, new_borrower("N000001204"))
    set_pin(registry, "N000001204")

    with client_channel(server.target, pki) as channel:  # the ILS certificate, no metadata
        borrower = verify_pin(Authenticate(channel), "N000001204")

    assert (borrower.card_number, borrower.assurance_level) == (
        "N000001204",
        auth_pb.ASSURANCE_LEVEL_PIN,
    )


@pytest.mark.parametrize(
    ("certificate", "status", "reason"),
    [
        ("portal", grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_ALLOWED"),
        ("unregistered", grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_UNKNOWN"),
    ],
)
def test_a_certificate_without_the_auth_or_ils_role_may_not_verify_a_pin(
    registry: Registry,
    server: ServerThread,
    pki: DevPkiPaths,
    certificates: ClientCertificates,
    authenticate: Authenticate,
    certificate: str,
    status: grpc.StatusCode,
    reason: str,
) -> None:
    create(registry, new_borrower("N000001205"))
    set_pin(registry, "N000001205")
    cert, key = certificates.path(certificate)

    with (
        client_channel(server.target, pki, cert=cert, key=key) as channel,
        pytest.raises(grpc.RpcError) as raised,
    ):
        verify_pin(Authenticate(channel), "N000001205")

    assert refusal(raised.value) == (status, reason)
    # The positive control: the same request with the auth certificate.
    assert verify_pin(authenticate, "N000001205").card_number == "N000001205"


def _answer(call: Callable[[], object]) -> tuple[grpc.StatusCode, str, str, Status]:
    """Everything a refused caller learns: status, reason, message and the full details."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    status = rpc_status.from_call(raised.value)
    assert status is not None
    code, reason = refusal(raised.value)
    return code, reason, raised.value.details() or "", status


def test_wrong_pin_unknown_card_and_no_pin_get_the_same_answer(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001206"))
    set_pin(registry, "N000001206")
    create(registry, new_borrower("N000001207"))  # no PIN

    wrong_pin = _answer(lambda: verify_pin(authenticate, "N000001206", "1234"))
    unknown_card = _answer(lambda: verify_pin(authenticate, "N999999999"))
    no_pin = _answer(lambda: verify_pin(authenticate, "N000001207"))

    assert wrong_pin == unknown_card == no_pin
    assert wrong_pin[:2] == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    assert verify_pin(authenticate, "N000001206").card_number == "N000001206"


def test_wrong_password_unknown_card_and_no_password_get_the_same_answer(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001208"))
    set_password(registry, "N000001208")
    create(registry, new_borrower("N000001209"))  # no password

    wrong = _answer(lambda: verify_password(authenticate, "N000001208", "not the password"))
    unknown_card = _answer(lambda: verify_password(authenticate, "N999999999"))
    no_password = _answer(lambda: verify_password(authenticate, "N000001209"))

    assert wrong == unknown_card == no_password
    assert wrong[:2] == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


@pytest.mark.parametrize(
    ("rpc", "card_number", "secret", "field"),
    [
        ("VerifyPin", "N12", PIN, "card_number"),
        ("VerifyPin", "", PIN, "card_number"),
        ("VerifyPin", "N000001210", "123", "pin"),
        ("VerifyPin", "N000001210", "123456789", "pin"),
        ("VerifyPin", "N000001210", "12a4", "pin"),
        ("VerifyPin", "N000001210", "", "pin"),
        ("VerifyPassword", "N12", PASSWORD, "card_number"),
        ("VerifyPassword", "N000001210", "sevench", "password"),
        ("VerifyPassword", "N000001210", "p" * 129, "password"),
        ("VerifyPassword", "N000001210", "hunter2\x1bhunter2", "password"),
        ("VerifyPassword", "N000001210", "", "password"),
    ],
)
def test_a_malformed_request_is_invalid_argument_naming_the_field(
    registry: Registry,
    server: ServerThread,
    authenticate: Authenticate,
    rpc: str,
    card_number: str,
    secret: str,
    field: str,
) -> None:
    create(registry, new_borrower("N000001210"))
    set_pin(registry, "N000001210")
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        if rpc == "VerifyPin":
            verify_pin(authenticate, card_number, secret)
        else:
            verify_password(authenticate, card_number, secret)

    assert refusal(raised.value) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert list(error_details(raised.value)[1]) == [field]
    if field != "card_number" and secret:
        assert secret not in (raised.value.details() or "")
    assert count_rows(server.config.database_url) == before  # no failure counted
    assert verify_pin(authenticate, "N000001210").card_number == "N000001210"


def test_a_right_password_authenticates_at_the_password_level_and_a_wrong_one_does_not(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001211"))
    set_password(registry, "N000001211")

    borrower = verify_password(authenticate, "N000001211")

    assert (borrower.card_number, borrower.home_library, borrower.assurance_level) == (
        "N000001211",
        OSLO,
        auth_pb.ASSURANCE_LEVEL_PASSWORD,
    )
    with pytest.raises(grpc.RpcError) as raised:
        verify_password(authenticate, "N000001211", "correct horse battery stapler")
    assert refusal(raised.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


def test_a_password_only_borrowers_right_pin_is_answered_as_a_wrong_pin_or_an_unknown_card(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001212"))
    set_pin(registry, "N000001212")
    etag = set_password(registry, "N000001212")
    assert verify_pin(authenticate, "N000001212").card_number == "N000001212"

    registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number="N000001212",
                etag=etag,
                security_level=borrower_pb2.SECURITY_LEVEL_PASSWORD,
            ),
            update_mask=FieldMask(paths=["security_level"]),
        ),
        metadata=registry.metadata,
    )

    right_pin = _answer(lambda: verify_pin(authenticate, "N000001212"))
    wrong_pin = _answer(lambda: verify_pin(authenticate, "N000001212", "1234"))
    unknown_card = _answer(lambda: verify_pin(authenticate, "N999999998"))

    assert right_pin == wrong_pin == unknown_card
    assert right_pin[:2] == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
    borrower = verify_password(authenticate, "N000001212")
    assert borrower.assurance_level == auth_pb.ASSURANCE_LEVEL_PASSWORD


def test_a_password_only_borrowers_pin_logins_lock_as_an_unknown_cards_do(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(
        registry,
        new_borrower("N000001216", security_level=borrower_pb2.SECURITY_LEVEL_PASSWORD),
    )
    set_pin(registry, "N000001216")
    set_password(registry, "N000001216")

    answers = {
        card: [_answer(functools.partial(verify_pin, authenticate, card)) for _ in range(6)]
        for card in ("N000001216", "N999999997")
    }

    # The right PIN, five times and a sixth, gets what an unknown card gets: five refusals
    # as wrong, then the lockout.
    assert [a[:2] for a in answers["N000001216"]] == [a[:2] for a in answers["N999999997"]]
    assert [a[:2] for a in answers["N000001216"]] == [
        *[(grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")] * 5,
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_LOCKED"),
    ]
    # The password is another way of logging in, with a lockout of its own.
    assert verify_password(authenticate, "N000001216").card_number == "N000001216"


def test_an_expired_card_is_refused_after_the_right_secret_and_only_then(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001215", card_expiry_date=today().isoformat()))
    set_pin(registry, "N000001215")
    etag = set_password(registry, "N000001215")
    assert verify_pin(authenticate, "N000001215").card_number == "N000001215"  # its last day

    yesterday = (today() - dt.timedelta(days=1)).isoformat()
    registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number="N000001215", etag=etag, card_expiry_date=yesterday
            ),
            update_mask=FieldMask(paths=["card_expiry_date"]),
        ),
        metadata=registry.metadata,
    )

    logins: list[Callable[[], auth_pb.AuthenticatedBorrower]] = [
        lambda: verify_pin(authenticate, "N000001215"),
        lambda: verify_password(authenticate, "N000001215"),
    ]
    for login in logins:
        with pytest.raises(grpc.RpcError) as expired:
            login()
        assert refusal(expired.value) == (grpc.StatusCode.PERMISSION_DENIED, "CARD_EXPIRED")
    with pytest.raises(grpc.RpcError) as wrong_pin:
        verify_pin(authenticate, "N000001215", "1234")
    assert refusal(wrong_pin.value) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


def test_a_successful_login_marks_the_borrower_active_today_without_a_new_etag(
    registry: Registry, authenticate: Authenticate
) -> None:
    create(registry, new_borrower("N000001213"))
    etag = set_pin(registry, "N000001213")
    assert get(registry, card_number="N000001213").last_active_on == ""
    with pytest.raises(grpc.RpcError):
        verify_pin(authenticate, "N000001213", "1234")
    assert get(registry, card_number="N000001213").last_active_on == ""

    verify_pin(authenticate, "N000001213")

    found = get(registry, card_number="N000001213")
    assert found.last_active_on == today().isoformat()
    assert found.etag == etag


def stored_password_verifier(database_url: str, card_number: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(BorrowerRow.password_verifier).where(BorrowerRow.card_number == card_number)
            ).scalar_one()
    finally:
        engine.dispose()


def test_a_raised_password_cost_rehashes_the_password_at_its_next_login(
    servers: Servers, pki: DevPkiPaths
) -> None:
    first = servers.start(password_iterations=210_000)
    with client_channel(first.target, pki) as channel:
        oslo = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        oslo = oslo.as_library(OSLO)
        create(oslo, new_borrower("N000001214"))
        etag = set_password(oslo, "N000001214")
    url = first.config.database_url
    assert (stored_password_verifier(url, "N000001214") or "").startswith("pbkdf2-sha512$210000$")
    servers.stop(first)

    second = servers.start(password_iterations=220_000)
    with client_channel(second.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        borrower = verify_password(Authenticate(channel), "N000001214")

    assert borrower.card_number == "N000001214"
    assert (stored_password_verifier(url, "N000001214") or "").startswith("pbkdf2-sha512$220000$")
    with client_channel(second.target, pki) as channel:
        oslo = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(channel), OSLO)
        assert get(oslo.as_library(OSLO), card_number="N000001214").etag == etag
