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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import grpc
import psycopg

# `make bench` runs this file as a script: the repository root (for bench.*) and tests/ (for the
# test harness the environment reuses) must be importable, as they are for mypy.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_ROOT), str(_ROOT / "tests")]

from bench import (  # noqa: E402
    environment,
    feed,
    login_timing,
    population,
    population_sync,
    report,
    workers,
)
from bench.cpu import machine_busy_seconds  # noqa: E402
from bench.empty_server import METHOD as EMPTY_METHOD  # noqa: E402
from bench.environment import Environment, RunningServer, Unavailable  # noqa: E402
from bench.feed import FeedSettings  # noqa: E402
from bench.legacy_export import Generator  # noqa: E402
from bench.load import LoadProcess, LoadResult, LoadSpec  # noqa: E402
from bench.pbkdf2_ceiling import Pbkdf2Result  # noqa: E402
from bench.population import SampleBorrower  # noqa: E402
from bench.processes import ChildFailed, Children, python_module, tail  # noqa: E402
from bench.report import Row  # noqa: E402
from bench.workers import WorkersResult  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402

from nlr.auth.v1 import authenticate_pb2  # noqa: E402
from nlr.registry.v1 import borrower_pb2, registry_service_pb2  # noqa: E402

GET_BORROWER = "/nlr.registry.v1.BorrowerRegistry/GetBorrower"
VERIFY_PIN = "/nlr.auth.v1.Authenticate/VerifyPin"
VERIFY_PASSWORD = "/nlr.auth.v1.Authenticate/VerifyPassword"
UPDATE_BORROWER = "/nlr.registry.v1.BorrowerRegistry/UpdateBorrower"

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


# Where `make bench` looks for PostgreSQL when BENCH_POSTGRES_URL and NLR_TEST_POSTGRES_URL
# are unset (the server CI and `make test` use).
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STORES = ("sqlite", "postgresql")
# The rows BENCH_ROWS may name (comma-separated) to measure only those; the import (with its
# PIN decryption's cost) and the database size are always measured, as every other row needs
# the register they fill.
ROW_KEYS = (
    "get",
    "floor",
    "get_by",
    "verify_pin",
    "login_timing",
    "verify_password",
    "storm",
    "update",
    "memory",
    "workers",
    "feed",
    "population",
)
# Borrowers the loads ask for (affiliated with the acting library, each with a Feide id).
SAMPLE_BORROWERS = 20_000
# UpdateBorrower requests made up front: enough for this many updates per second.
UPDATE_RATE_CAP = 2500
# DESIGN.md §9: 5 million borrowers imported in at most 10 minutes on SQLite.
NATIONAL_SCALE = 5_000_000
IMPORT_TARGET_PER_SECOND = NATIONAL_SCALE / 600
# BENCH_IMPORT_FORMAT: the export the import reads, the legacy server's SOAP answers (default)
# or JSON Lines.
IMPORT_FORMAT_NAMES = {"soap": "SOAP", "jsonl": "JSON Lines"}


@dataclass(frozen=True)
class Settings:
    borrowers: int
    seconds: float
    # The stores to run on, in order; PostgreSQL on a throwaway database made on this server.
    stores: tuple[str, ...]
    postgres_admin_url: str | None
    # Why PostgreSQL is left out of an automatic choice (None: it is not).
    postgres_skipped: str | None
    # The change feed: concurrent WatchChanges streams, entries in the catch-up library's feed,
    # and changes per second the writer makes while the streams watch.
    feed: FeedSettings
    # The rows to measure (BENCH_ROWS; all of ROW_KEYS by default).
    rows: tuple[str, ...] = ROW_KEYS
    # The export's format (BENCH_IMPORT_FORMAT): soap or jsonl.
    import_format: str = "soap"

    @property
    def partial(self) -> bool:
        return self.rows != ROW_KEYS

    @classmethod
    def from_env(cls) -> Settings:
        seconds = _positive("BENCH_SECONDS", "5", whole=False)
        stores, postgres_url, skipped = _stores()
        return cls(
            borrowers=int(_positive("BENCH_BORROWERS", "2000", whole=True)),
            seconds=seconds,
            stores=stores,
            postgres_admin_url=postgres_url,
            postgres_skipped=skipped,
            feed=FeedSettings(
                watchers=int(_positive("BENCH_WATCHERS", "1000", whole=True)),
                entries=int(_positive("BENCH_FEED_ENTRIES", "50000", whole=True)),
                rate=_positive("BENCH_FEED_RATE", "10", whole=False),
                seconds=seconds,
            ),
            rows=_rows(),
            import_format=_import_format(),
        )


