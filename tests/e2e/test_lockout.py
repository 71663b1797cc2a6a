"""Lockout end to end: wrong PINs (or passwords) in a row lock that way of logging in for a
while, longer each time; the lock outlives a restart and is audited."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import pytest

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc
from nlr_server.crypto.keyring import Keyring
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    OSLO,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    create,
    error_details,
    new_borrower,
    retry_delay_seconds,
    wait_for_audit,
)

PIN = "4711"
WRONG_PIN = "0000"
PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "not the password"
Authenticate = authenticate_pb2_grpc.AuthenticateStub


@contextmanager
def clients(server: ServerThread, pki: DevPkiPaths) -> Iterator[tuple[Registry, Authenticate]]:
    """A registry client acting for Oslo, and an Authenticate client with the auth certificate."""
    with (
        client_channel(server.target, pki) as ils,
        client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as auth,
    ):
        registry = Registry(registry_service_pb2_grpc.BorrowerRegistryStub(ils), OSLO)
        yield registry.as_library(OSLO), Authenticate(auth)


@pytest.fixture
def authenticate(server: ServerThread, pki: DevPkiPaths) -> Iterator[Authenticate]:
    with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
        yield Authenticate(channel)


def borrower_with_pin(registry: Registry, card_number: str) -> None:
    create(registry, new_borrower(card_number))
    registry.stub.SetPin(
        pb.SetPinRequest(card_number=card_number, pin=PIN), metadata=registry.metadata
    )


def set_password(registry: Registry, card_number: str) -> None:
    request = pb.SetPasswordRequest(card_number=card_number, password=PASSWORD)
    registry.stub.SetPassword(request, metadata=registry.metadata)


def verify_pin(authenticate: Authenticate, card_number: str, pin: str = PIN) -> str:
    request = auth_pb.VerifyPinRequest(card_number=card_number, pin=pin)
    return authenticate.VerifyPin(request).borrower.card_number


def verify_password(authenticate: Authenticate, card_number: str, password: str = PASSWORD) -> str:
    request = auth_pb.VerifyPasswordRequest(card_number=card_number, password=password)
    return authenticate.VerifyPassword(request).borrower.card_number


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def refusal(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), error_details(error)[0]


CREDENTIALS_INVALID = (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")
LOGIN_LOCKED = (grpc.StatusCode.RESOURCE_EXHAUSTED, "LOGIN_LOCKED")


def fail_pins(authenticate: Authenticate, card_number: str, times: int) -> None:
    for _ in range(times):
        error = refused(lambda: verify_pin(authenticate, card_number, WRONG_PIN))
        assert refusal(error) == CREDENTIALS_INVALID


def test_five_wrong_pins_lock_out_even_the_right_pin_for_the_configured_time(
    registry: Registry, authenticate: Authenticate
) -> None:
    borrower_with_pin(registry, "N000001301")
    borrower_with_pin(registry, "N000001302")
    fail_pins(authenticate, "N000001301", 5)

    locked = refused(lambda: verify_pin(authenticate, "N000001301"))

    assert refusal(locked) == LOGIN_LOCKED
    assert 890 < retry_delay_seconds(locked) <= 900  # NLR_LOCKOUT_SECONDS of the test server
    # Another borrower's logins are not affected.
    assert verify_pin(authenticate, "N000001302") == "N000001302"


def test_a_lockout_ends_by_itself_and_pins_tried_meanwhile_do_not_count(
    servers: Servers, pki: DevPkiPaths
) -> None:
    server = servers.start(lockout_seconds=1.0)
    with clients(server, pki) as (registry, authenticate):
        borrower_with_pin(registry, "N000001303")
        fail_pins(authenticate, "N000001303", 5)
        for pin in (PIN, WRONG_PIN, WRONG_PIN):
            error = refused(functools.partial(verify_pin, authenticate, "N000001303", pin))
            assert refusal(error) == LOGIN_LOCKED

        time.sleep(1.2)

        # Had the two wrong PINs during the lock counted, the third of these would lock again.
        fail_pins(authenticate, "N000001303", 4)
        assert verify_pin(authenticate, "N000001303") == "N000001303"


def test_restarting_the_server_does_not_end_a_lockout(servers: Servers, pki: DevPkiPaths) -> None:
    first = servers.start()
    with clients(first, pki) as (registry, authenticate):
        borrower_with_pin(registry, "N000001304")
        borrower_with_pin(registry, "N000001305")
        fail_pins(authenticate, "N000001304", 5)
    servers.stop(first)

    second = servers.start()
    with clients(second, pki) as (_, authenticate):
        locked = refused(lambda: verify_pin(authenticate, "N000001304"))
        assert refusal(locked) == LOGIN_LOCKED
        assert 880 < retry_delay_seconds(locked) <= 900
        # The positive control: the new server lets an unlocked borrower in.
        assert verify_pin(authenticate, "N000001305") == "N000001305"


def test_pin_and_password_lockouts_are_separate(servers: Servers, pki: DevPkiPaths) -> None:
    server = servers.start(lockout_failures=2)
    with clients(server, pki) as (registry, authenticate):
        borrower_with_pin(registry, "N000001306")
        set_password(registry, "N000001306")
        borrower_with_pin(registry, "N000001307")
        set_password(registry, "N000001307")

        fail_pins(authenticate, "N000001306", 2)
        assert refusal(refused(lambda: verify_pin(authenticate, "N000001306"))) == LOGIN_LOCKED
        assert verify_password(authenticate, "N000001306") == "N000001306"

        for _ in range(2):
            error = refused(lambda: verify_password(authenticate, "N000001307", WRONG_PASSWORD))
            assert refusal(error) == CREDENTIALS_INVALID
        assert refusal(refused(lambda: verify_password(authenticate, "N000001307"))) == (
            LOGIN_LOCKED
        )
        assert verify_pin(authenticate, "N000001307") == "N000001307"


def test_each_lockout_lasts_twice_as_long_as_the_one_before(
    servers: Servers, pki: DevPkiPaths
) -> None:
    server = servers.start(lockout_seconds=1.0)
    with clients(server, pki) as (registry, authenticate):
        borrower_with_pin(registry, "N000001308")
        fail_pins(authenticate, "N000001308", 5)
        first = retry_delay_seconds(refused(lambda: verify_pin(authenticate, "N000001308")))
        time.sleep(first + 0.1)
        fail_pins(authenticate, "N000001308", 5)

        locked_again = refused(lambda: verify_pin(authenticate, "N000001308"))

    assert refusal(locked_again) == LOGIN_LOCKED
    second = retry_delay_seconds(locked_again)
    assert 0.8 < first <= 1.0
    assert 1.8 < second <= 2.0


def test_a_success_starts_the_count_of_wrong_pins_again(
    registry: Registry, authenticate: Authenticate
) -> None:
    borrower_with_pin(registry, "N000001309")
    fail_pins(authenticate, "N000001309", 4)
    assert verify_pin(authenticate, "N000001309") == "N000001309"

    fail_pins(authenticate, "N000001309", 4)

    assert verify_pin(authenticate, "N000001309") == "N000001309"


def test_the_failure_that_locks_and_the_refusal_after_it_are_audited(
    registry: Registry, authenticate: Authenticate, server: ServerThread, keyring: Keyring
) -> None:
    borrower_with_pin(registry, "N000001310")
    fail_pins(authenticate, "N000001310", 5)
    refused(lambda: verify_pin(authenticate, "N000001310"))

    events = wait_for_audit(server.config.database_url, keyring, "N000001310", 8)

    assert [(e.rpc, e.outcome, e.reason) for e in events] == [
        ("CreateBorrower", "OK", None),
        ("SetPin", "OK", None),
        *[("VerifyPin", "UNAUTHENTICATED", "CREDENTIALS_INVALID")] * 4,
        ("VerifyPin", "UNAUTHENTICATED", "LOCKED_OUT"),
        ("VerifyPin", "RESOURCE_EXHAUSTED", "LOGIN_LOCKED"),
    ]
    logins = events[2:]
    assert all(e.library_number is None and e.vendor_id is not None for e in logins)
    assert logins[0].borrower_id is not None
    assert {e.borrower_id for e in logins} == {logins[0].borrower_id}
