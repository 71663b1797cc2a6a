"""The change feed's clients, each in a process of its own: many WatchChanges streams, and one
catch-up reader.

``python -m bench.feed_client watch SPEC.json`` opens ``streams`` WatchChanges streams (one
mutual-TLS connection per ``streams_per_channel`` of them) and talks to the benchmark over
stdin/stdout, one JSON object a line: it says ``open`` when every stream is called, ``primed``
when every stream has received a change (so each is subscribed), then reads the sequences each
library must receive and answers with what was delivered, and how late.

``python -m bench.feed_client catch-up SPEC.json`` replays the library's feed from 0 through
``through``, first with ListChanges (pages of 1000), then with WatchChanges, and prints one JSON
result with the entries per second of each.

Latency is measured from the change's ``change_time`` (set by the register before it commits, so
it slightly overstates commit-to-delivery) to the moment the stream's message is read here,
before it is parsed; both clocks are this machine's wall clock.
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from bench.cpu import cpu_seconds, machine_busy_seconds
from bench.processes import ChildFailed, Children, python_module, tail

from nlr.registry.v1 import registry_service_pb2 as pb

WATCH_CHANGES = "/nlr.registry.v1.BorrowerRegistry/WatchChanges"
LIST_CHANGES = "/nlr.registry.v1.BorrowerRegistry/ListChanges"
# Separate connections per channel: without it, channels to one target share one.
_OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)


@dataclass(frozen=True)
class WatchSpec:
    target: str
    ca: str
    cert: str
    key: str
    # (library number, library code) of each library; stream i watches library i % len.
    libraries: list[tuple[str, str]]
    streams: int
    # This process's first stream's index among all processes' (spreads the libraries evenly).
    first_stream: int
    after: int
    streams_per_channel: int


@dataclass(frozen=True)
class CatchUpSpec:
    target: str
    ca: str
    cert: str
    key: str
    library: tuple[str, str]
    through: int
    page_size: int
    server_pid: int | None = None


@dataclass(frozen=True)
class WatchResult:
    """What one process's streams received of the expected changes."""

    streams: int
    expected: int
    delivered: int
    duplicates: int
    out_of_order: int
    # Streams that ended (with this status) before the end of the measurement.
    ended: dict[str, int]
    # Latency of every (stream, expected change) delivered, in ms.
    latencies_ms: list[float]
    # For each change (sequence as text, JSON keys are strings): the latency of the last of this
    # process's streams to receive it, in ms.
    last_delivery_ms: dict[str, float]


@dataclass(frozen=True)
class Replay:
    entries: int
    seconds: float
    # CPU cores used meanwhile by the reader, by the server and by the whole machine (None:
    # unknown).
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
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class CatchUpResult:
    list_changes: Replay
    watch_changes: Replay


def _credentials(ca: str, cert: str, key: str) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes(),
        private_key=Path(key).read_bytes(),
        certificate_chain=Path(cert).read_bytes(),
    )


