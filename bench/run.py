"""`make bench`: the performance targets of DESIGN.md §9, each as a ratio against a ceiling.

Builds a throwaway register (temporary directory, SQLite, BENCH_BORROWERS borrowers), starts the
real server and an empty grpc.aio server as processes of their own, measures each figure and its
ceiling with the same load generator, then the change feed's (bench/feed.py: WatchChanges fan-out
and catch-up), prints the table and writes it to bench/results/.
Every process it starts and every file it makes is gone when it ends, however it ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg

# `make bench` runs this file as a script: the repository root (for bench.*) and tests/ (for the
# test harness the environment reuses) must be importable, as they are for mypy.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "tests")]

from bench import environment, feed, report  # noqa: E402
from bench.cpu import machine_busy_seconds  # noqa: E402
from bench.empty_server import METHOD as EMPTY_METHOD  # noqa: E402
from bench.environment import Environment, RunningServer, Unavailable  # noqa: E402
from bench.feed import FeedSettings  # noqa: E402
from bench.load import LoadProcess, LoadResult, LoadSpec  # noqa: E402
from bench.pbkdf2_ceiling import Pbkdf2Result  # noqa: E402
from bench.processes import ChildFailed, Children, python_module  # noqa: E402
from bench.report import Row  # noqa: E402

from nlr.auth.v1 import authenticate_pb2  # noqa: E402
from nlr.registry.v1 import registry_service_pb2  # noqa: E402

GET_BORROWER = "/nlr.registry.v1.BorrowerRegistry/GetBorrower"
VERIFY_PIN = "/nlr.auth.v1.Authenticate/VerifyPin"
VERIFY_PASSWORD = "/nlr.auth.v1.Authenticate/VerifyPassword"

WARMUP_SECONDS = 1.0
UNARY_CONCURRENCY = 32
CORES = os.cpu_count() or 1
PASSWORD_CONCURRENCY = 2 * CORES
STORM_GET_CONCURRENCY = 4
PASSWORD_ITERATIONS = 210_000
PIN_BORROWERS = 500
PASSWORD_BORROWERS = 50
# Past this many cores busy with other processes during a measurement, the row says so.
DISTURBANCE_CORES = 0.15
# GetBorrower asks for random card numbers among at most this many of the loaded ones.
MAX_GET_PAYLOADS = 20_000


@dataclass(frozen=True)
class Settings:
    borrowers: int
    seconds: float
    # A PostgreSQL server to run on instead of SQLite (a throwaway database is made on it).
    postgres_admin_url: str | None
    # The change feed: concurrent WatchChanges streams, entries in the catch-up library's feed,
    # and changes per second the writer makes while the streams watch.
    feed: FeedSettings

    @classmethod
    def from_env(cls) -> Settings:
        seconds = _positive("BENCH_SECONDS", "5", whole=False)
        return cls(
            borrowers=int(_positive("BENCH_BORROWERS", "2000", whole=True)),
            seconds=seconds,
            postgres_admin_url=os.environ.get("BENCH_POSTGRES_URL", "").strip() or None,
            feed=FeedSettings(
                watchers=int(_positive("BENCH_WATCHERS", "1000", whole=True)),
                entries=int(_positive("BENCH_FEED_ENTRIES", "50000", whole=True)),
                rate=_positive("BENCH_FEED_RATE", "10", whole=False),
                seconds=seconds,
            ),
        )


def _positive(name: str, default: str, *, whole: bool) -> float:
    raw = os.environ.get(name, "").strip() or default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        sys.exit(f"bench: {name} must be a {'whole ' if whole else ''}number, got {raw!r}")
    if not value > 0:
        sys.exit(f"bench: {name} must be more than 0, got {raw!r}")
    return value


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Suite:
    """The figures against one register (a second one on the same database for the change
    feed), one empty server and one temporary directory."""

    def __init__(
        self,
        settings: Settings,
        directory: Path,
        children: Children,
        database_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.children = children
        self.database_url = database_url
        self._specs = 0

    def run(self) -> tuple[str, list[Row]]:
        settings = self.settings
        progress(f"preparing a register in {self.directory}")
        env = environment.create(self.directory, self.database_url)
        cards = environment.load_borrowers(
            env, settings.borrowers, lambda done: progress(f"loaded {done} borrowers")
        )
        register = environment.start_register(env, self.children)
        empty = environment.start_empty_server(env, self.children)
        progress(f"register on {register.target}, empty server on {empty.target}")

        pins = {card: _pin(index) for index, card in enumerate(cards[:PIN_BORROWERS])}
        passwords = {
            card: f"bench password {index}" for index, card in enumerate(cards[:PASSWORD_BORROWERS])
        }
        pins_missing = self._provision("PINs", environment.set_pins, env, register, pins)
        passwords_missing = self._provision(
            "passwords", environment.set_passwords, env, register, passwords
        )
        if pins_missing is None:
            pins_missing = _unavailable(environment.check_pin, env, register, pins)
        if passwords_missing is None:
            passwords_missing = _unavailable(environment.check_password, env, register, passwords)

        rows = [
            self.get_borrower(env, register, empty, cards),
            self.verify_pin(env, register, empty, pins, pins_missing),
            self.verify_password(env, register, passwords, passwords_missing),
            self.storm(env, register, cards, passwords, passwords_missing),
        ]
        # The change feed gets a register of its own on the same database, started after its
        # bulk entries are written, so no register follows those live.
        self.children.stop(register.process)
        self.children.stop(empty.process)
        feed.prepare(env, cards, settings.feed, progress)
        rows += feed.rows(env, self.children, cards, settings.feed, progress)
        return env.store, rows

    def _provision(
        self,
        what: str,
        set_all: Callable[[Environment, str, dict[str, str]], None],
        env: Environment,
        register: RunningServer,
        secrets: dict[str, str],
    ) -> str | None:
        progress(f"setting {len(secrets)} {what}")
        try:
            set_all(env, register.target, secrets)
        except Unavailable as error:
            progress(f"cannot set {what}: {error}")
            return str(error)
        return None

    def get_borrower(
        self, env: Environment, register: RunningServer, empty: RunningServer, cards: list[str]
    ) -> Row:
        payloads = _get_payloads(cards, seed=7)
        ceiling = self.measure("ceiling for GetBorrower", env, empty, EMPTY_METHOD, payloads)
        target = self.measure("GetBorrower", env, register, GET_BORROWER, payloads)
        return _ratio_row("GetBorrower by card number", target, ceiling, minimum=0.60)

    def verify_pin(
        self,
        env: Environment,
        register: RunningServer,
        empty: RunningServer,
        pins: dict[str, str],
        missing: str | None,
    ) -> Row:
        name = "VerifyPin by card number"
        if missing is not None:
            return report.unavailable_row(name, "req/s", "≥ 0.50", missing)
        payloads = [
            authenticate_pb2.VerifyPinRequest(card_number=card, pin=pin).SerializeToString()
            for card, pin in pins.items()
        ]
        ceiling = self.measure(
            "ceiling for VerifyPin", env, empty, EMPTY_METHOD, payloads, role="auth"
        )
        target = self.measure("VerifyPin", env, register, VERIFY_PIN, payloads, role="auth")
        return _ratio_row(name, target, ceiling, minimum=0.50)

    def verify_password(
        self,
        env: Environment,
        register: RunningServer,
        passwords: dict[str, str],
        missing: str | None,
    ) -> Row:
        name = "VerifyPassword"
        if missing is not None:
            return report.unavailable_row(name, "checks/s", "≥ 0.90", missing)
        ceiling = self.pbkdf2_ceiling()
        target = self.measure(
            "VerifyPassword",
            env,
            register,
            VERIFY_PASSWORD,
            _password_payloads(passwords),
            role="auth",
            concurrency=PASSWORD_CONCURRENCY,
        )
        return report.ratio_row(
            name,
            target.requests_per_second,
            ceiling.checks_per_second,
            "checks/s",
            0.90,
            failures=target.failed,
            notes=f"{_disturbed(target.other_cpu, ceiling.other_cpu)}"
            f"ceiling: raw PBKDF2-HMAC-SHA512, {ceiling.iterations:,} iterations, "
            f"{ceiling.processes} processes; {PASSWORD_CONCURRENCY} in flight; "
            f"{_latencies(target)}; {_cpu(target)}",
        )

    def storm(
        self,
        env: Environment,
        register: RunningServer,
        cards: list[str],
        passwords: dict[str, str],
        missing: str | None,
    ) -> Row:
        name = "GetBorrower p99 during a password storm"
        if missing is not None:
            return report.unavailable_row(name, "ms", "< 50 ms", missing)
        progress(
            f"measuring GetBorrower ({STORM_GET_CONCURRENCY} in flight) during a VerifyPassword "
            f"storm ({PASSWORD_CONCURRENCY} in flight)"
        )
        passwords_load = self.start_load(
            env,
            register,
            VERIFY_PASSWORD,
            _password_payloads(passwords),
            "auth",
            PASSWORD_CONCURRENCY,
            metadata=[],
        )
        gets_load = self.start_load(
            env,
            register,
            GET_BORROWER,
            _get_payloads(cards, seed=11),
            "ils",
            STORM_GET_CONCURRENCY,
            metadata=environment.LIBRARY_METADATA,
        )
        gets = gets_load.result()
        storm = passwords_load.result()
        _show("GetBorrower during the storm", gets)
        _show("VerifyPassword storm", storm)
        return report.limit_row(
            name,
            gets.p99_ms,
            "ms",
            50,
            failures=gets.failed,
            notes=f"{_disturbed(gets.other_cpu)}GetBorrower {STORM_GET_CONCURRENCY} in flight: "
            f"{gets.requests_per_second:,.0f} req/s, p50 {_ms(gets.p50_ms)}; storm: "
            f"{storm.requests_per_second:.1f} VerifyPassword/s, {PASSWORD_CONCURRENCY} in "
            f"flight, {storm.failed} failed; {_cpu(gets)}",
        )

    def measure(
        self,
        label: str,
        env: Environment,
        server: RunningServer,
        method: str,
        payloads: list[bytes],
        *,
        role: str = "ils",
        concurrency: int = UNARY_CONCURRENCY,
    ) -> LoadResult:
        # Registry calls name the acting library; Authenticate calls and their ceiling do not.
        metadata = environment.LIBRARY_METADATA if role == "ils" else []
        progress(f"measuring {label} ({concurrency} in flight)")
        load = self.start_load(env, server, method, payloads, role, concurrency, metadata=metadata)
        result = load.result()
        _show(label, result)
        return result

    def start_load(
        self,
        env: Environment,
        server: RunningServer,
        method: str,
        payloads: list[bytes],
        role: str,
        concurrency: int,
        *,
        metadata: list[tuple[str, str]],
    ) -> LoadProcess:
        cert, key = env.client_certificate(role)
        spec = LoadSpec(
            target=server.target,
            method=method,
            payloads=payloads,
            ca=str(env.pki.ca_cert),
            cert=str(cert),
            key=str(key),
            concurrency=concurrency,
            seconds=self.settings.seconds,
            warmup_seconds=WARMUP_SECONDS,
            metadata=metadata,
            server_pid=server.process.pid,
        )
        self._specs += 1
        return LoadProcess(self.children, spec, self.directory / f"load-{self._specs}.json")

    def pbkdf2_ceiling(self) -> Pbkdf2Result:
        progress(f"measuring raw PBKDF2 on {CORES} processes")
        process = self.children.start(
            python_module(
                "bench.pbkdf2_ceiling", str(self.settings.seconds), str(PASSWORD_ITERATIONS)
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            stdout, stderr = process.communicate(timeout=self.settings.seconds + 60)
        finally:
            self.children.stop(process)
        if process.returncode != 0:
            raise ChildFailed(f"PBKDF2 ceiling failed:\n{stderr.decode(errors='replace')}")
        result = Pbkdf2Result(**json.loads(stdout))
        progress(
            f"  raw PBKDF2: {result.checks_per_second:.1f} checks/s; "
            f"other CPU {_cores(result.other_cpu)} cores"
        )
        return result


def _pin(index: int) -> str:
    return f"{(index * 7919 + 2718) % 10_000:04d}"


def _get_payloads(cards: list[str], *, seed: int) -> list[bytes]:
    """GetBorrower requests for a random sample of the loaded card numbers."""
    sample = random.Random(seed).sample(cards, min(len(cards), MAX_GET_PAYLOADS))
    return [
        registry_service_pb2.GetBorrowerRequest(card_number=card).SerializeToString()
        for card in sample
    ]


def _password_payloads(passwords: dict[str, str]) -> list[bytes]:
    return [
        authenticate_pb2.VerifyPasswordRequest(
            card_number=card, password=password
        ).SerializeToString()
        for card, password in passwords.items()
    ]


def _unavailable(
    check: Callable[[Environment, str, str, str], None],
    env: Environment,
    register: RunningServer,
    secrets: dict[str, str],
) -> str | None:
    """Why the login cannot be measured (one right login fails), or None if it can."""
    card, secret = next(iter(secrets.items()))
    try:
        check(env, register.target, card, secret)
    except Unavailable as error:
        progress(f"cannot log in: {error}")
        return str(error)
    return None


def _ratio_row(name: str, target: LoadResult, ceiling: LoadResult, *, minimum: float) -> Row:
    return report.ratio_row(
        name,
        target.requests_per_second,
        ceiling.requests_per_second,
        "req/s",
        minimum,
        failures=target.failed,
        notes=f"{_disturbed(target.other_cpu, ceiling.other_cpu)}"
        f"{UNARY_CONCURRENCY} in flight; {_latencies(target)} "
        f"(ceiling {_ms(ceiling.p50_ms)} / {_ms(ceiling.p99_ms)}); {_cpu(target)}",
    )


def _latencies(result: LoadResult) -> str:
    return f"p50 {_ms(result.p50_ms)}, p99 {_ms(result.p99_ms)}"


def _cpu(result: LoadResult) -> str:
    return (
        f"CPU cores: server {_cores(result.server_cpu)}, "
        f"load generator {_cores(result.client_cpu)}, other {_cores(result.other_cpu)}"
    )


def _cores(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _disturbed(*others: float | None) -> str:
    """A warning when other processes used the CPU during a measurement (others' test runs)."""
    busy = max((other for other in others if other is not None), default=0.0)
    if busy < DISTURBANCE_CORES:
        return ""
    return f"⚠ other processes used up to {busy:.2f} cores meanwhile; "


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _show(label: str, result: LoadResult) -> None:
    failed = f", {result.failed} failed {result.failures}" if result.failed else ""
    progress(
        f"  {label}: {result.requests_per_second:,.1f}/s, {_latencies(result)}; "
        f"{_cpu(result)}{failed}"
    )


def _background_cpu(seconds: float = 1.0) -> float | None:
    """Cores busy on the machine just before the run: anything above 0 competes with it."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    after = machine_busy_seconds()
    return None if before is None or after is None else (after - before) / seconds


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP end the run like Ctrl-C does: through the finally blocks.
    raise SystemExit(128 + signum)


def main() -> int:
    settings = Settings.from_env()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    background = _background_cpu()
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    children = Children()
    # Undone in reverse order: processes first, then the database, then the directory.
    with contextlib.ExitStack() as cleanup:
        directory = Path(tempfile.mkdtemp(prefix="nlr-bench-"))
        cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
        try:
            database_url = None
            if settings.postgres_admin_url is not None:
                database_url = cleanup.enter_context(
                    environment.postgres_database(settings.postgres_admin_url)
                )
            cleanup.callback(children.stop_all)
            store, rows = Suite(settings, directory, children, database_url).run()
        except (ChildFailed, Unavailable) as error:
            progress(f"failed: {error}")
            return 1
        except psycopg.Error as error:
            progress(f"failed: PostgreSQL (BENCH_POSTGRES_URL): {error}")
            return 1
        except (KeyboardInterrupt, SystemExit):
            progress("interrupted: stopping every process and removing temporary data")
            raise
    run = report.RunDescription(
        started=started,
        store=store,
        borrowers=settings.borrowers,
        seconds=settings.seconds,
        warmup_seconds=WARMUP_SECONDS,
        background_cpu=background,
        concurrency=f"{UNARY_CONCURRENCY} in flight for GetBorrower and VerifyPin (and their "
        f"ceilings), {PASSWORD_CONCURRENCY} for VerifyPassword, {STORM_GET_CONCURRENCY} "
        "GetBorrower during the storm; one channel per load generator process",
        feed=f"{settings.feed.watchers:,} WatchChanges streams, {settings.feed.rate:g} "
        f"changes/s for {settings.seconds:g} s; catch-up over {settings.feed.entries:,} bulk "
        "entries",
    )
    text = report.markdown(run, rows, time.monotonic() - clock)
    path = report.write(run, text)
    print(text)
    print(f"written to {path.relative_to(_ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
