"""The limits that hold across every worker process and server of one register: calls per vendor
(a token bucket) and failed library codes per vendor and library (a window); their state is kept
in the database or in Redis (store/limit_state.py, store/redis_limit_state.py).

Neither adds a round trip to every call; the trade-offs that buys:

- **Vendor call rate.** A worker leases a batch of tokens from the vendor's shared bucket (50 ms
  worth of the rate, at least 1) and spends them locally, so it asks the store about once a
  batch. Every call spends a token the shared bucket granted, so the sum over all workers never
  exceeds the rate on average; a worker may hold up to a batch less one that it leased a while
  ago, so right after an idle spell a burst may exceed the bucket's by that much per worker
  (49 calls per worker at the default 1,000 a second, against a burst of 2,000). Below 40 calls
  a second a batch is one token and the limit is exact. When the bucket is found empty, the
  worker refuses locally until its next token is due, and at least a lease's time, without
  asking again: a vendor at its rate costs a round trip a lease, not one a call.
- **Wrong library codes.** The shared count is read before a code that is not known good is
  checked (a slow check anyway), and written when it is wrong; a right code this worker has
  verified before is answered from memory, asking nothing, unless this worker knows the key is
  locked (or has failures for the success to clear). So once wrong codes on some workers reach
  the limit, another worker that has not yet seen the lock may still answer one right code, and
  no more: its next wrong one reads the lock. A right code clears the failures this worker
  knows of; one answered from memory does not clear failures only another worker saw.
- **When the shared store fails** (Redis down), each worker falls back to limits of its own for
  a second at a time, rather than refusing every call: the limits are then per process.

Times are the wall clock (time.time), shared by the processes of one host; servers of one
register must keep their clocks in step (NTP), as they do for lockouts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from nlr_server.domain.errors import RateLimited

log = logging.getLogger(__name__)

# A lease is this long a time's worth of the vendor's rate.
LEASE_SECONDS = 0.05
# After the shared store failed, how long a worker limits on its own before asking again.
FALLBACK_SECONDS = 1.0
# The most keys a worker remembers anything about (a flood of new keys cannot grow it).
MAX_KEYS = 100_000


class LimitState(Protocol):
    """Where the shared limits keep their numbers (store/limit_state.py and
    store/redis_limit_state.py)."""

    async def lease_tokens(
        self, key: str, want: int, *, rate: float, burst: float, now: float
    ) -> tuple[int, float]: ...

    async def recent_failures(self, key: str, since: float) -> list[float]: ...

    async def add_failure(self, key: str, now: float, since: float) -> list[float]: ...

    async def clear_failures(self, key: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class CallRateLimiter:
    """A token bucket per key in this process alone: ``rate`` calls per second on average,
    bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}

    def take(self, key: Hashable) -> None:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > MAX_KEYS:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(tokens=self._burst, updated=now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens < 1:
            raise _vendor_rate_limited((1 - bucket.tokens) / self._rate)
        bucket.tokens -= 1


class FailureLimiter:
    """Refuses a key after ``limit`` failures within ``window`` seconds, until they age out,
    in this process alone."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures: dict[Hashable, deque[float]] = {}

    def check(self, key: Hashable, *, reason: str) -> None:
        failures = self._recent(key)
        if len(failures) >= self._limit:
            raise _attempts_exceeded(failures[0] + self._window - self._clock(), reason)

    def fail(self, key: Hashable) -> None:
        self._recent(key).append(self._clock())

    def succeed(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: Hashable) -> deque[float]:
        if key not in self._failures and len(self._failures) > MAX_KEYS:
            self._failures.clear()
        failures = self._failures.setdefault(key, deque())
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures


@dataclass
class _Lease:
    """What one worker holds of one vendor's shared bucket."""

    tokens: int = 0
    # The shared bucket had no whole token left: none is due before this time.
    empty_until: float = 0.0
    # The shared store failed: limit in this process alone until this time.
    fallback_until: float = 0.0
    pending: asyncio.Future[None] | None = field(default=None, repr=False)


class SharedCallRateLimiter:
    """``rate`` calls per second per key on average, bursts up to ``burst``, summed over every
    worker and server: tokens are leased from a shared bucket in batches."""

    def __init__(
        self,
        state: LimitState,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self.batch = max(1, min(int(rate * LEASE_SECONDS), int(burst)))
        self._leases: dict[str, _Lease] = {}
        self._fallback = CallRateLimiter(rate, burst)

    async def take(self, key: str) -> None:
        """Spends one call of the key's rate; raises RateLimited if none is left."""
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) > MAX_KEYS:
                self._leases.clear()
            lease = self._leases[key] = _Lease()
        while True:
            if lease.tokens > 0:
                lease.tokens -= 1
                return
            now = self._clock()
            if now < lease.fallback_until:
                self._fallback.take(key)
                return
            if now < lease.empty_until:
                raise _vendor_rate_limited(lease.empty_until - now)
            if lease.pending is None:
                # One lease at a time per key: concurrent calls share what it brings.
                lease.pending = asyncio.ensure_future(self._lease(key, lease))
            await asyncio.shield(lease.pending)

    async def _lease(self, key: str, lease: _Lease) -> None:
        now = self._clock()
        try:
            granted, left = await self._state.lease_tokens(
                key, self.batch, rate=self._rate, burst=self._burst, now=now
            )
        except Exception as error:
            _warn_fallback(error)
            lease.fallback_until = now + FALLBACK_SECONDS
        else:
            lease.tokens += granted
            # A short lease: the vendor is at its rate. Asking again before a lease's worth has
            # come in would cost a round trip for every call admitted.
            short = granted < self.batch
            lease.empty_until = now + max((1 - left) / self._rate, LEASE_SECONDS) if short else 0.0
        finally:
            lease.pending = None


@dataclass
class _Known:
    """What one worker knows of one key's shared failures, from its last read or write."""

    failures: int
    locked_until: float


class SharedFailureLimiter:
    """Refuses a key after ``limit`` failures within ``window`` seconds, until they age out,
    counted over every worker and server."""

    def __init__(
        self,
        state: LimitState,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._limit = limit
        self._window = window
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._fallback = FailureLimiter(limit, window)
        self._fallback_until = 0.0

    def passes_locally(self, key: str, *, reason: str) -> bool:
        """For an attempt already known to be right, asking nothing: raises RateLimited if this
        worker knows the key is locked; False if it knows of failures to clear (succeed)."""
        known = self._known.get(key)
        if known is None:
            return True
        now = self._clock()
        if now < known.locked_until:
            raise _attempts_exceeded(known.locked_until - now, reason)
        return False

    async def check(self, key: str, *, reason: str) -> None:
        """Before an attempt that is not known to be right: raises RateLimited if the key has
        reached the limit on any worker."""
        now = self._clock()
        if now < self._fallback_until:
            self._fallback.check(key, reason=reason)
            return
        try:
            failures = await self._state.recent_failures(key, now - self._window)
        except Exception as error:
            self._fall_back(error, now)
            self._fallback.check(key, reason=reason)
            return
        known = self._remember(key, failures)
        if known is not None and now < known.locked_until:
            raise _attempts_exceeded(known.locked_until - now, reason)

    async def fail(self, key: str) -> None:
        now = self._clock()
        if now < self._fallback_until:
            self._fallback.fail(key)
            return
        try:
            failures = await self._state.add_failure(key, now, now - self._window)
        except Exception as error:
            self._fall_back(error, now)
            self._fallback.fail(key)
            return
        self._remember(key, failures)

    async def succeed(self, key: str) -> None:
        """Clears the key's failures, if this worker knows of any."""
        self._fallback.succeed(key)
        known = self._known.pop(key, None)
        if known is None or known.failures == 0:
            return
        try:
            await self._state.clear_failures(key)
        except Exception as error:
            self._fall_back(error, self._clock())

    def _remember(self, key: str, failures: list[float]) -> _Known | None:
        if not failures:
            self._known.pop(key, None)
            return None
        if key not in self._known and len(self._known) > MAX_KEYS:
            self._known.clear()
        # Locked until enough of the failures have aged out to leave fewer than the limit.
        locked_until = 0.0
        if len(failures) >= self._limit:
            locked_until = failures[len(failures) - self._limit] + self._window
        known = self._known[key] = _Known(len(failures), locked_until)
        return known

    def _fall_back(self, error: Exception, now: float) -> None:
        _warn_fallback(error)
        self._fallback_until = now + FALLBACK_SECONDS


_warned_at = 0.0


def _warn_fallback(error: Exception) -> None:
    """Once a minute at most: a store that is down would otherwise log on every call."""
    global _warned_at
    now = time.monotonic()
    if now - _warned_at >= 60:
        _warned_at = now
        log.warning(
            "the shared limits' store failed (%s): limiting in this process alone for now",
            type(error).__name__,
        )


def _vendor_rate_limited(retry_after: float) -> RateLimited:
    return RateLimited(
        "too many calls from this vendor", retry_after=retry_after, reason="VENDOR_RATE_LIMITED"
    )


def _attempts_exceeded(retry_after: float, reason: str) -> RateLimited:
    return RateLimited(
        "too many failed attempts; wait before trying again", retry_after=retry_after, reason=reason
    )
