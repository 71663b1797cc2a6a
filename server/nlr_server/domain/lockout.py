"""Lockout after repeated wrong PINs or passwords, longer after each lockout.

Failures are counted per login subject: a registered borrower (whichever of their card
numbers or identities was given) or a login key no borrower holds. Both are counted, locked
and forgotten by the same rules, so a caller cannot tell them apart by how a login is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    failures_before_lock: int = 5
    first_lock: dt.timedelta = dt.timedelta(minutes=15)
    longest_lock: dt.timedelta = dt.timedelta(hours=24)
    # After this long without a failure and past any lock, a subject's failures and lockouts
    # are forgotten (and maintenance removes them). A week is longer than the steady state an
    # attacker reaches (one lock of `longest_lock` after each few guesses), so pausing to be
    # forgotten buys no more guesses than guessing on.
    forget_after: dt.timedelta = dt.timedelta(days=7)
    # A password check reserved but never reported back (its server stopped mid-check) holds
    # its place this long, then counts as a failure.
    check_timeout: dt.timedelta = dt.timedelta(seconds=60)

    def lock_duration(self, lockouts_before: int) -> dt.timedelta:
        """The first lockout lasts ``first_lock``; each later one twice the one before."""
        return min(self.longest_lock, self.first_lock * (1 << min(lockouts_before, 20)))


@dataclass(frozen=True, slots=True)
class LoginSubject:
    """Whose failures a login counts: a registered borrower's, by whichever key they were
    found (card number or identity: switching keys buys no more guesses), or else the login
    key's own, known only by its keyed hash (``key_tag``), so that an unknown card or identity
    locks exactly as a registered one does."""

    borrower_id: int | None = None
    key_tag: bytes | None = None

    def __post_init__(self) -> None:
        if (self.borrower_id is None) == (self.key_tag is None):
            raise ValueError("a login subject is a borrower or an unknown key, not both")

    @classmethod
    def of_borrower(cls, borrower_id: int) -> LoginSubject:
        return cls(borrower_id=borrower_id)

    @classmethod
    def of_unknown_key(cls, key_tag: bytes) -> LoginSubject:
        return cls(key_tag=key_tag)


@dataclass(frozen=True, slots=True)
class LoginAttempts:
    """One subject's consecutive failures for one login method, its lockouts, and the password
    checks under way (reserved, not yet known to have failed)."""

    consecutive_failures: int = 0
    lockouts: int = 0
    locked_until: dt.datetime | None = None
    last_failure_at: dt.datetime | None = None
    checks_in_flight: int = 0
    in_flight_until: dt.datetime | None = None

    def is_locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def current(self, now: dt.datetime, policy: LockoutPolicy) -> LoginAttempts:
        """As they stand at ``now``: checks past their timeout counted as failures, and
        everything forgotten ``forget_after`` after the last of it."""
        if self.last_failure_at is None and self.locked_until is None and not self.checks_in_flight:
            return self  # nothing to remember: most logins, every one of them after a success
        state = self
        if state.checks_in_flight and state.in_flight_until and now >= state.in_flight_until:
            stale, at = state.checks_in_flight, state.in_flight_until
            state = replace(state, checks_in_flight=0, in_flight_until=None)
            for _ in range(stale):
                state = state.failed(at, policy)
        forget_at = state.forget_at(policy)
        if forget_at is not None and now >= forget_at and not state.checks_in_flight:
            return LoginAttempts()
        return state

    @property
    def last_event_at(self) -> dt.datetime | None:
        """The last failure, the end of the lock or of the checks under way: whichever is
        latest (None: there is nothing to remember)."""
        times = [t for t in (self.last_failure_at, self.locked_until, self.in_flight_until) if t]
        return max(times) if times else None

    def forget_at(self, policy: LockoutPolicy) -> dt.datetime | None:
        """When nothing of this is remembered any more (None: nothing is now)."""
        last = self.last_event_at
        return None if last is None else last + policy.forget_after

    def failed(self, now: dt.datetime, policy: LockoutPolicy) -> LoginAttempts:
        """After a failure: locked once the failures reach the policy's count."""
        failures = self.consecutive_failures + 1
        if failures < policy.failures_before_lock:
            return replace(self, consecutive_failures=failures, last_failure_at=now)
        return replace(
            self,
            consecutive_failures=0,
            lockouts=self.lockouts + 1,
            locked_until=now + policy.lock_duration(self.lockouts),
            last_failure_at=now,
        )

    def succeeded(self) -> LoginAttempts:
        """A success (or a new PIN or password) is a clean slate; checks still under way stay
        counted until they report."""
        return LoginAttempts(
            checks_in_flight=self.checks_in_flight, in_flight_until=self.in_flight_until
        )

    def may_check(self, policy: LockoutPolicy) -> bool:
        """Whether one more check may start: the failures so far and the checks under way,
        all of which may yet fail, stay within the count that locks."""
        return self.consecutive_failures + self.checks_in_flight < policy.failures_before_lock

    def reserved(self, now: dt.datetime, policy: LockoutPolicy) -> LoginAttempts:
        """With one more check under way (the caller has asked may_check first)."""
        return replace(
            self,
            checks_in_flight=self.checks_in_flight + 1,
            in_flight_until=now + policy.check_timeout,
        )

    def released(self, matched: bool, now: dt.datetime, policy: LockoutPolicy) -> LoginAttempts:
        """After a reserved check reported: a success clears, a failure counts."""
        left = max(0, self.checks_in_flight - 1)
        state = replace(
            self, checks_in_flight=left, in_flight_until=self.in_flight_until if left else None
        )
        return state.succeeded() if matched else state.failed(now, policy)

    @property
    def clean(self) -> bool:
        return self == LoginAttempts()