def _metadata(library: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    number, code = library
    return (("nlr-library-number", number), ("nlr-library-code", code))


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


@dataclass(eq=False)
class _Stream:
    library: str
    # (sequence, latency in seconds) of each change received, in order of receipt.
    received: list[tuple[int, float]] = field(default_factory=list)
    last_sequence: int = 0
    ended: str | None = None


async def watch(spec: WatchSpec) -> None:
    credentials = _credentials(spec.ca, spec.cert, spec.key)
    channel_count = -(-spec.streams // spec.streams_per_channel)
    channels = [
        grpc.aio.secure_channel(spec.target, credentials, options=[_OWN_CONNECTION])
        for _ in range(channel_count)
    ]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(channel.channel_ready() for channel in channels)), timeout=120
        )
        request = pb.WatchChangesRequest(after=spec.after).SerializeToString()
        streams: list[_Stream] = []
        calls: list[grpc.aio.UnaryStreamCall[bytes, bytes]] = []
        for index in range(spec.streams):
            library = spec.libraries[(spec.first_stream + index) % len(spec.libraries)]
            # No deserializer: the message is timed as it arrives, then parsed.
            method: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channels[
                index // spec.streams_per_channel
            ].unary_stream(WATCH_CHANGES)
            calls.append(method(request, metadata=_metadata(library)))
            streams.append(_Stream(library[0]))
        progress = asyncio.Event()
        tasks = [
            asyncio.create_task(_follow(call, stream, progress))
            for call, stream in zip(calls, streams, strict=True)
        ]
        _say({"event": "open"})
        while not all(stream.received or stream.ended for stream in streams):
            await progress.wait()
            progress.clear()
        _say({"event": "primed"})
        order = json.loads(await asyncio.to_thread(sys.stdin.readline))
        expected: dict[str, list[int]] = order["expected"]
        deadline = time.monotonic() + float(order["timeout_seconds"])
        last = {library: max(sequences, default=0) for library, sequences in expected.items()}
        while not all(
            stream.ended or stream.last_sequence >= last.get(stream.library, 0)
            for stream in streams
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with_timeout = asyncio.wait_for(progress.wait(), timeout=remaining)
            try:
                await with_timeout
            except TimeoutError:
                break
            progress.clear()
        for call in calls:
            call.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        _say({"event": "result", "result": asdict(_tally(streams, expected))})
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


async def _follow(
    call: grpc.aio.UnaryStreamCall[bytes, bytes], stream: _Stream, progress: asyncio.Event
) -> None:
    try:
        async for raw in call:
            received = time.time()
            response = pb.WatchChangesResponse.FromString(raw)
            if not response.HasField("change"):
                continue
            change = response.change
            sent = change.change_time.seconds + change.change_time.nanos / 1e9
            stream.received.append((change.sequence, received - sent))
            stream.last_sequence = max(stream.last_sequence, change.sequence)
            progress.set()
        stream.ended = "OK"
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.CANCELLED:
            stream.ended = error.code().name
    except asyncio.CancelledError:
        pass
    progress.set()


def _tally(streams: list[_Stream], expected: dict[str, list[int]]) -> WatchResult:
    wanted = {library: set(sequences) for library, sequences in expected.items()}
    first = {library: min(sequences, default=0) for library, sequences in expected.items()}
    delivered = duplicates = out_of_order = 0
    latencies: list[float] = []
    last_delivery: dict[str, float] = {}
    ended: dict[str, int] = {}
    for stream in streams:
        if stream.ended is not None:
            ended[stream.ended] = ended.get(stream.ended, 0) + 1
        seen: set[int] = set()
        previous = 0
        for sequence, latency in stream.received:
            if sequence < previous:
                out_of_order += 1
            previous = max(previous, sequence)
            if sequence < first.get(stream.library, 0):
                continue  # the priming changes, before the measurement
            if sequence in seen:
                duplicates += 1
                continue
            seen.add(sequence)
            if sequence in wanted.get(stream.library, set()):
                delivered += 1
                milliseconds = round(latency * 1000, 3)
                latencies.append(milliseconds)
                key = str(sequence)
                last_delivery[key] = max(last_delivery.get(key, 0.0), milliseconds)
    return WatchResult(
        streams=len(streams),
        expected=sum(len(wanted.get(stream.library, ())) for stream in streams),
        delivered=delivered,
        duplicates=duplicates,
        out_of_order=out_of_order,
        ended=ended,
        latencies_ms=latencies,
        last_delivery_ms=last_delivery,
    )


async def catch_up(spec: CatchUpSpec) -> CatchUpResult:
    credentials = _credentials(spec.ca, spec.cert, spec.key)
    metadata = _metadata(spec.library)
    async with grpc.aio.secure_channel(spec.target, credentials) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=30)
        list_changes: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            LIST_CHANGES
        )
        watch_changes: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            WATCH_CHANGES
        )

        async def by_pages() -> int:
            entries, after, more = 0, 0, True
            while more and after < spec.through:
                request = pb.ListChangesRequest(after=after, page_size=spec.page_size)
                raw = await list_changes(request.SerializeToString(), metadata=metadata)
                page = pb.ListChangesResponse.FromString(raw)
                entries += len(page.changes)
                after, more = page.cursor, page.more
            return entries

        async def by_stream() -> int:
            entries = 0
            request = pb.WatchChangesRequest(after=0).SerializeToString()
            call = watch_changes(request, metadata=metadata)
            async for raw in call:
                response = pb.WatchChangesResponse.FromString(raw)
                if response.HasField("change"):
                    entries += 1
                    if response.change.sequence >= spec.through:
                        break
                elif response.heartbeat.cursor >= spec.through:
                    break
            call.cancel()
            return entries

        list_result = await _timed(by_pages(), spec.server_pid)
        watch_result = await _timed(by_stream(), spec.server_pid)
    return CatchUpResult(list_result, watch_result)


