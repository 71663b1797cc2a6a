"""The audit trail survives `kill -9`: every call a client saw answered, with success or with a
refusal the server sent, has its audit row, however abruptly the server dies after answering.

A real `nlr-server` process serves eight clients that create, read, update and log in at once;
it is killed with SIGKILL while their calls are in flight, and the trail is then read straight
from the database. A call the kill cut short (UNAVAILABLE, CANCELLED, DEADLINE_EXCEEDED with no
answer from the server) was never acknowledged and need not be in it.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from grpc_status import rpc_status

from nlr.auth.v1 import authenticate_pb2 as auth_pb
from nlr.auth.v1 import authenticate_pb2_grpc
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.models import AuditEventRow
from register_harness import OSLO, Registry, audit_rows, client_channel, new_borrower
from server_process_harness import EXIT_DEADLINE, running_server, server_environment

CLIENTS = 8
LOAD_SECONDS = 3.0
CALL_TIMEOUT = 5.0
PIN = "4711"
# What a client sees of a call the kill cut short, when no answer came from the server.
CUT_SHORT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
LOADED_RPCS = ("CreateBorrower", "SetPin", "GetBorrower", "UpdateBorrower", "VerifyPin")

Answer = tuple[str, str, str]  # rpc, card number, outcome (the status code's name)
T = TypeVar("T")


class Ledger:
    """What the clients saw, call by call: the answers, and the calls the kill cut short."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acknowledged: Counter[Answer] = Counter()
        # Calls cut short that had started before the kill: in flight when it came.
        self.in_flight = 0
        self.killed_at = math.inf
        self.unexplained: list[str] = []

    def call(self, rpc: str, card_number: str, send: Callable[[], T]) -> T | None:
        """Makes one call and records how it ended; the response, or None if there is none."""
        started = time.monotonic()
        try:
            response = send()
        except grpc.RpcError as error:
            self._failed(rpc, card_number, error, started)
            return None
        with self._lock:
            self.acknowledged[(rpc, card_number, grpc.StatusCode.OK.name)] += 1
        return response

    def _failed(self, rpc: str, card_number: str, error: grpc.RpcError, started: float) -> None:
        code = error.code()
        with self._lock:
            # Every refusal of the register carries a google.rpc.Status; a call cut short by the
            # kill has none, since it is the client's own library that ends it.
            if rpc_status.from_call(error) is not None:
                self.acknowledged[(rpc, card_number, code.name)] += 1
            elif code in CUT_SHORT:
                if started < self.killed_at:
                    self.in_flight += 1
            else:
                self.unexplained.append(f"{rpc} {card_number}: {code.name} {error.details()}")


def client(
    target: str, pki: DevPkiPaths, number: int, ledger: Ledger, stop: threading.Event
) -> None:
    """One library system and one ebook platform calling in turn until stopped: creates a
    borrower, reads it, updates it with its etag, asks for a card that does not exist and logs
    in with a PIN."""
    with (
        client_channel(target, pki) as registry_channel,
        client_channel(target, pki, cert=pki.auth_cert, key=pki.auth_key) as auth_channel,
    ):
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(registry_channel)
        oslo = Registry(stub, None).as_library(OSLO)
        authenticate = authenticate_pb2_grpc.AuthenticateStub(auth_channel)
        # Each client has card numbers of its own: N<client><8 digits>; unknown ones N9<client>...
        pin_card = f"N{number}{0:08d}"
        ledger.call("CreateBorrower", pin_card, partial(create, oslo, pin_card))
        ledger.call("SetPin", pin_card, partial(set_pin, oslo, pin_card))
        card, etag = pin_card, ""
        for serial in itertools.count(1):
            if stop.is_set():
                return
            new_card = f"N{number}{serial:08d}"
            created = ledger.call("CreateBorrower", new_card, partial(create, oslo, new_card))
            if created is not None:
                card, etag = new_card, created.etag
            ledger.call("GetBorrower", card, partial(read, oslo, card))
            if etag:
                updated = ledger.call("UpdateBorrower", card, partial(rename, oslo, card, etag))
                etag = updated.etag if updated is not None else ""
            unknown = f"N9{number}{serial:07d}"
            ledger.call("GetBorrower", unknown, partial(read, oslo, unknown))
            ledger.call("VerifyPin", pin_card, partial(verify_pin, authenticate, pin_card))


