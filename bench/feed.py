"""The change feed's figures (DESIGN.md §9): WatchChanges fan-out latency and catch-up rate.

Fan-out: ``watchers`` WatchChanges streams on one register, spread over three libraries, in a
few client processes; a writer changes borrowers affiliated with all three libraries at a steady
rate through UpdateBorrower, so every stream must receive every change. Catch-up: one reader
replays a library's feed of ``entries`` entries (written in bulk by bench.feed_data) from 0, with
ListChanges and with WatchChanges, against a ceiling of plain SQL reading the same rows.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from bench import feed_data
from bench.cpu import cpu_seconds, machine_busy_seconds
from bench.environment import Environment, RunningServer, start_register
from bench.feed_client import (
    CatchUpResult,
    CatchUpSpec,
    WatcherProcess,
    WatchResult,
    WatchSpec,
    run_catch_up,
)
from bench.load import percentile
from bench.processes import ChildFailed, Children
from bench.report import Row
from google.protobuf import field_mask_pb2

from nlr.registry.v1 import borrower_pb2, registry_service_pb2, registry_service_pb2_grpc
from register_harness import BERGEN, LIBRARY_CODES, OSLO, TROMSO

# The watched libraries (all the benchmark vendor's); stream i watches the (i % 3)th.
LIBRARIES = [OSLO, BERGEN, TROMSO]
# The catch-up library: every loaded borrower is affiliated with it.
CATCH_UP_LIBRARY = OSLO
# The writer changes these borrowers in turn; each is affiliated with every watched library.
WRITER_BORROWERS = 20
# Streams per mutual-TLS connection: an ILS deployment serving a few libraries.
STREAMS_PER_CHANNEL = 10
WATCH_PROCESSES = max(2, os.cpu_count() or 1)
# The target: a change reaches every watcher within this (p99).
TARGET_MS = 1000.0
# How long the streams may take after the last change before the undelivered count as missing.
DELIVERY_TIMEOUT_SECONDS = 30.0
PRIMING_TIMEOUT_SECONDS = 120.0
# Past this many cores busy with other processes during a measurement, the row says so.
DISTURBANCE_CORES = 0.15


@dataclass(frozen=True)
class FeedSettings:
    watchers: int
    entries: int
    # Changes per second the writer makes, for ``seconds``.
    rate: float
    seconds: float


Progress = Callable[[str], None]


def prepare(
    environment: Environment, cards: list[str], settings: FeedSettings, progress: Progress
) -> None:
    """The feed's data, with no register running (so none follows the bulk entries live)."""
    progress(
        f"affiliating {WRITER_BORROWERS} borrowers with {len(LIBRARIES)} libraries; "
        f"appending {settings.entries:,} feed entries for {CATCH_UP_LIBRARY}"
    )
    feed_data.affiliate(
        environment,
        cards[:WRITER_BORROWERS],
        [library for library in LIBRARIES if library != OSLO],
        dt.datetime.now(dt.UTC),
    )
    feed_data.append_entries(
        environment.database_url,
        CATCH_UP_LIBRARY,
        settings.entries,
        lambda done: progress(f"  {done:,} feed entries"),
    )


def rows(
    environment: Environment,
    children: Children,
    cards: list[str],
    settings: FeedSettings,
    progress: Progress,
) -> list[Row]:
    """Starts a register on the prepared feed, measures fan-out then catch-up."""
    register = start_register(environment, children)
    progress(f"register on {register.target} for the change feed")
    try:
        fan_out = _FanOut(environment, children, register, cards[:WRITER_BORROWERS], settings)
        result = [fan_out.measure(progress)]
    except (grpc.RpcError, ChildFailed) as error:
        # A call of the writer failed, or the streams never all got going: a failure of the
        # feed, shown in its row; the catch-up is measured all the same.
        if isinstance(error, grpc.Call):
            why = f"a call failed: {error.code().name}: {error.details()}"
        else:
            why = str(error).splitlines()[0]
        progress(f"  WatchChanges fan-out failed: {why}")
        result = [
            Row(
                f"WatchChanges: commit to delivery, {settings.watchers} streams",
                None,
                "ms (p99)",
                None,
                None,
                f"< {TARGET_MS:g} ms",
                False,
                why,
            )
        ]
    result += _catch_up(environment, children, register, progress)
    children.stop(register.process)
    return result


def _metadata(library: str) -> tuple[tuple[str, str], ...]:
    return (("nlr-library-number", library), ("nlr-library-code", LIBRARY_CODES[library]))


