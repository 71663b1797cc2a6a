"""What the servicers share: the store, its worker pool, the secret checkers and policies."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.util import greenlet_spawn

from nlr_server.api.borrower_codec import BorrowerDecoder
from nlr_server.api.call_context import current_call
from nlr_server.api.feed_hub import FeedHub
from nlr_server.api.password_pool import PasswordPool
from nlr_server.crypto.login_key_index import LoginKeyIndex
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.crypto.totp import TotpSecretSealer
from nlr_server.domain.contact_change import ContactKind
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.lockout import LockoutPolicy
from nlr_server.domain.session import SessionPolicy
from nlr_server.oidc.id_token import IdTokenValidator
from nlr_server.store.errors import ConnectionLost
from nlr_server.usecases.ports import UnitOfWorkFactory, WriterBusy

T = TypeVar("T")

# How long a short write on the event loop keeps trying before a worker takes it over.
LOOP_WRITE_PATIENCE = 0.05


@dataclass(frozen=True)
class Services:
    unit_of_work: UnitOfWorkFactory
    executor: Executor
    decode: BorrowerDecoder
    pins: PinVerifier
    passwords: PasswordPool
    lockout: LockoutPolicy
    # Tags of login keys no borrower holds, under which their failed logins are counted.
    login_keys: LoginKeyIndex
    # Seals and opens borrowers' TOTP secrets.
    totp_sealer: TotpSecretSealer
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    # The ID-token validators of the configured logins (LoginMethod.IDPORTEN, FEIDE).
    id_tokens: Mapping[LoginMethod, IdTokenValidator] = field(default_factory=dict)
    # Who sends one-time codes to a new email (SMTP) or mobile (SMS gateway), if configured:
    # a blocking send(address or number, text).
    code_senders: Mapping[ContactKind, Callable[[str, str], None]] = field(default_factory=dict)
    guardian_age: int = 15
    # How long an added identity lasts when the library names no deletion time.
    identity_lifetime: dt.timedelta = dt.timedelta(days=1095)
    # For reads on the event loop itself (embedded store only): its own single connection, so
    # the loop never waits for one the workers hold.
    loop_reads: UnitOfWorkFactory | None = None
    # For short writes on the event loop (embedded store only), when no other writer is at
    # work: its own single connection, which never waits.
    loop_writes: UnitOfWorkFactory | None = None
    # PostgreSQL: units of work on its asyncio driver, for reads and short writes run in a
    # greenlet on the event loop (no hand-off to a worker; each round trip yields the loop).
    greenlets: UnitOfWorkFactory | None = None
    # Live delivery of the change feed to WatchChanges streams.
    feed_hub: FeedHub = field(default_factory=lambda: FeedHub(poll_seconds=0.5))
    feed_heartbeat_seconds: float = 15.0

    async def run(self, use_case: Callable[..., T], *args: Any) -> T:
        """Runs a use case on a store worker (the store is synchronous; the loop stays free)."""
        call = functools.partial(use_case, self.unit_of_work, *args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def run_plain(self, call: Callable[[], T]) -> T:
        """Runs a blocking call that needs no store (an ID token's check) on a worker."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def write(self, use_case: Callable[..., T], *args: Any) -> T:
        """Runs a use case that changes the register and commits the call's audit event with
        the change (``Acting``, domain/audit.py), so the interceptor writes none of its own.

        On PostgreSQL it runs in a greenlet on the loop, as reads do: a change waits for its
        row locks and round trips without holding a thread, and nothing in a change blocks (a
        new password is hashed before, by the password pool; an erasure only asks for the
        next vacuum). On SQLite it runs on a worker, where it may wait for the writer lock."""
        if self.greenlets is not None:
            result = await greenlet_spawn(use_case, self.greenlets, *args)
        else:
            result = await self.run(use_case, *args)
        current_call().audited = True
        return result

    async def run_short(self, use_case: Callable[..., T], *args: Any) -> T:
        """Runs a short use case of one unit of work that may write (a PIN login).

        On an embedded store it runs right here, as a hand-off to a worker costs more than the
        work. A unit of work that would wait for another writer raises WriterBusy before doing
        anything, so it is tried again after a pause (the other writer is most likely another
        short one) and handed to a worker, which may wait, after LOOP_WRITE_PATIENCE. On
        PostgreSQL it runs on a worker.
        """
        if self.loop_writes is not None:
            loop = asyncio.get_running_loop()
            give_up = loop.time() + LOOP_WRITE_PATIENCE
            pause = 0.0002
            while True:
                try:
                    return use_case(self.loop_writes, *args)
                except WriterBusy:
                    if loop.time() >= give_up:
                        break
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.005)
        return await self.run(use_case, *args)

    async def read(self, use_case: Callable[..., T], *args: Any) -> T:
        """Runs a read-only use case: on an embedded store right here, since a SQLite read in
        WAL mode never waits for a writer and takes less time than the hand-off to a worker.

        A read whose connection turns out to be dead is tried once more: the pool checks no
        connection with a round trip before lending it (store/database.py), and a read changes
        nothing, so trying again is safe. The dead connection invalidates the pool's others."""
        if self.loop_reads is not None:
            return use_case(self.loop_reads, *args)
        if self.greenlets is not None:
            try:
                return await greenlet_spawn(use_case, self.greenlets, *args)
            except ConnectionLost:
                return await greenlet_spawn(use_case, self.greenlets, *args)
        try:
            return await self.run(use_case, *args)
        except ConnectionLost:
            return await self.run(use_case, *args)

    async def read_pages(self, use_case: Callable[..., T], *args: Any) -> T:
        """As read, for a read of a whole page (up to a thousand changes or borrowers with
        their records): on PostgreSQL on a worker, as decoding its rows takes long enough to
        hold up every other call if it ran on the event loop."""
        if self.greenlets is None:
            return await self.read(use_case, *args)
        try:
            return await self.run(use_case, *args)
        except ConnectionLost:
            return await self.run(use_case, *args)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
