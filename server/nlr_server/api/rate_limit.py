"""In-process limits: calls per vendor (token bucket) and failed library codes per window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from nlr_server.domain.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class CallRateLimiter:
    """A token bucket per key: ``rate`` calls per second on average, bursts up to ``burst``."""

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
            bucket = self._buckets[key] = _Bucket(tokens=self._burst, updated=now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens < 1:
            raise RateLimited(
                "too many calls from this vendor",
                retry_after=(1 - bucket.tokens) / self._rate,
                reason="VENDOR_RATE_LIMITED",
            )
        bucket.tokens -= 1


class FailureLimiter:
    """Refuses a key after ``limit`` failures within ``window`` seconds, until they age out."""

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
            raise RateLimited(
                "too many failed attempts; wait before trying again",
                retry_after=failures[0] + self._window - self._clock(),
                reason=reason,
            )

    def fail(self, key: Hashable) -> None:
        self._recent(key).append(self._clock())

    def succeed(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: Hashable) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        horizon = self._clock() - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        return failures
