"""The load generator: a fixed number of unary calls in flight over one mTLS channel, for a time.

It runs as a process of its own (``python -m bench.load SPEC.json``, one JSON result on
stdout), so it never shares a GIL with the server it measures. Ceilings and targets go through
exactly the same code: requests and responses stay bytes (serialised once, up front), so the
client does the same work whichever method it calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from bench.cpu import machine_busy_seconds, tree_cpu_seconds
from bench.processes import ChildFailed, Children, python_module


@dataclass(frozen=True)
class LoadSpec:
    """One measurement: what to call, how, how hard and for how long."""

    target: str
    method: str
    payloads: list[bytes]
    ca: str
    cert: str
    key: str
    concurrency: int
    seconds: float
    warmup_seconds: float = 1.0
    metadata: list[tuple[str, str]] = field(default_factory=list)
    call_timeout_seconds: float = 30.0
    # The server's pid, to report how much CPU it (with any worker processes below it) used
    # during the measured window.
    server_pid: int | None = None
    seed: int = 1
    # Each payload at most once, in order (requests that only work once, such as an update
    # with its etag); callers stop when they run out, counted as EXHAUSTED if still in the window.
    once: bool = False
    # Several load generators measuring together: each writes ``ready_file`` once its channel
    # is connected, and all begin (warm-up, then window) at the same wall-clock time
    # ``start_at`` (time.time()), so their windows coincide and their figures add up.
    ready_file: str | None = None
    start_at: float | None = None

    def to_json(self) -> str:
        values = asdict(self)
        values["payloads"] = [base64.b64encode(p).decode() for p in self.payloads]
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        values = json.loads(text)
        values["payloads"] = [base64.b64decode(p) for p in values["payloads"]]
        values["metadata"] = [tuple(pair) for pair in values["metadata"]]
        return cls(**values)


@dataclass(frozen=True)
class LoadResult:
    """What one measurement saw in its window (the warm-up is not counted)."""

    seconds: float
    succeeded: int
    failures: dict[str, int]
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    # CPU used during the window, in cores (1.0 = one core busy all the time): by this load
    # generator, by the server under load, and by the whole machine (every process).
    client_cpu: float | None
    server_cpu: float | None
    machine_cpu: float | None

    @property
    def other_cpu(self) -> float | None:
        """Cores busy with anything else: other processes on the machine disturb the figure."""
        if self.client_cpu is None or self.server_cpu is None or self.machine_cpu is None:
            return None
        return max(0.0, self.machine_cpu - self.client_cpu - self.server_cpu)

    @property
    def requests_per_second(self) -> float:
        return self.succeeded / self.seconds

    @property
    def server_cpu_per_call_us(self) -> float | None:
        """The server's CPU time per call answered, in µs."""
        if self.server_cpu is None or not self.succeeded:
            return None
        return self.server_cpu * self.seconds / self.succeeded * 1e6

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(len(sorted_values) * fraction))
    return sorted_values[rank - 1]


async def generate(spec: LoadSpec) -> LoadResult:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=Path(spec.ca).read_bytes(),
        private_key=Path(spec.key).read_bytes(),
        certificate_chain=Path(spec.cert).read_bytes(),
    )
    async with grpc.aio.secure_channel(spec.target, credentials) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
        # No serializers: bytes in, bytes out.
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(spec.method)
        if spec.ready_file is not None:
            Path(spec.ready_file).touch()
        if spec.start_at is not None:
            await asyncio.sleep(max(0.0, spec.start_at - time.time()))
        started = time.perf_counter()
        window_start = started + spec.warmup_seconds
        window_end = window_start + spec.seconds
        latencies: list[float] = []
        failures: Counter[str] = Counter()
        metadata = tuple(spec.metadata)
        rng = random.Random(spec.seed)
        queue = iter(spec.payloads)

        async def one_caller() -> None:
            while (sent := time.perf_counter()) < window_end:
                if spec.once:
                    payload = next(queue, None)
                    if payload is None:
                        if sent >= window_start:
                            failures["EXHAUSTED"] += 1
                        return
                else:
                    payload = rng.choice(spec.payloads)
                code = "OK"
                try:
                    await call(payload, metadata=metadata, timeout=spec.call_timeout_seconds)
                except grpc.aio.AioRpcError as error:
                    code = error.code().name
                done = time.perf_counter()
                if window_start <= done <= window_end:
                    if code == "OK":
                        latencies.append(done - sent)
                    else:
                        failures[code] += 1

        cpu = asyncio.create_task(_cpu_in_window(window_start, window_end, spec.server_pid))
        await asyncio.gather(*(one_caller() for _ in range(spec.concurrency)))
        client_cpu, server_cpu, machine_cpu = await cpu
    latencies.sort()
    return LoadResult(
        seconds=spec.seconds,
        succeeded=len(latencies),
        failures=dict(failures),
        p50_ms=_ms(percentile(latencies, 0.50)),
        p99_ms=_ms(percentile(latencies, 0.99)),
        max_ms=_ms(latencies[-1] if latencies else None),
        client_cpu=client_cpu,
        server_cpu=server_cpu,
        machine_cpu=machine_cpu,
    )


async def _cpu_in_window(
    window_start: float, window_end: float, server_pid: int | None
) -> tuple[float | None, float | None, float | None]:
    """CPU cores used by this process, by the server and by the machine in the window."""
    await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
    before = _cpu_now(server_pid)
    began = time.perf_counter()
    await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
    after = _cpu_now(server_pid)
    elapsed = time.perf_counter() - began
    client, server, machine = (
        None if b is None or a is None else (a - b) / elapsed
        for b, a in zip(before, after, strict=True)
    )
    return client, server, machine


def _cpu_now(server_pid: int | None) -> tuple[float, float | None, float | None]:
    server = None if server_pid is None else tree_cpu_seconds(server_pid)
    return time.process_time(), server, machine_busy_seconds()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


class LoadProcess:
    """A load generator running in its own process; ``result`` waits for its answer."""

    def __init__(self, children: Children, spec: LoadSpec, spec_file: Path) -> None:
        spec_file.write_text(spec.to_json())
        self._children = children
        waiting = 0.0 if spec.start_at is None else max(0.0, spec.start_at - time.time())
        self._deadline = waiting + spec.warmup_seconds + spec.seconds + 60
        self._process = children.start(
            python_module("bench.load", str(spec_file)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    @property
    def pid(self) -> int:
        return self._process.pid

    def cancel(self) -> None:
        """Stops it without a result (its connection is not the one wanted)."""
        self._children.stop(self._process)

    def result(self) -> LoadResult:
        try:
            stdout, stderr = self._process.communicate(timeout=self._deadline)
        finally:
            self._children.stop(self._process)
        if self._process.returncode != 0:
            raise ChildFailed(f"load generator failed:\n{stderr.decode(errors='replace')}")
        values: dict[str, Any] = json.loads(stdout)
        return LoadResult(**values)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m bench.load SPEC.json")
    spec = LoadSpec.from_json(Path(argv[0]).read_text())
    result = asyncio.run(generate(spec))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main(sys.argv[1:])
