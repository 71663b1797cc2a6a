"""Reading the change feed in tests: every page of ListChanges, a WatchChanges stream consumed
on a thread of its own, and the feed's entries straight from the database."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import grpc
from sqlalchemy import select

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import FeedEntryRow, FeedHeadRow
from register_harness import Registry

KIND_NAMES = {
    "created": pb.CHANGE_KIND_CREATED,
    "updated": pb.CHANGE_KIND_UPDATED,
    "card_replaced": pb.CHANGE_KIND_CARD_REPLACED,
    "affiliated": pb.CHANGE_KIND_AFFILIATED,
    "affiliation_removed": pb.CHANGE_KIND_AFFILIATION_REMOVED,
    "deleted": pb.CHANGE_KIND_DELETED,
}


def list_page(registry: Registry, after: int = 0, page_size: int = 0) -> pb.ListChangesResponse:
    return registry.stub.ListChanges(
        pb.ListChangesRequest(after=after, page_size=page_size), metadata=registry.metadata
    )


def read_feed(
    registry: Registry, after: int = 0, page_size: int = 1000
) -> tuple[list[pb.Change], int]:
    """Every change of the library after ``after``, page by page; and the final cursor."""
    changes: list[pb.Change] = []
    while True:
        page = list_page(registry, after, page_size)
        changes.extend(page.changes)
        assert page.cursor >= after
        after = page.cursor
        if not page.more:
            return changes, after


def subject_card(change: pb.Change) -> str:
    if change.WhichOneof("subject") == "tombstone":
        return change.tombstone.card_number
    return change.borrower.card_number


def feed_head(url: str) -> tuple[int, int]:
    """The last sequence handed out and the last compacted, from the database."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(FeedHeadRow.last_sequence, FeedHeadRow.compacted_through)
            ).one()
            return int(row.last_sequence), int(row.compacted_through)
    finally:
        engine.dispose()


def stored_entries(url: str, library: str) -> list[tuple[int, int]]:
    """(sequence, kind) of every entry the database holds for the library, in order."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(FeedEntryRow.sequence, FeedEntryRow.kind)
                .where(FeedEntryRow.library_number == library)
                .order_by(FeedEntryRow.sequence)
            ).all()
            return [(int(row.sequence), KIND_NAMES[row.kind]) for row in rows]
    finally:
        engine.dispose()


@dataclass
class Watch:
    """A WatchChanges stream read on its own thread; its messages (or its error) queue up."""

    registry: Registry
    after: int = 0
    events: queue.Queue[pb.WatchChangesResponse | grpc.RpcError | AssertionError] = field(
        default_factory=queue.Queue
    )

    def __post_init__(self) -> None:
        self.call = self.registry.stub.WatchChanges(
            pb.WatchChangesRequest(after=self.after), metadata=self.registry.metadata
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self.events.put(event)
        except (grpc.RpcError, AssertionError) as error:
            # An AssertionError is the harness's check of a message (register_harness): it
            # fails the test at the next read instead of ending this thread unseen.
            self.events.put(error)

    def next_event(self, timeout: float = 10.0) -> pb.WatchChangesResponse:
        event = self.events.get(timeout=timeout)
        if isinstance(event, grpc.RpcError | AssertionError):
            raise event
        return event

    def changes(self, count: int, timeout: float = 10.0) -> list[pb.Change]:
        """The next ``count`` changes, heartbeats skipped."""
        deadline = time.monotonic() + timeout
        received: list[pb.Change] = []
        while len(received) < count:
            event = self.next_event(max(deadline - time.monotonic(), 0.01))
            if event.WhichOneof("event") == "change":
                received.append(event.change)
        return received

    def heartbeat(self, timeout: float = 10.0) -> pb.Heartbeat:
        """The next heartbeat; fails on a change before it."""
        event = self.next_event(timeout)
        assert event.WhichOneof("event") == "heartbeat", event
        return event.heartbeat

    def quiet(self, seconds: float) -> list[pb.Change]:
        """The changes that arrive within ``seconds`` (none expected, usually)."""
        deadline = time.monotonic() + seconds
        received: list[pb.Change] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.next_event(left)
            except queue.Empty:
                break
            if event.WhichOneof("event") == "change":
                received.append(event.change)
        return received

    def cancel(self) -> None:
        self.call.cancel()
        self._thread.join(timeout=10)