def create(registry: Registry, card_number: str) -> borrower_pb2.Borrower:
    request = pb.CreateBorrowerRequest(borrower=new_borrower(card_number))
    response = registry.stub.CreateBorrower(
        request, metadata=registry.metadata, timeout=CALL_TIMEOUT
    )
    return response.borrower


def set_pin(registry: Registry, card_number: str) -> pb.SetPinResponse:
    request = pb.SetPinRequest(card_number=card_number, pin=PIN)
    response: pb.SetPinResponse = registry.stub.SetPin(
        request, metadata=registry.metadata, timeout=CALL_TIMEOUT
    )
    return response


def read(registry: Registry, card_number: str) -> borrower_pb2.Borrower:
    request = pb.GetBorrowerRequest(card_number=card_number)
    response = registry.stub.GetBorrower(request, metadata=registry.metadata, timeout=CALL_TIMEOUT)
    return response.borrower


def rename(registry: Registry, card_number: str, etag: str) -> borrower_pb2.Borrower:
    changes = borrower_pb2.Borrower(card_number=card_number, etag=etag, given_name="Kari Anne")
    request = pb.UpdateBorrowerRequest(
        borrower=changes, update_mask=FieldMask(paths=["given_name"])
    )
    response = registry.stub.UpdateBorrower(
        request, metadata=registry.metadata, timeout=CALL_TIMEOUT
    )
    return response.borrower


def verify_pin(
    authenticate: authenticate_pb2_grpc.AuthenticateStub, card_number: str
) -> auth_pb.VerifyPinResponse:
    request = auth_pb.VerifyPinRequest(card_number=card_number, pin=PIN)
    response: auth_pb.VerifyPinResponse = authenticate.VerifyPin(request, timeout=CALL_TIMEOUT)
    return response


def per_rpc(answers: Counter[Answer]) -> dict[tuple[str, str], int]:
    """The counts of answers by rpc and outcome, whatever their card numbers."""
    counts: Counter[tuple[str, str]] = Counter()
    for (rpc, _, outcome), count in answers.items():
        counts[(rpc, outcome)] += count
    return dict(counts)


def test_every_acknowledged_call_has_its_audit_row_after_kill_9(
    pki: DevPkiPaths, keyring_path: Path, prepared_database: str, tmp_path: Path
) -> None:
    environment = server_environment(pki, keyring_path, prepared_database)
    ledger = Ledger()
    stop = threading.Event()
    with (
        running_server(environment, pki, tmp_path) as server,
        ThreadPoolExecutor(max_workers=CLIENTS) as pool,
    ):
        clients = [
            pool.submit(client, server.target, pki, number, ledger, stop)
            for number in range(1, CLIENTS + 1)
        ]
        try:
            time.sleep(LOAD_SECONDS)
            for running in clients:
                assert not running.done(), f"a client stopped early: {running.exception()!r}"
            ledger.killed_at = time.monotonic()
            os.kill(server.process.pid, signal.SIGKILL)
            exit_code = server.process.wait(timeout=EXIT_DEADLINE)
        finally:
            stop.set()
        for running in clients:
            running.result(timeout=EXIT_DEADLINE)

    assert exit_code == -signal.SIGKILL
    assert not ledger.unexplained, ledger.unexplained[:10]
    assert ledger.in_flight > 0, "the kill came while no call was in flight"
    answered = per_rpc(ledger.acknowledged)
    for expected in [(rpc, "OK") for rpc in LOADED_RPCS] + [("GetBorrower", "NOT_FOUND")]:
        assert expected in answered, f"no {expected} answer under load: {answered}"
    rows = Counter(
        audit_rows(
            prepared_database,
            AuditEventRow.rpc,
            AuditEventRow.card_number,
            AuditEventRow.outcome,
            where=AuditEventRow.rpc.in_(LOADED_RPCS),
        )
    )
    missing = ledger.acknowledged - rows
    acknowledged = ledger.acknowledged.total()
    assert not missing, (
        f"{missing.total()} of {acknowledged} acknowledged calls have no audit row "
        f"({rows.total()} audit rows of these rpcs; {ledger.in_flight} calls in flight at the "
        f"kill); missing per rpc and outcome: {per_rpc(missing)} of {answered}"
    )
