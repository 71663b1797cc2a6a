"""The change feed under concurrent writers: thousands of changes through the server while
each library follows its feed with WatchChanges and with ListChanges; every reader gets every
entry it is entitled to exactly once, in order, with no gap against the database."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import threading
import time
from dataclasses import dataclass, field

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from feed_harness import Watch, feed_head, list_page, stored_entries
from nlr.registry.v1 import borrower_pb2
from nlr.registry.v1 import registry_service_pb2 as pb
from register_harness import (
    BERGEN,
    OSLO,
    TROMSO,
    Registry,
    ServerThread,
    national_id,
    new_borrower,
)

LIBRARIES = (OSLO, BERGEN, TROMSO)
WRITERS = 4
# Each write is one change (about 1.4 entries on average): 4 x 300 by default, NLR_FEED_TEST_WRITES
# to change it (keep the total in the thousands).
WRITES_PER_WRITER = int(os.environ.get("NLR_FEED_TEST_WRITES", "300"))


@dataclass
class Owned:
    """A borrower one writer made and alone changes."""

    card: str
    nid: str
    etag: str
    libraries: set[str]


@dataclass
class Writer:
    number: int
    registry: Registry
    changes: int = 0
    borrowers: list[Owned] = field(default_factory=list)

    def run(self) -> None:
        chooser = random.Random(self.number)
        home = LIBRARIES[self.number % len(LIBRARIES)]
        for index in range(WRITES_PER_WRITER):
            roll = chooser.random()
            if not self.borrowers or roll < 0.3:
                self._create(home, index)
            elif roll < 0.55:
                self._affiliate(chooser.choice(self.borrowers), chooser)
            else:
                self._update(chooser.choice(self.borrowers), index)
            self.changes += 1

    def _create(self, home: str, index: int) -> None:
        card = f"N3{self.number}{index:07d}"
        # A birth date of its own per borrower: thousands of fresh synthetic national ids.
        nid = national_id(dt.date(1950, 1, 1) + dt.timedelta(days=self.number * 2000 + index))
        caller = self.registry.as_library(home)
        made = caller.stub.CreateBorrower(
            pb.CreateBorrowerRequest(borrower=new_borrower(card, national_id=nid)),
            metadata=caller.metadata,
        ).borrower
        self.borrowers.append(Owned(card, nid, made.etag, {home}))

    def _affiliate(self, owned: Owned, chooser: random.Random) -> None:
        others = [library for library in LIBRARIES if library not in owned.libraries]
        if not others:
            self._update(owned, 0)
            return
        library = chooser.choice(others)
        caller = self.registry.as_library(library)
        made = caller.stub.AffiliateBorrower(
            pb.AffiliateBorrowerRequest(card_number=owned.card, national_id=owned.nid),
            metadata=caller.metadata,
        ).borrower
        owned.etag = made.etag
        owned.libraries.add(library)

    def _update(self, owned: Owned, index: int) -> None:
        caller = self.registry.as_library(sorted(owned.libraries)[index % len(owned.libraries)])
        made = caller.stub.UpdateBorrower(
            pb.UpdateBorrowerRequest(
                borrower=borrower_pb2.Borrower(
                    card_number=owned.card, etag=owned.etag, email=f"e{index}@example.org"
                ),
                update_mask=FieldMask(paths=["email"]),
            ),
            metadata=caller.metadata,
        ).borrower
        owned.etag = made.etag


@dataclass
class Poller:
    """Follows one library's feed with ListChanges until the writers are done and it has
    reached the final head."""

    registry: Registry
    page_size: int
    received: list[pb.Change] = field(default_factory=list)
    error: BaseException | None = None

    def run(self, final_head: list[int]) -> None:
        after = 0
        try:
            while True:
                page = list_page(self.registry, after, self.page_size)
                self.received.extend(page.changes)
                after = page.cursor
                if page.more:
                    continue
                if final_head and after >= final_head[0]:
                    return
                time.sleep(0.02)
        except BaseException as error:  # reported by the test, not lost on the thread
            self.error = error


def watched_until(watch: Watch, last_sequence: int, seconds: float = 20.0) -> list[pb.Change]:
    """Every change the stream delivers up to and including ``last_sequence``."""
    deadline = time.monotonic() + seconds
    received: list[pb.Change] = []
    while not received or received[-1].sequence < last_sequence:
        left = deadline - time.monotonic()
        assert left > 0, f"the stream stopped at {received[-1].sequence if received else 0}"
        event = watch.next_event(left)
        if event.WhichOneof("event") == "change":
            received.append(event.change)
    return received


def test_every_reader_sees_every_entry_it_is_entitled_to_once_in_order(
    registry: Registry, server: ServerThread
) -> None:
    url = server.config.database_url
    callers = {library: registry.as_library(library) for library in LIBRARIES}
    watches = {library: Watch(callers[library]) for library in LIBRARIES}
    opened = list(watches.values())
    # Small pages for one library (many pages, `more` under load), large ones for the others.
    page_sizes = {OSLO: 7, BERGEN: 500, TROMSO: 1000}
    pollers = {library: Poller(callers[library], page_sizes[library]) for library in LIBRARIES}
    final_head: list[int] = []
    poller_threads = [
        threading.Thread(target=poller.run, args=(final_head,), daemon=True)
        for poller in pollers.values()
    ]
    writers = [Writer(number, registry) for number in range(WRITERS)]
    writer_threads = [threading.Thread(target=writer.run, daemon=True) for writer in writers]
    try:
        for thread in poller_threads + writer_threads:
            thread.start()
        # A stream that joins half-way replays the first half, then goes live.
        time.sleep(0.5)
        late = Watch(callers[BERGEN])
        opened.append(late)
        for thread in writer_threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in writer_threads)
        head, _ = feed_head(url)
        final_head.append(head)

        expected = {library: stored_entries(url, library) for library in LIBRARIES}
        watched = {
            library: watched_until(watches[library], expected[library][-1][0])
            for library in LIBRARIES
        }
        late_watched = watched_until(late, expected[BERGEN][-1][0])
        for thread in poller_threads:
            thread.join(timeout=30)
        # Nothing beyond what the database holds arrives afterwards.
        extra = [change for watch in watches.values() for change in watch.quiet(0.2)]
    finally:
        for watch in opened:
            watch.cancel()

    # The writers' changes are numbered 1..head without a gap: one sequence per change.
    total = sum(writer.changes for writer in writers)
    assert head == total == WRITERS * WRITES_PER_WRITER
    numbered = {sequence for entries in expected.values() for sequence, _ in entries}
    assert numbered == set(range(1, head + 1))
    assert sum(len(entries) for entries in expected.values()) > total  # affiliations fan out
    assert extra == []
    for library, poller in pollers.items():
        assert poller.error is None, (library, poller.error)
    for library in LIBRARIES:
        readers = {"watch": watched[library], "list": pollers[library].received}
        if library == BERGEN:
            readers["late watch"] = late_watched
        for name, received in readers.items():
            sequences = [change.sequence for change in received]
            assert all(a < b for a, b in itertools.pairwise(sequences)), (library, name)
            assert [(c.sequence, c.kind) for c in received] == expected[library], (library, name)
            strangers = [
                change.borrower.card_number
                for change in received
                if library not in {a.library_number for a in change.borrower.affiliations}
            ]
            assert strangers == [], (library, name)


def test_refused_writes_leave_no_hole_in_the_feed(registry: Registry, server: ServerThread) -> None:
    """A write refused after the feed was touched (a duplicate national id) takes no number."""
    nid = national_id()
    registry.stub.CreateBorrower(
        pb.CreateBorrowerRequest(borrower=new_borrower("N000003001", national_id=nid)),
        metadata=registry.metadata,
    )
    try:
        registry.stub.CreateBorrower(
            pb.CreateBorrowerRequest(borrower=new_borrower("N000003002", national_id=nid)),
            metadata=registry.metadata,
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    else:
        raise AssertionError("a second borrower with the same national id was created")
    registry.stub.CreateBorrower(
        pb.CreateBorrowerRequest(borrower=new_borrower("N000003003")),
        metadata=registry.metadata,
    )

    assert [s for s, _ in stored_entries(server.config.database_url, OSLO)] == [1, 2]
    assert feed_head(server.config.database_url) == (2, 0)
