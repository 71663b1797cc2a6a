"""Hundreds of WatchChanges streams opening one after another while writers change the register:
each stream, whenever it opened and from whatever cursor, delivers exactly its library's entries
after the cursor, in order, without a gap where its replay hands over to live delivery. (The
register reads on its event loop while it opens streams, replays and follows the feed; a reading
unit of work that showed a stale snapshot, or one shared by two reads, would show here as a
missing change or a stream that never goes live.)"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from feed_harness import feed_head, stored_entries
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr.registry.v1 import registry_service_pb2_grpc as pb_grpc
from nlr_server.ops.dev_pki import DevPkiPaths
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import FeedHeadRow
from register_harness import (
    BERGEN,
    LIBRARY_CODES,
    OSLO,
    TROMSO,
    Registry,
    ServerThread,
    new_borrower,
)

LIBRARIES = (OSLO, BERGEN, TROMSO)
STREAMS = 300
STREAMS_PER_CHANNEL = 15
WRITERS = 2
OPENING_PAUSE_SECONDS = 0.01


@dataclass
class Stream:
    library: str
    after: int
    sequences: list[int] = field(default_factory=list)
    error: str | None = None


@dataclass
class Writer:
    """Creates a borrower in each library, then updates them in turn until told to stop."""

    registry: Registry
    number: int
    started: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    changes: int = 0
    error: BaseException | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # reported by the test, not lost on the thread
            self.error = error
        finally:
            self.started.set()

    def _run(self) -> None:
        cards: dict[str, tuple[str, str]] = {}
        for index, library in enumerate(LIBRARIES):
            card = f"N4{self.number}{index:07d}"
            caller = self.registry.as_library(library)
            made = caller.stub.CreateBorrower(
                pb.CreateBorrowerRequest(borrower=new_borrower(card)), metadata=caller.metadata
            ).borrower
            cards[library] = (card, made.etag)
            self.changes += 1
        self.started.set()
        while not self.stop.is_set():
            library = LIBRARIES[self.changes % len(LIBRARIES)]
            card, etag = cards[library]
            caller = self.registry.as_library(library)
            made = caller.stub.UpdateBorrower(
                pb.UpdateBorrowerRequest(
                    borrower=borrower_pb2.Borrower(
                        card_number=card,
                        etag=etag,
                        email=f"w{self.number}.{self.changes}@example.org",
                    ),
                    update_mask=FieldMask(paths=["email"]),
                ),
                metadata=caller.metadata,
            ).borrower
            cards[library] = (card, made.etag)
            self.changes += 1


class Heads:
    """The feed head, read from the database over and over while the writers write."""

    def __init__(self, url: str) -> None:
        self._engine = create_store_engine(url, pool_size=1)
        self.last = self._read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _read(self) -> int:
        with self._engine.connect() as connection:
            return int(connection.execute(select(FeedHeadRow.last_sequence)).scalar_one())

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.last = self._read()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._engine.dispose()


async def _open_streams(
    target: str, pki: DevPkiPaths, heads: Heads
) -> tuple[list[Stream], list[asyncio.Task[None]], list[grpc.aio.Channel]]:
    """Opens STREAMS streams one by one, each from 0 or from the head seen just before."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca_cert.read_bytes(),
        private_key=pki.ils_key.read_bytes(),
        certificate_chain=pki.ils_cert.read_bytes(),
    )
    channels = [
        grpc.aio.secure_channel(
            target, credentials, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(-(-STREAMS // STREAMS_PER_CHANNEL))
    ]
    await asyncio.gather(*(channel.channel_ready() for channel in channels))
    streams: list[Stream] = []
    tasks: list[asyncio.Task[None]] = []
    for index in range(STREAMS):
        # Half replay the whole feed, half only what comes after the head they last saw.
        stream = Stream(LIBRARIES[index % len(LIBRARIES)], after=heads.last if index % 2 else 0)
        streams.append(stream)
        tasks.append(asyncio.create_task(_follow(stream, channels[index // STREAMS_PER_CHANNEL])))
        await asyncio.sleep(OPENING_PAUSE_SECONDS)
    return streams, tasks, channels


async def _follow(stream: Stream, channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.BorrowerRegistryStub(channel)
    metadata = (
        ("nlr-library-number", stream.library),
        ("nlr-library-code", LIBRARY_CODES[stream.library]),
    )
    call = stub.WatchChanges(pb.WatchChangesRequest(after=stream.after), metadata=metadata)
    try:
        async for event in call:
            if event.WhichOneof("event") == "change":
                stream.sequences.append(event.change.sequence)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.CANCELLED:
            stream.error = error.code().name


async def _until_delivered(
    streams: list[Stream], expected: dict[str, list[int]], seconds: float
) -> None:
    """Until every stream has received the last entry it is owed (or failed)."""
    owed = [
        max((s for s in expected[stream.library] if s > stream.after), default=0)
        for stream in streams
    ]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not all(
        stream.error or (stream.sequences[-1] if stream.sequences else 0) >= last
        for stream, last in zip(streams, owed, strict=True)
    ):
        await asyncio.sleep(0.05)


async def _watch_while_writing(
    server: ServerThread, pki: DevPkiPaths, writers: list[Writer]
) -> tuple[list[Stream], dict[str, list[int]]]:
    url = server.config.database_url
    heads = Heads(url)
    try:
        streams, tasks, channels = await _open_streams(server.target, pki, heads)
    finally:
        heads.stop()
        for writer in writers:
            await asyncio.to_thread(writer.finish)
    try:
        expected = {library: [s for s, _ in stored_entries(url, library)] for library in LIBRARIES}
        await _until_delivered(streams, expected, seconds=60)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return streams, expected
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


def test_streams_opening_during_writes_each_get_every_change_after_their_cursor(
    registry: Registry, server: ServerThread, pki: DevPkiPaths
) -> None:
    writers = [Writer(registry, number) for number in range(WRITERS)]
    for writer in writers:
        writer.start()
    for writer in writers:
        assert writer.started.wait(30)

    streams, expected = asyncio.run(_watch_while_writing(server, pki, writers))

    assert [writer.error for writer in writers] == [None] * WRITERS
    head, _ = feed_head(server.config.database_url)
    assert head == sum(writer.changes for writer in writers)
    opened_mid_feed = [stream.after for stream in streams if stream.after > 0]
    assert len(set(opened_mid_feed)) > 10, "the writers were done before the streams opened"
    for number, stream in enumerate(streams):
        wanted = [sequence for sequence in expected[stream.library] if sequence > stream.after]
        assert stream.error is None, (number, stream.error)
        assert stream.sequences == wanted, (number, stream.library, stream.after)