def _import_format() -> str:
    choice = os.environ.get("BENCH_IMPORT_FORMAT", "").strip().lower() or "soap"
    if choice not in population.IMPORT_FORMATS:
        sys.exit(
            f"bench: BENCH_IMPORT_FORMAT must be {' or '.join(population.IMPORT_FORMATS)}, "
            f"got {choice!r}"
        )
    return choice


def _rows() -> tuple[str, ...]:
    chosen = [name.strip() for name in os.environ.get("BENCH_ROWS", "").split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ROW_KEYS]
    if unknown:
        raise SystemExit(f"BENCH_ROWS: unknown {', '.join(unknown)}; known: {', '.join(ROW_KEYS)}")
    return tuple(name for name in ROW_KEYS if name in chosen) if chosen else ROW_KEYS


def _stores() -> tuple[tuple[str, ...], str | None, str | None]:
    """BENCH_STORE (sqlite, postgresql, both; default: both if PostgreSQL answers), the
    PostgreSQL server's URL, and why PostgreSQL was left out of the default."""
    choice = os.environ.get("BENCH_STORE", "").strip().lower() or "auto"
    url = (
        os.environ.get("BENCH_POSTGRES_URL", "").strip()
        or os.environ.get("NLR_TEST_POSTGRES_URL", "").strip()
        or DEFAULT_POSTGRES_URL
    )
    if choice == "sqlite":
        return ("sqlite",), None, None
    if choice in ("postgresql", "both"):
        return (STORES if choice == "both" else ("postgresql",)), url, None
    if choice != "auto":
        sys.exit(f"bench: BENCH_STORE must be sqlite, postgresql or both, got {choice!r}")
    why = environment.postgres_unreachable(url)
    if why is not None:
        return ("sqlite",), None, f"PostgreSQL not reachable ({why}): SQLite only"
    return STORES, url, None


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
        scratch_url: Callable[[], contextlib.AbstractContextManager[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.children = children
        self.database_url = database_url
        # A second, throwaway database of the same store (the import's raw-insert ceiling).
        self.scratch_url = scratch_url
        self._specs = 0

    def run(self) -> tuple[str, list[Row]]:
        settings = self.settings
        progress(f"preparing a register in {self.directory}")
        env = environment.create(self.directory, self.database_url)
        generator = Generator(settings.borrowers, dt.date.today())
        population.register_libraries(env, generator)
        empty_bytes = population.database_bytes(env.database_url)
        rows = [self.populate(env, generator)]
        rows.append(self.pin_cost(env, generator))
        rows.append(self.database_size(env, generator, empty_bytes))
        sample = population.prepare_sample(env, generator, SAMPLE_BORROWERS)
        cards = [borrower.card_number for borrower in sample]
        register = environment.start_register(env, self.children)
        empty = environment.start_empty_server(env, self.children)
        progress(f"register on {register.target}, empty server on {empty.target}")
        idle_rss = environment.peak_rss_bytes(register.process.pid)

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

        wanted = settings.rows
        if "get" in wanted:
            rows.append(self.get_borrower(env, register, empty, cards))
        if "floor" in wanted:
            get_row = rows[-1] if "get" in wanted else None
            rows.append(self.floor(env, empty, cards, get_row))
        if "get_by" in wanted:
            rows += [
                self.get_borrower_by(env, register, empty, sample, "national id"),
                self.get_borrower_by(env, register, empty, sample, "identity"),
            ]
        if "verify_pin" in wanted:
            rows.append(self.verify_pin(env, register, empty, pins, pins_missing))
        if "login_timing" in wanted:
            rows.append(self.login_timing(env, register, pins, pins_missing))
        if "verify_password" in wanted:
            rows.append(self.verify_password(env, register, passwords, passwords_missing))
        if "storm" in wanted:
            rows.append(self.storm(env, register, cards, passwords, passwords_missing))
        if "update" in wanted:
            rows.append(self.update_borrower(env, register, empty, _update_cards(cards)))
        if "memory" in wanted:
            rows.append(_memory_row(register, idle_rss, settings.borrowers))
        # The workers row and the change feed start registers of their own on the same
        # database (the feed's after its bulk entries are written, so none follows those live).
        self.children.stop(register.process)
        self.children.stop(empty.process)
        if "workers" in wanted:
            rows.append(self.workers(env, cards))
        if "feed" in wanted:
            feed.prepare(env, cards, settings.feed, progress)
            rows += feed.rows(env, self.children, cards, settings.feed, progress)
        if "population" in wanted:
            # No register runs: the commands work on its database, against a fake of
            # Folkeregisteret and Maskinporten (bench/population_sync.py).
            rows += population_sync.rows(env, self.children, generator, progress)
        return env.store, rows

    def populate(self, env: Environment, generator: Generator) -> Row:
        """Puts the export's borrowers in the register by ``nlr-admin import`` (of the SOAP
        answers or JSON Lines, with the legacy PIN key), timed against a raw insert of as many
        minimal rows."""
        name = "Import (nlr-admin import)"
        count = generator.count
        file_format = self.settings.import_format
        format_name = IMPORT_FORMAT_NAMES[file_format]
        target = f"≥ {IMPORT_TARGET_PER_SECOND:,.0f}/s" if env.store == "sqlite" else "—"
        progress(f"writing a legacy export of {count:,} borrowers ({format_name})")
        started = time.perf_counter()
        export = population.export_file(env, generator, file_format)
        written = time.perf_counter() - started
        export_size = export.path.stat().st_size
        progress(f"  {export_size / 1e6:,.1f} MB in {written:.1f} s; measuring the raw insert")
        ceiling_seconds = self.raw_insert(generator)
        progress(f"importing {count:,} borrowers with nlr-admin import")
        result = population.run_import(env, export)
        rate = result.borrowers / result.seconds
        progress(f"  imported {result.borrowers:,} in {result.seconds:.1f} s: {rate:,.0f}/s")
        at_scale = (
            f"{result.seconds / 60:,.1f} min"
            if count >= NATIONAL_SCALE
            else f"5 M at this rate: {NATIONAL_SCALE / rate / 60:,.0f} min (estimate, not "
            "measured at 5 M)"
        )
        summary = result.summary or {}
        carried = int(summary.get("pins_carried_over", 0))
        notes = (
            f"{result.borrowers:,} of {count:,} records imported in {result.seconds:.1f} s from "
            f"the {format_name} export ({export_size / count:,.0f} bytes/borrower, "
            f"{len(generator.libraries)} libraries); PINs carried over: {carried:,} of the "
            f"export's {export.pins:,} (--legacy-pin-key-file); {at_scale}; ceiling: plain "
            f"executemany of minimal rows (borrower, card number, affiliation) for {count:,} "
            f"borrowers, {ceiling_seconds:.1f} s; CPU cores during the import: the command "
            f"with its workers {_cores(result.import_cores)} (of {CORES}), other "
            f"{_cores(result.other_cores)}"
        )
        notes = _disturbed(result.other_cores) + notes
        problems = _import_problems(result, export)
        if result.exit_status != 0 or result.borrowers != count:
            problems.insert(
                0,
                f"⚠ exit status {result.exit_status}, {count - result.borrowers:,} records not "
                f"imported: {tail(result.log, 3)}",
            )
        if problems:
            notes = f"{'; '.join(problems)}; {notes}"
            progress(f"  {'; '.join(problems)}")
        passed: bool | None = None
        if env.store == "sqlite":
            passed = rate >= IMPORT_TARGET_PER_SECOND and not problems
        else:
            notes += "; §9's import target is for SQLite"
            if problems:
                passed = False
        ceiling = count / ceiling_seconds
        return Row(name, rate, "borrowers/s", ceiling, rate / ceiling, target, passed, notes)

    def pin_cost(self, env: Environment, generator: Generator) -> Row:
        """The legacy PIN decryption (and the verifier made of it) per record, against the
        whole validation of the same records, in this process (population.pin_cost)."""
        file_format = self.settings.import_format
        progress("measuring the PIN decryption's share of the import's validation")
        busy_before, own_before, wall_before = (
            machine_busy_seconds(),
            time.process_time(),
            time.monotonic(),
        )
        cost = population.pin_cost(env, generator, file_format)
        busy_after, own_after = machine_busy_seconds(), time.process_time()
        other = None
        if busy_before is not None and busy_after is not None:
            wall = max(time.monotonic() - wall_before, 1e-9)
            other = max(0.0, (busy_after - busy_before - (own_after - own_before)) / wall)
        per_pin = cost.pin_us * cost.records / cost.with_pin if cost.with_pin else 0.0
        progress(
            f"  PINs {cost.pin_us:.1f} µs/record of the validation's {cost.validation_us:.1f}: "
            f"{cost.share:.3f}"
        )
        minutes = NATIONAL_SCALE / 1e6 / 60
        notes = (
            f"{_disturbed(other)}in the benchmark process, the fastest of "
            f"{population.PIN_COST_REPEATS} rounds over {cost.records:,} records of the export "
            f"spread evenly, {cost.with_pin:,} with a PIN; value: LegacyPins.decrypt + "
            f"PinVerifier.make per record ({per_pin:.1f} µs per PIN); ceiling: the whole "
            f"validation a worker of the import does per record (the "
            f"{'SOAP item' if file_format == 'soap' else 'JSON line'} parsed, parse_record with "
            f"its PIN and the national id's sealing, the verifier, the rows); ratio: the PINs' "
            f"share of it; at 5 M, "
            f"{cost.pin_us * minutes:.1f} of {cost.validation_us * minutes:.1f} CPU-minutes of "
            f"validation (spread over the import's workers; not the import's wall time)"
        )
        return Row(
            "Import: legacy PIN decryption, share of the validation",
            cost.pin_us,
            "µs/record",
            cost.validation_us,
            cost.share,
            "— (none in §9)",
            None,
            notes,
        )

    def raw_insert(self, generator: Generator) -> float:
        if self.scratch_url is None:
            url = f"sqlite:///{self.directory / 'raw-insert.db'}"
            seconds = population.raw_insert_seconds(url, generator, progress)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.directory / 'raw-insert.db'}{suffix}").unlink(missing_ok=True)
            return seconds
        with self.scratch_url() as url:
            return population.raw_insert_seconds(url, generator, progress)

    def database_size(self, env: Environment, generator: Generator, empty_bytes: int) -> Row:
        size = population.database_bytes(env.database_url)
        per_borrower = (size - empty_bytes) / generator.count
        what = (
            "file with its WAL after a checkpoint"
            if env.store == "sqlite"
            else "pg_total_relation_size over the register's tables"
        )
        return Row(
            "Database size per borrower",
            per_borrower,
            "bytes",
            None,
            None,
            "— (none in §9)",
            None,
            f"{size / 1e6:,.1f} MB for {generator.count:,} borrowers ({what}), less the "
            f"{empty_bytes / 1e6:,.1f} MB of the register before them; 5 M borrowers: about "
            f"{per_borrower * NATIONAL_SCALE / 1e9:,.1f} GB (estimate)",
        )

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

    def floor(
        self, env: Environment, empty: RunningServer, cards: list[str], get_row: Row | None
    ) -> Row:
        """GetBorrower on the floor server (bench/floor_server.py): the stack's least, against
        the same ceiling, so the register's own cost shows as the distance from it."""
        floor_server = environment.start_floor_server(env, self.children)
        try:
            payloads = _get_payloads(cards, seed=7)
            ceiling = self.measure("ceiling for the floor", env, empty, EMPTY_METHOD, payloads)
            target = self.measure(
                "the GetBorrower floor", env, floor_server, GET_BORROWER, payloads
            )
        finally:
            self.children.stop(floor_server.process)
        register = ""
        if get_row is not None and get_row.value and target.requests_per_second > 0:
            share = get_row.value / target.requests_per_second
            register = f"the register's GetBorrower above: {share:.2f} of this floor's req/s; "
        return _ratio_row(
            "GetBorrower floor: TLS, one statement, one audit row (bench/floor_server.py)",
            target,
            ceiling,
            minimum=None,
            ceiling_note=f"{register}no access checks, view, decryption or limits",
        )

    def get_borrower_by(
        self,
        env: Environment,
        register: RunningServer,
        empty: RunningServer,
        sample: list[SampleBorrower],
        key: str,
    ) -> Row:
        """GetBorrower by national id or by Feide identity; its ceiling, the empty server with
        the same requests, measured right before it."""
        requests = [
            registry_service_pb2.GetBorrowerRequest(national_id=borrower.national_id)
            if key == "national id"
            else registry_service_pb2.GetBorrowerRequest(
                identity=borrower_pb2.IdentityKey(
                    kind=borrower_pb2.IDENTITY_KIND_FEIDE, value=borrower.feide
                )
            )
            for borrower in sample
        ]
        payloads = [request.SerializeToString() for request in requests]
        ceiling = self.measure(
            f"ceiling for GetBorrower by {key}", env, empty, EMPTY_METHOD, payloads
        )
        target = self.measure(f"GetBorrower by {key}", env, register, GET_BORROWER, payloads)
        return _ratio_row(f"GetBorrower by {key}", target, ceiling, minimum=None)

    def update_borrower(
        self, env: Environment, register: RunningServer, empty: RunningServer, cards: list[str]
    ) -> Row:
        """UpdateBorrower of the e-mail address with the right etag, each request once: the
        borrowers in turn, round after round, each round one version further. Its ceiling, the
        empty server with the same requests, is measured right before it."""
        current = population.versions(env.database_url, cards)
        needed = int(UPDATE_RATE_CAP * (WARMUP_SECONDS + self.settings.seconds))
        payloads: list[bytes] = []
        round_number = 0
        while len(payloads) < needed:
            for card in cards:
                request = registry_service_pb2.UpdateBorrowerRequest(
                    borrower=borrower_pb2.Borrower(
                        card_number=card,
                        etag=f'"{current[card] + round_number}"',
                        email=f"bench.{card.lower()}.{round_number}@example.org",
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["email"]),
                )
                payloads.append(request.SerializeToString())
            round_number += 1
        ceiling = self.measure(
            "ceiling for UpdateBorrower", env, empty, EMPTY_METHOD, payloads[:needed]
        )
        target = self.measure(
            "UpdateBorrower", env, register, UPDATE_BORROWER, payloads[:needed], once=True
        )
        return _ratio_row(
            "UpdateBorrower (e-mail, with etag)",
            target,
            ceiling,
            minimum=None,
            ceiling_note=f"{len(cards):,} borrowers in turn",
        )

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

    def login_timing(
        self,
        env: Environment,
        register: RunningServer,
        pins: dict[str, str],
        missing: str | None,
    ) -> Row:
        """Median VerifyPin latency of unknown cards over that of first wrong PINs on
        registered cards, one call at a time, interleaved (bench/login_timing.py)."""
        name = "VerifyPin: unknown card vs first wrong PIN"
        target = "0.90 to 1.10"
        if missing is not None:
            return report.unavailable_row(name, "ms", target, missing)
        progress(f"measuring {len(pins)} pairs: unknown cards and first wrong PINs, in turn")
        with grpc.secure_channel(register.target, env.credentials("auth")) as channel:
            result = login_timing.measure(channel, pins)
        ratio = result.ratio
        unknown, registered = result.unknown_ms, result.registered_ms
        notes = (
            f"{len(unknown)} pairs after {login_timing.WARMUP_PAIRS} not counted, one call at a "
            f"time, alternating; value: unknown cards' median (p10 {_quantile(unknown, 0.1)}, "
            f"p90 {_quantile(unknown, 0.9)} ms), ceiling: first wrong PINs' median (p10 "
            f"{_quantile(registered, 0.1)}, p90 {_quantile(registered, 0.9)} ms)"
        )
        if result.unexpected:
            notes = f"⚠ answers other than UNAUTHENTICATED: {result.unexpected}; {notes}"
        progress(f"  unknown / first wrong PIN: {ratio:.3f}")
        return Row(
            name,
            statistics.median(unknown),
            "ms",
            statistics.median(registered),
            ratio,
            target,
            0.9 <= ratio <= 1.1 and not result.unexpected,
            notes,
        )

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
            self.load_spec(
                env,
                register,
                VERIFY_PASSWORD,
                _password_payloads(passwords),
                "auth",
                PASSWORD_CONCURRENCY,
                metadata=[],
            )
        )
        gets_load = self.start_load(
            self.load_spec(
                env,
                register,
                GET_BORROWER,
                _get_payloads(cards, seed=11),
                "ils",
                STORM_GET_CONCURRENCY,
                metadata=environment.LIBRARY_METADATA,
            )
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

    def workers(self, env: Environment, cards: list[str]) -> Row:
        """GetBorrower by card number (the `get` row's requests) against a register of
        NLR_WORKERS=1, then one of NLR_WORKERS=2, each started for its load alone."""
        payloads = _get_payloads(cards, seed=7)

        def spec_for(server: RunningServer) -> LoadSpec:
            return self.load_spec(
                env,
                server,
                GET_BORROWER,
                payloads,
                "ils",
                UNARY_CONCURRENCY,
                metadata=environment.LIBRARY_METADATA,
            )

        results = []
        for count in (1, 2):
            progress(
                f"measuring GetBorrower against NLR_WORKERS={count} ({workers.LOAD_PROCESSES} "
                f"load generators, {UNARY_CONCURRENCY} in flight in all)"
            )
            result = workers.measure(env, self.children, count, spec_for, progress)
            _show_workers(result)
            results.append(result)
        return _workers_row(*results)

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
        once: bool = False,
    ) -> LoadResult:
        # Registry calls name the acting library; Authenticate calls and their ceiling do not.
        metadata = environment.LIBRARY_METADATA if role == "ils" else []
        progress(f"measuring {label} ({concurrency} in flight)")
        load = self.start_load(
            self.load_spec(
                env, server, method, payloads, role, concurrency, metadata=metadata, once=once
            )
        )
        result = load.result()
        _show(label, result)
        return result

    def start_load(self, spec: LoadSpec) -> LoadProcess:
        """A load-generator process of its own for ``spec`` (made by load_spec)."""
        self._specs += 1
        return LoadProcess(self.children, spec, self.directory / f"load-{self._specs}.json")

    def load_spec(
        self,
        env: Environment,
        server: RunningServer,
        method: str,
        payloads: list[bytes],
        role: str,
        concurrency: int,
        *,
        metadata: list[tuple[str, str]],
        once: bool = False,
    ) -> LoadSpec:
        cert, key = env.client_certificate(role)
        return LoadSpec(
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
            once=once,
        )

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


