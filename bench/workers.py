"""The workers row's measurement: one load against a register of NLR_WORKERS=N, from several
load-generator processes with a connection each, so that SO_REUSEPORT can spread them."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import environment, sockets
from bench.cpu import descendants
from bench.environment import Environment, RunningServer
from bench.load import LoadProcess, LoadResult, LoadSpec
from bench.processes import ChildFailed, Children, tail

# Two, so that two workers can each hold one (one channel is one TCP connection).
LOAD_PROCESSES = 2
# The load generators are started, connect, and all begin this long after they were started.
START_MARGIN_SECONDS = 5.0
# The kernel picks a new connection's worker (a hash of the client's address and port), so
# both may land on one worker: then the load generators are started again, this many times
# at most. Each start costs a second or two; on two workers about half of them land evenly,
# fewer in a trial here (3 of 12), so there are enough that all failing is rare.
MAX_ATTEMPTS = 16
LISTEN_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class WorkersResult:
    """One load against one deployment: the load generators' results, measured together."""

    workers: int
    loads: tuple[LoadResult, ...]
    # The load generators' connections each server process holds (one count per process).
    connections: tuple[int, ...]
    # How many times the load generators were started to spread their connections evenly.
    attempts: int
    # Every load generator was connected before the common start (their windows coincide).
    aligned: bool

    @property
    def succeeded(self) -> int:
        return sum(load.succeeded for load in self.loads)

    @property
    def requests_per_second(self) -> float:
        return self.succeeded / self.loads[0].seconds

    @property
    def failures(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for load in self.loads:
            total.update(load.failures)
        return dict(total)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def even(self) -> bool:
        return len(set(self.connections)) == 1

    @property
    def server_cpu(self) -> float | None:
        """Cores used by the supervisor and its workers: each load generator measured the same
        processes over the same window, so their readings are averaged, not added."""
        return _mean([load.server_cpu for load in self.loads])

    @property
    def client_cpu(self) -> float | None:
        values = [load.client_cpu for load in self.loads]
        return None if None in values else sum(value or 0.0 for value in values)

    @property
    def machine_cpu(self) -> float | None:
        return _mean([load.machine_cpu for load in self.loads])

    @property
    def other_cpu(self) -> float | None:
        if self.machine_cpu is None or self.client_cpu is None or self.server_cpu is None:
            return None
        return max(0.0, self.machine_cpu - self.client_cpu - self.server_cpu)

    @property
    def server_cpu_per_call_us(self) -> float | None:
        if self.server_cpu is None or not self.succeeded:
            return None
        return self.server_cpu * self.loads[0].seconds / self.succeeded * 1e6

    @property
    def p50_ms(self) -> float | None:
        """The slower load generator's median latency."""
        return max((load.p50_ms for load in self.loads if load.p50_ms is not None), default=None)

    @property
    def p99_ms(self) -> float | None:
        return max((load.p99_ms for load in self.loads if load.p99_ms is not None), default=None)


def measure(
    env: Environment,
    children: Children,
    workers: int,
    spec_for: Callable[[RunningServer], LoadSpec],
    progress: Callable[[str], None],
) -> WorkersResult:
    """Starts a register of ``workers`` processes, loads it with ``spec_for``'s load (its
    concurrency split between the load generators) once each worker holds as many of their
    connections, and stops it."""
    register = environment.start_register(env, children, workers=workers)
    try:
        port = int(register.target.rsplit(":", 1)[1])
        servers = _wait_for_listeners(register, port, workers)
        spec = spec_for(register)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            loads, ready_files, start_at = _start_loads(env, children, spec, workers)
            aligned = _wait_for(ready_files, start_at)
            ports = set().union(*(sockets.connected_ports(load.pid, port) for load in loads))
            connections = tuple(len(sockets.accepted_ports(pid, port) & ports) for pid in servers)
            if (aligned and len(set(connections)) == 1) or attempt == MAX_ATTEMPTS:
                return WorkersResult(
                    workers,
                    tuple(load.result() for load in loads),
                    connections,
                    attempt,
                    aligned,
                )
            for load in loads:
                load.cancel()
            why = (
                "not connected in time" if not aligned else f"connections per worker {connections}"
            )
            progress(f"  {why}: starting the load generators again")
    finally:
        children.stop(register.process)
    raise AssertionError("unreachable: the last attempt returns")


def _start_loads(
    env: Environment, children: Children, spec: LoadSpec, workers: int
) -> tuple[list[LoadProcess], list[Path], float]:
    start_at = time.time() + START_MARGIN_SECONDS
    loads, ready_files = [], []
    for index in range(LOAD_PROCESSES):
        name = f"workers-{workers}-load-{index}"
        ready = env.directory / f"{name}.ready"
        ready.unlink(missing_ok=True)
        share = spec.concurrency // LOAD_PROCESSES + (
            1 if index < spec.concurrency % LOAD_PROCESSES else 0
        )
        own = dataclasses.replace(
            spec,
            concurrency=share,
            seed=spec.seed + index,
            ready_file=str(ready),
            start_at=start_at,
        )
        loads.append(LoadProcess(children, own, env.directory / f"{name}.json"))
        ready_files.append(ready)
    return loads, ready_files, start_at


def _wait_for(files: list[Path], deadline: float) -> bool:
    """Whether every file exists before the wall-clock ``deadline``."""
    while not all(path.exists() for path in files):
        if time.time() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_for_listeners(register: RunningServer, port: int, workers: int) -> list[int]:
    """The pids of the processes listening on ``port`` once there are ``workers`` of them: the
    register serves from its first worker on, and connections made before the others listen
    would all go to it."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_SECONDS
    while True:
        tree = [register.process.pid, *descendants(register.process.pid)]
        listening = [pid for pid in tree if sockets.listens(pid, port)]
        if len(listening) == workers:
            return listening
        if register.process.poll() is not None:
            raise ChildFailed(
                f"NLR_WORKERS={workers}: the register exited with status "
                f"{register.process.returncode}\n{tail(register.log)}"
            )
        if time.monotonic() > deadline:
            raise ChildFailed(
                f"NLR_WORKERS={workers}: {len(listening)} processes listening after "
                f"{LISTEN_TIMEOUT_SECONDS:g} s\n{tail(register.log)}"
            )
        time.sleep(0.1)


def ratio_ceiling(one: WorkersResult, cores: int, workers: int) -> float | None:
    """The most N workers can answer over one on this machine: every core busy with the CPU
    per call the register and the load generators spent at N=1. Other processes are left out
    (the database's among them on PostgreSQL, which cannot be told from others'), so the
    true ceiling is lower still when they take a share."""
    if one.server_cpu is None or one.client_cpu is None:
        return None
    busy = one.server_cpu + one.client_cpu
    return min(float(workers), cores / busy) if busy > 0 else None


def _mean(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.fmean(known) if known else None
