"""Concurrent guesses for one card get no more checks than the lockout allows."""

from __future__ import annotations

import threading

import grpc

from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import Registry, ServerThread, client_channel, create, new_borrower

GUESSES = 40


def test_forty_simultaneous_wrong_pins_get_five_checks_and_the_rest_are_locked_out(
    registry: Registry, server: ServerThread, pki: DevPkiPaths
) -> None:
    create(registry, new_borrower("N000001401"))
    registry.stub.SetPin(
        pb.SetPinRequest(card_number="N000001401", pin="2468"), metadata=registry.metadata
    )
    outcomes: list[grpc.StatusCode] = []
    lock = threading.Lock()
    start = threading.Barrier(GUESSES)

    def guess(n: int) -> None:
        with client_channel(server.target, pki, cert=pki.auth_cert, key=pki.auth_key) as channel:
            stub = authenticate_pb2_grpc.AuthenticateStub(channel)
            start.wait(timeout=30)
            try:
                stub.VerifyPin(
                    authenticate_pb2.VerifyPinRequest(card_number="N000001401", pin=f"{n:04d}9"),
                    timeout=30,
                )
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
            with lock:
                outcomes.append(code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == GUESSES
    assert outcomes.count(grpc.StatusCode.UNAUTHENTICATED) == 5
    assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == GUESSES - 5