def _import_problems(result: population.ImportResult, export: population.Export) -> list[str]:
    """What the import's summary shows went wrong with the generated records (each ⚠): every
    record must import, with no notice, and every PIN must come over."""
    summary = result.summary
    if summary is None:
        return ["⚠ no summary from nlr-admin import --json"]
    problems = []
    rejected = int(summary.get("rejected", 0))
    with_notices = int(summary.get("imported_with_notices", 0))
    if rejected or with_notices:
        first = _first_reasons(Path(str(summary.get("rejects_file", ""))))
        problems.append(
            f"⚠ {rejected:,} records rejected, {with_notices:,} imported with notices "
            f"(first in the reject file: {first})"
        )
    carried = int(summary.get("pins_carried_over", 0))
    if carried != export.pins:
        problems.append(
            f"⚠ {carried:,} PINs carried over of {export.pins:,} (not decrypted: "
            f"{summary.get('pins_not_decrypted')}, skipped: "
            f"{summary.get('pins_skipped_without_key')})"
        )
    return problems


def _first_reasons(rejects: Path, count: int = 3) -> str:
    """The first reasons of the reject file (which never quote a value)."""
    try:
        with rejects.open(encoding="utf-8") as stream:
            lines = [line.strip() for _, line in zip(range(count), stream, strict=False)]
    except OSError:
        return "unreadable"
    return " | ".join(lines) or "empty"


