"""The state of the limits every worker and server shares, kept in Redis (NLR_REDIS_URL): the
same token buckets and failure windows as store/limit_state.py, each change one round trip.

Keys begin with NLR_REDIS_PREFIX and expire on their own: a bucket once it would be full again,
a failure window once its last failure has aged out. No personal data is kept: the keys name
a vendor's id, or a vendor's id and a library number.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import redis.asyncio as redis

# The token bucket in one atomic step, as the SQL statement of store/limit_state.py does it.
# KEYS[1] the bucket; ARGV: want, rate, burst, now (seconds since the epoch). A missing bucket
# is full; the key expires when it would be full again, which is the same.
_LEASE = """
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at')
local want, rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
    tonumber(ARGV[4])
local level = burst
if state[1] then
    local elapsed = math.max(0, now - tonumber(state[2]))
    level = math.min(burst, tonumber(state[1]) + elapsed * rate)
    now = math.max(now, tonumber(state[2]))
end
local granted = math.min(want, math.floor(level))
local left = level - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(left), 'updated_at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - left) / rate * 1000) + 1000)
return {granted, tostring(left)}
"""


class RedisLimitState:
    """Shared limits in Redis: one round trip for each lease and for each failure counted."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix
        self._lease = self._redis.register_script(_LEASE)

    async def lease_tokens(
        self, key: str, want: int, *, rate: float, burst: float, now: float
    ) -> tuple[int, float]:
        """Takes up to ``want`` whole tokens: (how many were taken, how many are left)."""
        granted, left = await self._lease(
            keys=[self._prefix + "bucket:" + key], args=[want, repr(rate), repr(burst), repr(now)]
        )
        return int(granted), float(left)

    async def recent_failures(self, key: str, since: float) -> list[float]:
        """The times of the key's failures after ``since``, oldest first."""
        scored = await self._redis.zrangebyscore(
            self._failures(key), f"({since!r}", "+inf", withscores=True
        )
        return [float(score) for _, score in scored]

    async def add_failure(self, key: str, now: float, since: float) -> list[float]:
        """Counts a failure at ``now``; forgets the key's failures from ``since`` or before;
        answers its failures after ``since``, oldest first."""
        name = self._failures(key)
        window = max(1, math.ceil(now - since))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(name, "-inf", repr(since))
            pipe.zadd(name, {f"{now!r}:{secrets.token_hex(4)}": now})
            pipe.expire(name, window)
            pipe.zrange(name, 0, -1, withscores=True)
            *_, scored = await pipe.execute()
        return [float(score) for _, score in scored]

    async def clear_failures(self, key: str) -> None:
        await self._redis.delete(self._failures(key))

    async def ping(self) -> None:
        """Raises if Redis does not answer."""
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    def _failures(self, key: str) -> str:
        return self._prefix + "failures:" + key
