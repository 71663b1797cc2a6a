"""Whether VerifyPin's latency tells a registered card from an unknown one (issue 13, item 5 a).

One caller, one call at a time, alternating: a card number no borrower holds, and the first
wrong PIN for a card that is registered and has a PIN. Every call is the first attempt for its
card, so each is the one that would write a new failure row if only registered cards had one.
The order within each pair alternates too (unknown first, then registered first), so a drift in
the machine's speed during the run weighs on both sides alike.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from nlr.auth.v1 import authenticate_pb2, authenticate_pb2_grpc

# Card numbers at and above this one are never in a generated export (bench/legacy_export.py
# hands out N100000000 to N899999999), so these are unknown to the register.
_FIRST_UNKNOWN_CARD = 900_000_000
# Pairs of this many first-wrong logins warm the channel and the server up, not counted.
WARMUP_PAIRS = 20


@dataclass(frozen=True)
class TimingResult:
    """Latencies in milliseconds of the two kinds of refused login, and the calls that did not
    answer as a wrong PIN should (UNAUTHENTICATED)."""

    unknown_ms: list[float]
    registered_ms: list[float]
    unexpected: dict[str, int]

    @property
    def ratio(self) -> float:
        """Median latency of unknown cards over that of first wrong PINs (1.0: the same)."""
        return statistics.median(self.unknown_ms) / statistics.median(self.registered_ms)


def unknown_card(index: int) -> str:
    return f"N{_FIRST_UNKNOWN_CARD + index:09d}"


def wrong_pin(right: str) -> str:
    """A PIN of the same length as ``right`` that is not ``right``."""
    return f"{(int(right) + 1) % 10 ** len(right):0{len(right)}d}"


def measure(channel: grpc.Channel, pins: dict[str, str]) -> TimingResult:
    """One interleaved pair for each registered card in ``pins`` (the first WARMUP_PAIRS not
    counted); the unknown cards are as many fresh ones."""
    stub = authenticate_pb2_grpc.AuthenticateStub(channel)
    unexpected: dict[str, int] = {}

    def timed(card: str, pin: str) -> float:
        request = authenticate_pb2.VerifyPinRequest(card_number=card, pin=pin)
        started = time.perf_counter()
        try:
            stub.VerifyPin(request, timeout=30)
            outcome = "OK"
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            outcome = code.name if code is not None else "ERROR"
        elapsed = (time.perf_counter() - started) * 1000
        if outcome != "UNAUTHENTICATED":
            unexpected[outcome] = unexpected.get(outcome, 0) + 1
        return elapsed

    unknown: list[float] = []
    registered: list[float] = []
    for index, (card, pin) in enumerate(pins.items()):
        calls: list[tuple[list[float], Callable[[], float]]] = [
            (unknown, functools.partial(timed, unknown_card(index), "0000")),
            (registered, functools.partial(timed, card, wrong_pin(pin))),
        ]
        if index % 2:
            calls.reverse()
        for latencies, call in calls:
            elapsed = call()
            if index >= WARMUP_PAIRS:
                latencies.append(elapsed)
    return TimingResult(unknown, registered, unexpected)