class _FanOut:
    def __init__(
        self,
        environment: Environment,
        children: Children,
        register: RunningServer,
        cards: list[str],
        settings: FeedSettings,
    ) -> None:
        self.environment = environment
        self.children = children
        self.register = register
        self.settings = settings
        self.channel = grpc.secure_channel(register.target, environment.credentials("ils"))
        self.stub = registry_service_pb2_grpc.BorrowerRegistryStub(self.channel)
        self.cards = cards
        self.etags = {
            card: self.stub.GetBorrower(
                registry_service_pb2.GetBorrowerRequest(card_number=card),
                metadata=_metadata(OSLO),
                timeout=30,
            ).borrower.etag
            for card in cards
        }
        self.changes = 0
        self._pending: dict[str, grpc.Future[Any]] = {}
        # How long each UpdateBorrower took.
        self.calls: list[_WriterCall] = []

    def head(self) -> int:
        """The feed's head, as a library's full sync reports it."""
        response = self.stub.ListAffiliatedBorrowers(
            registry_service_pb2.ListAffiliatedBorrowersRequest(page_size=1),
            metadata=_metadata(OSLO),
            timeout=30,
        )
        return int(response.cursor)

    def change(self) -> None:
        """Starts one UpdateBorrower (a new e-mail address) and returns at once, so the writer
        keeps its rate however slow the answers; a borrower's previous change is finished
        first, since the next one needs the etag it returns."""
        card = self.cards[self.changes % len(self.cards)]
        self.changes += 1
        self._finish(card)
        request = registry_service_pb2.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(
                card_number=card, etag=self.etags[card], email=f"kari.{self.changes}@example.org"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["email"]),
        )
        sent = time.time()
        call = self.stub.UpdateBorrower.future(request, metadata=_metadata(OSLO), timeout=30)
        # Called on gRPC's thread as soon as the answer is in; list.append is atomic.
        call.add_done_callback(lambda done: self.calls.append(_WriterCall.of(sent, done)))
        self._pending[card] = call

    def _finish(self, card: str) -> None:
        call = self._pending.pop(card, None)
        if call is not None:
            # A failed change fails the benchmark: its streams would wait for it in vain.
            self.etags[card] = call.result().borrower.etag

    def finish_all(self) -> None:
        for card in list(self._pending):
            self._finish(card)

    def expected(self, after: int, through: int) -> dict[str, list[int]]:
        """The sequences each library's streams must receive: after < sequence <= through."""
        expected: dict[str, list[int]] = {}
        for library in LIBRARIES:
            sequences: list[int] = []
            cursor, more = after, True
            while more and cursor < through:
                page = self.stub.ListChanges(
                    registry_service_pb2.ListChangesRequest(after=cursor, page_size=1000),
                    metadata=_metadata(library),
                    timeout=60,
                )
                sequences += [c.sequence for c in page.changes if c.sequence <= through]
                cursor, more = page.cursor, page.more
            expected[library] = sequences
        return expected

    def measure(self, progress: Progress) -> Row:
        settings = self.settings
        watchers = self._start_watchers(progress)
        try:
            self._prime(watchers, progress)
            after = self.head()
            count = max(1, round(settings.rate * settings.seconds))
            progress(
                f"measuring WatchChanges fan-out: {count} changes at {settings.rate:g}/s, "
                f"{settings.watchers} streams"
            )
            self.calls.clear()
            before = self._cpu(watchers)
            started = time.perf_counter()
            for index in range(count):
                time.sleep(max(0.0, started + index / settings.rate - time.perf_counter()))
                self.change()
            issued = time.perf_counter() - started
            self.finish_all()
            elapsed = time.perf_counter() - started
            cpu = _cores(before, self._cpu(watchers), elapsed)
            # The rate the writer kept: one change every 1/rate seconds from the first on.
            rate = count / (issued + 1 / settings.rate)
            through = self.head()
            expected = self.expected(after, through)
            for watcher in watchers:
                watcher.send({"expected": expected, "timeout_seconds": DELIVERY_TIMEOUT_SECONDS})
            results = [w.result(DELIVERY_TIMEOUT_SECONDS + 60) for w in watchers]
        finally:
            for watcher in watchers:
                watcher.stop()
            self.channel.close()
        return _fan_out_row(settings, results, rate, self.calls, cpu, progress)

    def _start_watchers(self, progress: Progress) -> list[WatcherProcess]:
        settings = self.settings
        head = self.head()
        processes = min(WATCH_PROCESSES, settings.watchers)
        progress(
            f"opening {settings.watchers} WatchChanges streams in {processes} processes, "
            f"{STREAMS_PER_CHANNEL} per connection"
        )
        cert, key = self.environment.client_certificate("ils")
        watchers: list[WatcherProcess] = []
        first = 0
        for index in range(processes):
            streams = settings.watchers // processes + (
                1 if index < settings.watchers % processes else 0
            )
            spec = WatchSpec(
                target=self.register.target,
                ca=str(self.environment.pki.ca_cert),
                cert=str(cert),
                key=str(key),
                libraries=[(library, LIBRARY_CODES[library]) for library in LIBRARIES],
                streams=streams,
                first_stream=first,
                after=head,
                streams_per_channel=STREAMS_PER_CHANNEL,
            )
            first += streams
            spec_file = self.environment.directory / f"watch-{index}.json"
            watchers.append(WatcherProcess(self.children, spec, spec_file))
        try:
            for watcher in watchers:
                watcher.wait_for("open", PRIMING_TIMEOUT_SECONDS)
        except BaseException:
            for watcher in watchers:
                watcher.stop()
            raise
        return watchers

    def _prime(self, watchers: list[WatcherProcess], progress: Progress) -> None:
        """Changes until every stream has received one: each is then subscribed live."""
        started = time.monotonic()
        waiting = list(watchers)
        while waiting:
            if time.monotonic() - started > PRIMING_TIMEOUT_SECONDS:
                raise ChildFailed(
                    f"WatchChanges: not every stream received a change within "
                    f"{PRIMING_TIMEOUT_SECONDS:g} s"
                )
            self.change()
            self.finish_all()
            time.sleep(0.25)
            waiting = [watcher for watcher in waiting if not watcher.poll("primed")]
        progress(
            f"  every stream is receiving ({self.changes} priming changes, "
            f"{time.monotonic() - started:.1f} s)"
        )

    def _cpu(self, watchers: list[WatcherProcess]) -> tuple[float | None, ...]:
        pids = [self.register.process.pid] + [w.process.pid for w in watchers]
        return (
            cpu_seconds(pids[0]),
            _sum(cpu_seconds(pid) for pid in pids[1:]),
            machine_busy_seconds(),
        )


