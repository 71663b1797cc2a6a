"""Lockout after repeated wrong PINs or passwords, longer after each lockout."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    failures_before_lock: int = 5
    first_lock: dt.timedelta = dt.timedelta(minutes=15)
    longest_lock: dt.timedelta = dt.timedelta(hours=24)

    def lock_duration(self, lockouts_before: int) -> dt.timedelta:
        """The first lockout lasts ``first_lock``; each later one twice the one before."""
        return min(self.longest_lock, self.first_lock * (1 << min(lockouts_before, 20)))


@dataclass(frozen=True, slots=True)
class LoginAttempts:
    """One borrower's consecutive failures for one login method."""

    consecutive_failures: int = 0
    lockouts: int = 0
    locked_until: dt.datetime | None = None

    def is_locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def failed(self, now: dt.datetime, policy: LockoutPolicy) -> LoginAttempts:
        """After a failure: locked once the failures reach the policy's count."""
        failures = self.consecutive_failures + 1
        if failures < policy.failures_before_lock:
            return replace(self, consecutive_failures=failures)
        return LoginAttempts(
            consecutive_failures=0,
            lockouts=self.lockouts + 1,
            locked_until=now + policy.lock_duration(self.lockouts),
        )

    def succeeded(self) -> LoginAttempts:
        """A success (or a new PIN or password) is a clean slate."""
        return LoginAttempts()

    @property
    def clean(self) -> bool:
        return self.consecutive_failures == 0 and self.locked_until is None