def _update_cards(cards: list[str]) -> list[str]:
    """The borrowers UpdateBorrower goes round: those not given a PIN by SetPin (most have
    one from the import), unless too few are left for a borrower's next update to wait until
    its last one is answered."""
    rest = cards[PIN_BORROWERS:]
    return rest if len(rest) >= 1000 else cards


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


def _ratio_row(
    name: str,
    target: LoadResult,
    ceiling: LoadResult,
    *,
    minimum: float | None,
    ceiling_note: str = "",
) -> Row:
    notes = (
        f"{_disturbed(target.other_cpu, ceiling.other_cpu)}"
        f"{UNARY_CONCURRENCY} in flight; {_latencies(target)} "
        f"(ceiling {_ms(ceiling.p50_ms)} / {_ms(ceiling.p99_ms)}"
        f"{'; ' + ceiling_note if ceiling_note else ''}); {_cpu(target)}"
    )
    if minimum is not None:
        return report.ratio_row(
            name,
            target.requests_per_second,
            ceiling.requests_per_second,
            "req/s",
            minimum,
            failures=target.failed,
            notes=notes,
            cpu_per_call_us=target.server_cpu_per_call_us,
            ceiling_cpu_per_call_us=ceiling.server_cpu_per_call_us,
        )
    if target.failed:
        notes = f"{target.failed} calls failed {target.failures}; {notes}"
    value, limit = target.requests_per_second, ceiling.requests_per_second
    return Row(
        name,
        value,
        "req/s",
        limit,
        value / limit if limit > 0 else 0.0,
        "— (none in §9)",
        False if target.failed else None,
        notes,
        target.server_cpu_per_call_us,
        ceiling.server_cpu_per_call_us,
    )


