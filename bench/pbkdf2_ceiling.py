"""The password ceiling: raw PBKDF2-HMAC-SHA512 checks per second on every core.

``python -m bench.pbkdf2_ceiling SECONDS ITERATIONS`` runs ``hashlib.pbkdf2_hmac`` in a pool
of ``os.cpu_count()`` processes and prints one JSON result. Hashes are counted when they finish
inside the measured window, the same rule the load generator uses for calls.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass

from bench.cpu import cpu_seconds, machine_busy_seconds

WARMUP_SECONDS = 1.0
# What a password check hashes: a typical password and a 16-byte salt.
_PASSWORD = b"correct horse battery"
_SALT = b"0123456789abcdef"


@dataclass(frozen=True)
class Pbkdf2Result:
    checks_per_second: float
    processes: int
    iterations: int
    # Cores busy during the window with anything but the hashing processes (None: unknown).
    other_cpu: float | None


def _hash_in_window(window: tuple[float, float, int]) -> int:
    window_start, window_end, iterations = window
    finished = 0
    while time.monotonic() < window_end:
        hashlib.pbkdf2_hmac("sha512", _PASSWORD, _SALT, iterations)
        if window_start <= time.monotonic() <= window_end:
            finished += 1
    return finished


def measure(seconds: float, iterations: int) -> Pbkdf2Result:
    processes = os.cpu_count() or 1
    with multiprocessing.Pool(processes) as pool:
        # CLOCK_MONOTONIC is one clock for every process on the machine.
        window_start = time.monotonic() + WARMUP_SECONDS
        window_end = window_start + seconds
        window = (window_start, window_end, iterations)
        hashing = pool.map_async(_hash_in_window, [window] * processes, chunksize=1)
        time.sleep(max(0.0, window_start - time.monotonic()))
        before = _busy_seconds()
        time.sleep(max(0.0, window_end - time.monotonic()))
        after = _busy_seconds()
        finished = hashing.get(timeout=seconds + 60)
    other = None
    if before is not None and after is not None:
        other = max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / seconds)
    return Pbkdf2Result(sum(finished) / seconds, processes, iterations, other)


def _busy_seconds() -> tuple[float, float] | None:
    """CPU seconds used so far by the whole machine and by the hashing processes."""
    machine = machine_busy_seconds()
    workers = [cpu_seconds(child.pid) for child in multiprocessing.active_children() if child.pid]
    if machine is None or any(worker is None for worker in workers):
        return None
    return machine, sum(worker for worker in workers if worker is not None)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m bench.pbkdf2_ceiling SECONDS ITERATIONS")
    print(json.dumps(asdict(measure(float(argv[0]), int(argv[1])))))


if __name__ == "__main__":
    main(sys.argv[1:])