def _sum(values: Iterable[float | None]) -> float | None:
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


@dataclass(frozen=True)
class _Cores:
    server: float | None
    clients: float | None
    other: float | None

    def describe(self, clients: str) -> str:
        return (
            f"CPU cores: server {_fmt(self.server)}, {clients} {_fmt(self.clients)}, "
            f"other {_fmt(self.other)}"
        )


def _cores(
    before: tuple[float | None, ...], after: tuple[float | None, ...], seconds: float
) -> _Cores:
    used = [
        None if b is None or a is None else (a - b) / seconds
        for b, a in zip(before, after, strict=True)
    ]
    server, clients, machine = used
    other = None
    if server is not None and clients is not None and machine is not None:
        other = max(0.0, machine - server - clients)
    return _Cores(server, clients, other)


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _fan_out_row(
    settings: FeedSettings,
    results: list[WatchResult],
    rate: float,
    calls: list[_WriterCall],
    cpu: _Cores,
    progress: Progress,
) -> Row:
    latencies = sorted(latency for result in results for latency in result.latencies_ms)
    last: dict[str, float] = {}
    for result in results:
        for sequence, milliseconds in result.last_delivery_ms.items():
            last[sequence] = max(last.get(sequence, 0.0), milliseconds)
    reached_all = sorted(last.values())
    expected = sum(result.expected for result in results)
    delivered = sum(result.delivered for result in results)
    duplicates = sum(result.duplicates for result in results)
    out_of_order = sum(result.out_of_order for result in results)
    ended: dict[str, int] = {}
    for result in results:
        for code, count in result.ended.items():
            ended[code] = ended.get(code, 0) + count
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    complete = delivered == expected and not duplicates and not out_of_order and not ended
    problems = []
    if delivered != expected:
        problems.append(f"⚠ {expected - delivered:,} deliveries missing")
    if duplicates or out_of_order:
        problems.append(f"⚠ {duplicates} duplicates, {out_of_order} out of order")
    if ended:
        problems.append(f"⚠ streams ended early: {ended}")
    if cpu.other is not None and cpu.other >= DISTURBANCE_CORES:
        problems.append(f"⚠ other processes used {cpu.other:.2f} cores meanwhile")
    notes = "; ".join(
        [
            *problems,
            f"p50 {_ms(p50)}, max {_ms(latencies[-1] if latencies else None)}",
            f"delivered {delivered:,} of {expected:,} (stream, change) pairs",
            f"last stream to get a change: p99 {_ms(percentile(reached_all, 0.99))}, "
            f"max {_ms(reached_all[-1] if reached_all else None)}",
            f"{len(last)} changes at {rate:.1f}/s to borrowers of all {len(LIBRARIES)} "
            f"libraries; {settings.watchers} streams over the {len(LIBRARIES)}, "
            f"{STREAMS_PER_CHANNEL} per connection, {len(results)} client processes",
            _describe_calls(calls),
            cpu.describe("watchers"),
        ]
    )
    progress(f"  WatchChanges fan-out: p50 {_ms(p50)}, p99 {_ms(p99)}; {notes}")
    return Row(
        f"WatchChanges: commit to delivery, {settings.watchers} streams",
        p99,
        "ms (p99)",
        None,
        None,
        f"< {TARGET_MS:g} ms",
        p99 is not None and p99 < TARGET_MS and complete,
        notes,
    )