async def _timed(replay: Coroutine[Any, Any, int], server_pid: int | None) -> Replay:
    before = _cpu_now(server_pid)
    started = time.perf_counter()
    entries = await replay
    seconds = time.perf_counter() - started
    client, server, machine = (
        None if b is None or a is None else (a - b) / seconds
        for b, a in zip(before, _cpu_now(server_pid), strict=True)
    )
    return Replay(entries, seconds, client, server, machine)


def _cpu_now(server_pid: int | None) -> tuple[float | None, float | None, float | None]:
    server = None if server_pid is None else cpu_seconds(server_pid)
    return time.process_time(), server, machine_busy_seconds()


class WatcherProcess:
    """A ``watch`` client in its own process; its lines are read by a thread into a queue."""

    def __init__(self, children: Children, spec: WatchSpec, spec_file: Path) -> None:
        spec_file.write_text(json.dumps(asdict(spec)))
        self._children = children
        # A file, not a pipe nobody reads: gRPC's warnings must never block the process.
        self._log = spec_file.with_suffix(".log")
        with self._log.open("wb") as log:
            self.process = children.start(
                python_module("bench.feed_client", "watch", str(spec_file)),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.decode())
        self._lines.put(None)

    def wait_for(self, event: str, timeout_seconds: float) -> dict[str, Any]:
        """The next message, which must be ``event``; ChildFailed if it does not come."""
        try:
            line = self._lines.get(timeout=timeout_seconds)
        except queue.Empty:
            raise ChildFailed(f"feed watcher: no {event!r} after {timeout_seconds:g} s") from None
        if line is None:
            self.process.wait(timeout=10)
            raise ChildFailed(f"feed watcher exited before {event!r}:\n{tail(self._log)}")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") != event:
            raise ChildFailed(f"feed watcher: expected {event!r}, got {line!r}")
        return message

    def poll(self, event: str) -> bool:
        """Whether ``event`` has come (taking it), without waiting; ChildFailed if something
        else did."""
        if self._lines.empty():
            return False
        self.wait_for(event, 0)
        return True

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def result(self, timeout_seconds: float) -> WatchResult:
        message = self.wait_for("result", timeout_seconds)
        self._children.stop(self.process)
        return WatchResult(**message["result"])

    def stop(self) -> None:
        self._children.stop(self.process)


def run_catch_up(children: Children, spec: CatchUpSpec, spec_file: Path) -> CatchUpResult:
    spec_file.write_text(json.dumps(asdict(spec)))
    process = children.start(
        python_module("bench.feed_client", "catch-up", str(spec_file)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        stdout, stderr = process.communicate(timeout=3600)
    finally:
        children.stop(process)
    if process.returncode != 0:
        raise ChildFailed(f"catch-up reader failed:\n{stderr.decode(errors='replace')}")
    values = json.loads(stdout)
    return CatchUpResult(Replay(**values["list_changes"]), Replay(**values["watch_changes"]))


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("watch", "catch-up"):
        sys.exit("usage: python -m bench.feed_client watch|catch-up SPEC.json")
    values = json.loads(Path(argv[1]).read_text())
    if argv[0] == "watch":
        values["libraries"] = [tuple(pair) for pair in values["libraries"]]
        asyncio.run(watch(WatchSpec(**values)))
    else:
        values["library"] = tuple(values["library"])
        print(json.dumps(asdict(asyncio.run(catch_up(CatchUpSpec(**values))))))


if __name__ == "__main__":
    main(sys.argv[1:])