def _workers_row(one: WorkersResult, two: WorkersResult) -> Row:
    """N=2 against N=1: the scaling, each one's server CPU per call, and how far two workers
    could go at all on this machine, where the load generators share its cores."""
    ceiling = workers.ratio_ceiling(one, CORES, two.workers)
    ratio = two.requests_per_second / one.requests_per_second if one.requests_per_second else 0.0
    failures = {
        code: one.failures.get(code, 0) + two.failures.get(code, 0)
        for code in one.failures | two.failures
    }
    spread = []
    for result in (one, two):
        held = "+".join(str(count) for count in result.connections)
        again = f", load generators started {result.attempts} times" if result.attempts > 1 else ""
        uneven = "" if result.even else " ⚠ uneven"
        late = "" if result.aligned else " ⚠ windows not aligned"
        spread.append(f"N={result.workers} {held}{uneven}{late}{again}")
    busy = (
        "?"
        if one.server_cpu is None or one.client_cpu is None
        else f"{one.server_cpu + one.client_cpu:.2f}"
    )
    reach = "?" if ceiling is None else f"{ceiling:.2f}"
    notes = (
        f"{_disturbed(one.other_cpu, two.other_cpu)}"
        f"value: NLR_WORKERS=2 (a supervisor and 2 workers), ceiling: NLR_WORKERS=1, each a "
        f"register of its own on the database, with the get row's requests from "
        f"{workers.LOAD_PROCESSES} load-generator processes ({UNARY_CONCURRENCY} in flight in "
        f"all), one channel (TCP connection) each, their windows together, their calls summed; "
        f"connections per worker: {', '.join(spread)}; server CPU per call: every process of "
        f"the register (supervisor and workers); p50 / p99 of the slower load generator: N=1 "
        f"{_ms(one.p50_ms)} / {_ms(one.p99_ms)}, N=2 {_ms(two.p50_ms)} / {_ms(two.p99_ms)}; "
        f"CPU cores at N=1 / N=2: server {_cores(one.server_cpu)} / {_cores(two.server_cpu)}, "
        f"load generators {_cores(one.client_cpu)} / {_cores(two.client_cpu)}, other "
        f"{_cores(one.other_cpu)} / {_cores(two.other_cpu)}; on this {CORES}-core machine the "
        f"load generators share the cores with the workers, so {two.workers:.1f} is out of "
        f"reach: at N=1 the register and the load generators kept {busy} cores busy, so with "
        f"every core busy at the same CPU per call N=2 reaches at most {CORES} / {busy} = "
        f"{reach}, less what other processes take (on PostgreSQL the database's among them); "
        f"with the load generators on cores of their own: {two.workers:.1f}"
    )
    if failures:
        notes = f"{sum(failures.values())} calls failed {failures}; {notes}"
    return Row(
        "GetBorrower by card number, NLR_WORKERS=2 against 1",
        two.requests_per_second,
        "req/s",
        one.requests_per_second,
        ratio,
        f"— (none in §9; at most {reach} here)",
        False if failures else None,
        notes,
        two.server_cpu_per_call_us,
        one.server_cpu_per_call_us,
    )


