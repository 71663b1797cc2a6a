"""Concurrent guesses for one card, registered or not, get no more checks than the lockout
allows; concurrent right passwords all get in."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest

from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import Registry, ServerThread, client_channel, create, new_borrower

GUESSES = 40
PASSWORD = "correct horse battery staple"
Authenticate = authenticate_pb2_grpc.AuthenticateStub


def simultaneously(
    server: ServerThread, pki: DevPkiPaths, calls: int, call: Callable[[Authenticate, int], object]
) -> list[grpc.StatusCode]:
    """Makes ``calls`` calls at once, each on a channel of its own; their status codes."""
    outcomes: list[grpc.StatusCode] = []
    lock = threading.Lock()
    start = threading.Barrier(calls)

    def one(n: int) -> None:
        with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
            stub = Authenticate(channel)
            start.wait(timeout=30)
            try:
                call(stub, n)
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
            with lock:
                outcomes.append(code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert len(outcomes) == calls
    return outcomes


@pytest.mark.parametrize("card_number", ["N000001401", "N000001499"], ids=["registered", "unknown"])
def test_forty_simultaneous_wrong_pins_get_five_checks_and_the_rest_are_locked_out(
    registry: Registry, server: ServerThread, pki: DevPkiPaths, card_number: str
) -> None:
    create(registry, new_borrower("N000001401"))
    registry.stub.SetPin(
        pb.SetPinRequest(card_number="N000001401", pin="2468"), metadata=registry.metadata
    )

    def guess(stub: Authenticate, n: int) -> object:
        request = authenticate_pb2.VerifyPinRequest(card_number=card_number, pin=f"{n:04d}9")
        return stub.VerifyPin(request, timeout=30)

    outcomes = simultaneously(server, pki, GUESSES, guess)

    assert outcomes.count(grpc.StatusCode.UNAUTHENTICATED) == 5
    assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == GUESSES - 5


def test_eight_simultaneous_right_passwords_all_log_in(
    registry: Registry, server: ServerThread, pki: DevPkiPaths
) -> None:
    create(registry, new_borrower("N000001402"))
    registry.stub.SetPassword(
        pb.SetPasswordRequest(card_number="N000001402", password=PASSWORD),
        metadata=registry.metadata,
    )

    def log_in(stub: Authenticate, n: int) -> object:
        request = authenticate_pb2.VerifyPasswordRequest(
            card_number="N000001402", password=PASSWORD
        )
        return stub.VerifyPassword(request, timeout=60)

    outcomes = simultaneously(server, pki, 8, log_in)

    assert outcomes == [grpc.StatusCode.OK] * 8


@pytest.mark.parametrize("card_number", ["N000001403", "N000001498"], ids=["registered", "unknown"])
def test_twelve_simultaneous_wrong_passwords_get_five_checks_and_the_rest_are_locked_out(
    registry: Registry, server: ServerThread, pki: DevPkiPaths, card_number: str
) -> None:
    create(registry, new_borrower("N000001403"))
    registry.stub.SetPassword(
        pb.SetPasswordRequest(card_number="N000001403", password=PASSWORD),
        metadata=registry.metadata,
    )

    def guess(stub: Authenticate, n: int) -> object:
        request = authenticate_pb2.VerifyPasswordRequest(
            card_number=card_number, password=f"wrong password {n}"
        )
        return stub.VerifyPassword(request, timeout=60)

    outcomes = simultaneously(server, pki, 12, guess)

    assert outcomes.count(grpc.StatusCode.UNAUTHENTICATED) == 5
    assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 12 - 5
