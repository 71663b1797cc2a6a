"""SetPin and SetPassword end to end: an affiliated library sets a borrower's secret, which is
then stored only as a verifier, never echoed, and ends a lockout of that way of logging in."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_status import rpc_status

from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    BERGEN,
    Registry,
    ServerThread,
    client_channel,
    count_rows,
    create,
    error_details,
    get,
    new_borrower,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def authenticate(
    server: ServerThread, pki: DevPkiPaths
) -> Iterator[authenticate_pb2_grpc.AuthenticateStub]:
    """An Authenticate client with the ebook vendor's auth-only certificate."""
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield authenticate_pb2_grpc.AuthenticateStub(channel)


def set_pin(registry: Registry, card_number: str, pin: str) -> str:
    request = pb.SetPinRequest(card_number=card_number, pin=pin)
    return registry.stub.SetPin(request, metadata=registry.metadata).etag


def set_password(registry: Registry, card_number: str, password: str) -> str:
    request = pb.SetPasswordRequest(card_number=card_number, password=password)
    return registry.stub.SetPassword(request, metadata=registry.metadata).etag


def verify_pin(
    authenticate: authenticate_pb2_grpc.AuthenticateStub, card_number: str, pin: str
) -> authenticate_pb2.AuthenticatedBorrower:
    request = authenticate_pb2.VerifyPinRequest(card_number=card_number, pin=pin)
    return authenticate.VerifyPin(request).borrower


def test_a_set_pin_shows_in_the_full_view_with_the_new_etag(registry: Registry) -> None:
    created = create(registry, new_borrower("N000001101"))
    assert not created.has_pin

    etag = set_pin(registry, "N000001101", "4711")

    found = get(registry, card_number="N000001101")
    assert found.has_pin
    assert not found.has_password
    assert found.etag == etag
    assert etag != created.etag


def test_a_set_password_shows_in_the_full_view_with_the_new_etag(registry: Registry) -> None:
    created = create(registry, new_borrower("N000001102"))
    assert not created.has_password

    etag = set_password(registry, "N000001102", PASSWORD)

    found = get(registry, card_number="N000001102")
    assert found.has_password
    assert not found.has_pin
    assert found.etag == etag
    assert etag != created.etag


def test_a_new_pin_replaces_the_old_one(
    registry: Registry, authenticate: authenticate_pb2_grpc.AuthenticateStub
) -> None:
    create(registry, new_borrower("N000001103"))
    set_pin(registry, "N000001103", "4711")

    set_pin(registry, "N000001103", "80808080")

    assert verify_pin(authenticate, "N000001103", "80808080").card_number == "N000001103"
    with pytest.raises(grpc.RpcError) as raised:
        verify_pin(authenticate, "N000001103", "4711")
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _assert_refused_without_echo(error: grpc.RpcError, field: str, secret: str) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, violations = error_details(error)
    assert (reason, list(violations)) == ("INVALID_ARGUMENT", [field])
    if secret:
        status = rpc_status.from_call(error)
        assert status is not None
        assert secret not in (error.details() or "")
        assert secret.encode() not in status.SerializeToString()


@pytest.mark.parametrize(
    "pin",
    ["123", "123456789", "12a4", "", "١٢٣٤"],
    ids=["3 digits", "9 digits", "a letter", "empty", "arabic-indic digits"],
)
def test_a_bad_pin_is_refused_naming_the_field_without_echo_and_changes_nothing(
    registry: Registry, server: ServerThread, pin: str
) -> None:
    created = create(registry, new_borrower("N000001104"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        set_pin(registry, "N000001104", pin)

    _assert_refused_without_echo(raised.value, "pin", pin)
    assert count_rows(server.config.database_url) == before
    found = get(registry, card_number="N000001104")
    assert (found.has_pin, found.etag) == (False, created.etag)
    # The positive control: a good PIN for the same borrower is taken.
    set_pin(registry, "N000001104", "1234")


@pytest.mark.parametrize(
    "password",
    ["sevench", "p" * 129, "hunter2\x1bhunter2", ""],
    ids=["7 characters", "129 characters", "a control character", "empty"],
)
def test_a_bad_password_is_refused_naming_the_field_without_echo_and_changes_nothing(
    registry: Registry, server: ServerThread, password: str
) -> None:
    created = create(registry, new_borrower("N000001105"))
    before = count_rows(server.config.database_url)

    with pytest.raises(grpc.RpcError) as raised:
        set_password(registry, "N000001105", password)

    _assert_refused_without_echo(raised.value, "password", password)
    assert count_rows(server.config.database_url) == before
    found = get(registry, card_number="N000001105")
    assert (found.has_password, found.etag) == (False, created.etag)


def test_passwords_of_8_and_128_characters_are_taken(registry: Registry) -> None:
    create(registry, new_borrower("N000001106"))

    set_password(registry, "N000001106", "eightch!")
    set_password(registry, "N000001106", "p" * 128)

    assert get(registry, card_number="N000001106").has_password


@pytest.mark.parametrize("rpc", ["SetPin", "SetPassword"])
def test_setting_a_secret_for_an_unknown_card_is_not_found(registry: Registry, rpc: str) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        if rpc == "SetPin":
            set_pin(registry, "N999999999", "4711")
        else:
            set_password(registry, "N999999999", PASSWORD)

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_details(raised.value)[0] == "NOT_FOUND"


@pytest.mark.parametrize("rpc", ["SetPin", "SetPassword"])
def test_an_unaffiliated_library_may_not_set_a_secret(
    registry: Registry, server: ServerThread, rpc: str
) -> None:
    created = create(registry, new_borrower("N000001107"))
    bergen = registry.as_library(BERGEN)

    def set_secret(library: Registry) -> str:
        if rpc == "SetPin":
            return set_pin(library, "N000001107", "4711")
        return set_password(library, "N000001107", PASSWORD)

    with pytest.raises(grpc.RpcError) as raised:
        set_secret(bergen)

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(raised.value)[0] == "NOT_AFFILIATED"
    found = get(registry, card_number="N000001107")
    assert (found.has_pin, found.has_password, found.etag) == (False, False, created.etag)
    # The positive control: the affiliated library may.
    assert set_secret(registry) == get(registry, card_number="N000001107").etag


def test_setting_a_new_pin_ends_a_pin_lockout(
    registry: Registry, authenticate: authenticate_pb2_grpc.AuthenticateStub
) -> None:
    create(registry, new_borrower("N000001108"))
    set_pin(registry, "N000001108", "4711")
    for _ in range(5):
        with pytest.raises(grpc.RpcError):
            verify_pin(authenticate, "N000001108", "0000")
    with pytest.raises(grpc.RpcError) as raised:
        verify_pin(authenticate, "N000001108", "4711")
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_details(raised.value)[0] == "LOGIN_LOCKED"

    set_pin(registry, "N000001108", "2468")

    assert verify_pin(authenticate, "N000001108", "2468").card_number == "N000001108"


def test_the_basic_view_never_tells_whether_a_borrower_has_a_pin(registry: Registry) -> None:
    create(registry, new_borrower("N000001109"))
    set_pin(registry, "N000001109", "4711")
    set_password(registry, "N000001109", PASSWORD)

    basic = get(registry.as_library(BERGEN), card_number="N000001109")

    assert basic.view == borrower_pb2.BORROWER_VIEW_BASIC
    assert (basic.has_pin, basic.has_password) == (False, False)