def _memory_row(register: RunningServer, idle_rss: int | None, borrowers: int) -> Row:
    """The register's peak RSS after every load above, per size (flat: the same at any size)."""
    peak = environment.peak_rss_bytes(register.process.pid)
    idle = "?" if idle_rss is None else f"{idle_rss / 2**20:,.0f} MiB"
    return Row(
        "Server peak RSS (VmHWM)",
        None if peak is None else peak / 2**20,
        "MiB",
        None,
        None,
        "flat as the register grows",
        None,
        f"after all the loads above, at {borrowers:,} borrowers (peak at start-up: {idle}); "
        "compare the results files of other sizes: bench/results/*-<store>-<borrowers>.md",
    )


def _quantile(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.2f}"


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


def _show_workers(result: WorkersResult) -> None:
    held = "+".join(str(count) for count in result.connections)
    failed = f", {result.failed} failed {result.failures}" if result.failed else ""
    per_call = result.server_cpu_per_call_us
    progress(
        f"  NLR_WORKERS={result.workers}: {result.requests_per_second:,.1f}/s, connections per "
        f"worker {held}, server CPU {_cores(result.server_cpu)} cores "
        f"({'?' if per_call is None else f'{per_call:,.0f}'} µs/call), load generators "
        f"{_cores(result.client_cpu)}, other {_cores(result.other_cpu)}{failed}"
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
    if settings.postgres_skipped is not None:
        progress(settings.postgres_skipped)
    status = 0
    for store in settings.stores:
        status = max(status, run_store(settings, store))
    return status


def run_store(settings: Settings, store: str) -> int:
    """The whole suite on one store; writes its results file."""
    background = _background_cpu()
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    children = Children()
    progress(f"--- {store}, {settings.borrowers:,} borrowers ---")
    # Undone in reverse order: processes first, then the database, then the directory.
    with contextlib.ExitStack() as cleanup:
        directory = Path(tempfile.mkdtemp(prefix="nlr-bench-"))
        cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
        try:
            database_url = None
            scratch = None
            admin_url = settings.postgres_admin_url
            if store == "postgresql" and admin_url is not None:
                database_url = cleanup.enter_context(environment.postgres_database(admin_url))

                def scratch() -> contextlib.AbstractContextManager[str]:
                    assert admin_url is not None
                    return environment.postgres_database(admin_url)

            cleanup.callback(children.stop_all)
            store_name, rows = Suite(settings, directory, children, database_url, scratch).run()
        except (ChildFailed, Unavailable, RuntimeError) as error:
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
        store=store_name,
        borrowers=settings.borrowers,
        seconds=settings.seconds,
        warmup_seconds=WARMUP_SECONDS,
        background_cpu=background,
        concurrency=f"{UNARY_CONCURRENCY} in flight for GetBorrower, UpdateBorrower and "
        f"VerifyPin (and their ceilings), {PASSWORD_CONCURRENCY} for VerifyPassword, "
        f"{STORM_GET_CONCURRENCY} GetBorrower during the storm; one channel per load generator "
        "process",
        feed=f"{settings.feed.watchers:,} WatchChanges streams, {settings.feed.rate:g} "
        f"changes/s for {settings.seconds:g} s; catch-up over {settings.feed.entries:,} bulk "
        "entries",
        stores_note=settings.postgres_skipped or "",
    )
    text = report.markdown(run, rows, time.monotonic() - clock)
    path = report.write(run, text, settings.rows if settings.partial else ())
    print(text)
    print(f"written to {path.relative_to(_ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