@dataclass(frozen=True)
class _WriterCall:
    """One UpdateBorrower of the writer, on the wall clock: sent, changed (the borrower's
    ``update_time``, which is also the change's ``change_time``), answered."""

    sent: float
    changed: float
    answered: float

    @classmethod
    def of(cls, sent: float, call: grpc.Future[Any]) -> _WriterCall:
        answered = time.time()
        try:
            update_time = call.result().borrower.update_time
        except grpc.RpcError:
            return cls(sent, math.nan, answered)
        return cls(sent, update_time.seconds + update_time.nanos / 1e9, answered)


def _describe_calls(calls: list[_WriterCall]) -> str:
    """How long the writer's calls took, before and after the change was made."""

    def p50(values: list[float]) -> str:
        return _ms(_seconds_ms(percentile(sorted(v for v in values if not math.isnan(v)), 0.5)))

    return (
        f"UpdateBorrower p50 {p50([c.answered - c.sent for c in calls])} (sent to change_time "
        f"{p50([c.changed - c.sent for c in calls])}, change_time to answer "
        f"{p50([c.answered - c.changed for c in calls])})"
    )


def _seconds_ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def _catch_up(
    environment: Environment, children: Children, register: RunningServer, progress: Progress
) -> list[Row]:
    through = feed_data.last_sequence(environment.database_url, CATCH_UP_LIBRARY)
    progress(f"measuring the catch-up ceiling: plain SQL reads of {CATCH_UP_LIBRARY}'s feed")
    ceiling = feed_data.raw_read(environment.database_url, CATCH_UP_LIBRARY, through)
    progress(
        f"  raw SQL: {ceiling.entries:,} entries in {ceiling.seconds:.1f} s, "
        f"{ceiling.entries_per_second:,.0f}/s"
    )
    progress("measuring catch-up with ListChanges, then WatchChanges, from 0")
    cert, key = environment.client_certificate("ils")
    spec = CatchUpSpec(
        target=register.target,
        ca=str(environment.pki.ca_cert),
        cert=str(cert),
        key=str(key),
        library=(CATCH_UP_LIBRARY, LIBRARY_CODES[CATCH_UP_LIBRARY]),
        through=through,
        page_size=feed_data.PAGE_SIZE,
        server_pid=register.process.pid,
    )
    result: CatchUpResult = run_catch_up(children, spec, environment.directory / "catch-up.json")
    rows = []
    for name, replay in (
        (f"Catch-up with ListChanges (page_size {feed_data.PAGE_SIZE})", result.list_changes),
        ("Catch-up with WatchChanges", result.watch_changes),
    ):
        missing = ceiling.entries != replay.entries
        million = 1_000_000 / replay.entries_per_second if replay.entries else math.inf
        notes = (
            f"{f'⚠ the ceiling read {ceiling.entries:,}; ' if missing else ''}"
            f"{replay.entries:,} entries from 0 in {replay.seconds:.1f} s "
            f"(1 million: {million / 60:.1f} min); ceiling: plain SQL, the same entries with "
            f"their borrowers, affiliations, guardian links and identities, pages of "
            f"{feed_data.PAGE_SIZE}, {ceiling.seconds:.1f} s; CPU cores: server "
            f"{_fmt(replay.server_cpu)}, reader {_fmt(replay.client_cpu)}, other "
            f"{_fmt(replay.other_cpu)}"
        )
        if replay.other_cpu is not None and replay.other_cpu >= DISTURBANCE_CORES:
            notes = f"⚠ other processes used {replay.other_cpu:.2f} cores meanwhile; {notes}"
        progress(f"  {name}: {replay.entries_per_second:,.0f} entries/s; {notes}")
        value = replay.entries_per_second
        ratio = value / ceiling.entries_per_second if ceiling.entries_per_second else None
        rows.append(
            Row(
                name,
                value,
                "entries/s",
                ceiling.entries_per_second,
                ratio,
                "— (none in §9)",
                None if not missing else False,
                notes,
            )
        )
    return rows
