"""Live delivery of the change feed to WatchChanges streams.

One task per server follows the whole feed: woken at once by a commit in this process and, for
commits by other servers on the same database, by polling. It reads each batch of new entries
once, renders each borrower's full view once, and hands the encoded changes to the streams of
the libraries concerned. A stream that falls too far behind is told to catch up from the
database instead, so a slow reader never holds the others back or grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.api.feed_codec import encode_change
from nlr_server.domain.borrower import Borrower
from nlr_server.domain.change_feed import Change, ChangeKind, StoredEntry
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.policy import library_view
from nlr_server.domain.views import BorrowerView
from nlr_server.store.errors import describe
from nlr_server.usecases import change_feed
from nlr_server.usecases.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)

# Runs a use case on the server's read path: (function, *args) -> result.
Read = Callable[..., Awaitable[Any]]
_BATCH = 1000


@dataclass(eq=False)
class Watcher:
    """One WatchChanges stream's live inbox."""

    library: LibraryNumber
    capacity: int
    # (sequence, change); a None change means the server is stopping: end the stream.
    queue: asyncio.Queue[tuple[int, pb.Change | None]] = field(default_factory=asyncio.Queue)
    # Set when the inbox was full: the stream then catches up from the database.
    overflowed: bool = False

    def offer(self, sequence: int, change: pb.Change) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.capacity:
            self.overflowed = True
            return
        self.queue.put_nowait((sequence, change))


class FeedHub:
    def __init__(self, poll_seconds: float, *, watcher_capacity: int = 10_000) -> None:
        self._read: Read | None = None
        self._poll_seconds = poll_seconds
        self._capacity = watcher_capacity
        self._watchers: dict[LibraryNumber, set[Watcher]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        # Every entry up to here has been handed to the watchers that were subscribed.
        self.position = 0
        # The last sequence a commit in this process appended (told by ``committed``).
        self._committed = 0

    async def start(self, read: Read) -> None:
        """Follows the feed from its current head; ``read`` runs a read use case (it passes
        the unit-of-work factory itself)."""
        self._read = read
        self._loop = asyncio.get_running_loop()
        self.position, _ = await read(_head)
        self._task = asyncio.create_task(self._follow(), name="feed-hub")

    async def stop(self) -> None:
        """Stops following and ends every stream (clients resume on another server)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait((0, None))

    def committed(self, last_sequence: int) -> None:
        """Called from any thread after a commit that appended to the feed."""
        if last_sequence > self._committed:
            self._committed = last_sequence
        if self._loop is not None and last_sequence > self.position:
            self._loop.call_soon_threadsafe(self._wake.set)

    def subscribe(self, library: LibraryNumber) -> Watcher:
        watcher = Watcher(library, self._capacity)
        self._watchers.setdefault(library, set()).add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.library)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.library]

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._catch_up()
            except Exception as error:
                # The database may be away for a moment; the next round tries again. By class
                # only: an exception's text may quote personal data.
                log.error("the change feed could not be read (%s); trying again", describe(error))

    async def _catch_up(self) -> None:
        assert self._read is not None
        while True:
            # Borrowers are loaded only for the libraries watched when the read starts; a
            # stream that subscribes meanwhile may replay only up to an earlier head, so then
            # the batch is read again rather than handed on without its entries.
            watched = set(self._watchers)
            if not watched and self._committed > self.position:
                # Nobody to deliver to, and this process's own commit says where the head is
                # at least: no read (one a commit, on a busy server). Other servers' entries
                # are read when a stream subscribes.
                self.position = self._committed
                return
            if not watched:
                head, _ = await self._read(_head)
                if self._watchers:
                    continue
                # Nobody to deliver to: keep up with the head (new streams replay the rest).
                self.position = max(self.position, head)
                return
            batch: _Batch = await self._read(_next_batch, self.position, watched)
            if not set(self._watchers) <= watched:
                continue
            if not batch.entries:
                self.position = max(self.position, batch.head)
                return
            self._dispatch(batch)
            self.position = batch.entries[-1].sequence
            if self.position >= batch.head:
                return

    def _dispatch(self, batch: _Batch) -> None:
        encoded: dict[tuple[int, ChangeKind, BorrowerView], pb.Change] = {}
        for entry in batch.entries:
            watchers = self._watchers.get(entry.library)
            if not watchers:
                continue
            if entry.tombstone is not None:
                change = Change(
                    entry.sequence, entry.occurred_at, entry.kind, tombstone=entry.tombstone
                )
                message = encode_change(change)
            else:
                borrower = batch.borrowers.get(entry.borrower_id or 0)
                if borrower is None or not borrower.is_affiliated_with(entry.library):
                    continue  # gone, or no longer this library's: a tombstone follows
                # The full view is the same for every affiliated library, the kind is not (one
                # library's AFFILIATED is the others' UPDATED): encoded once per kind and view
                # (only the home library sees a borrower who restricted processing in full).
                view = library_view(entry.library, borrower)
                key = (entry.sequence, entry.kind, view)
                if key not in encoded:
                    encoded[key] = encode_change(
                        Change(entry.sequence, entry.occurred_at, entry.kind, borrower, view=view)
                    )
                message = encoded[key]
            for watcher in watchers:
                watcher.offer(entry.sequence, message)


@dataclass(frozen=True, slots=True)
class _Batch:
    entries: list[StoredEntry]
    borrowers: dict[int, Borrower]
    head: int


def _head(unit_of_work: UnitOfWorkFactory) -> tuple[int, int]:
    with unit_of_work(read_only=True) as uow:
        return uow.feed.head()


def _next_batch(unit_of_work: UnitOfWorkFactory, after: int, watched: set[LibraryNumber]) -> _Batch:
    """The next entries, and the current full views of the borrowers that watched libraries'
    entries point at (none are loaded for entries nobody watches)."""
    with unit_of_work(read_only=True) as uow:
        head, _ = uow.feed.head()
        entries = uow.feed.all_after(after, head, _BATCH)
        ids = {e.borrower_id for e in entries if e.borrower_id is not None and e.library in watched}
        borrowers = change_feed.current_full_views(uow, ids)
        return _Batch(entries, borrowers, head)
