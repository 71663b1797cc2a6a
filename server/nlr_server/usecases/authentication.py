"""Logging a borrower in by PIN or password, with lockout after repeated failures.

The steps are separate functions because the password check itself (slow by design) runs on
its own bounded pool between them, never on a database worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.errors import RateLimited, Unauthenticated
from nlr_server.domain.identity import IdentityValue
from nlr_server.domain.lockout import LockoutPolicy, LoginAttempts
from nlr_server.usecases.borrowers import login_locked
from nlr_server.usecases.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class LoginState:
    """What a login needs to know before it checks the secret."""

    borrower: Borrower
    verifier: str | None
    attempts: LoginAttempts


def credentials_invalid() -> Unauthenticated:
    # The same answer for an unknown card or identity, a borrower without this secret and a
    # wrong one.
    return Unauthenticated(
        "the card number or the PIN or password is wrong", reason="CREDENTIALS_INVALID"
    )


def begin_login(
    unit_of_work: UnitOfWorkFactory,
    key: CardNumber | IdentityValue,
    method: LoginMethod,
    now: dt.datetime,
) -> LoginState | None:
    """The borrower, their verifier and recent attempts; None for an unknown card number or
    identity (or one whose deletion time has come)."""
    with unit_of_work(read_only=True) as uow:
        borrower = (
            uow.borrowers.get_by_card_number(key)
            if isinstance(key, CardNumber)
            else uow.borrowers.get_by_identity(key, now)
        )
        if borrower is None or borrower.id is None:
            return None
        verifier, attempts = uow.credentials.login_secrets(borrower.id, method)
        return LoginState(borrower=borrower, verifier=verifier, attempts=attempts)


@dataclass(frozen=True, slots=True)
class PinLogin:
    """How a PIN login went: the borrower (None: unknown), whether the login was locked (the PIN
    then not checked), whether the PIN matched, and the attempts as they now stand."""

    borrower: Borrower | None
    locked: bool = False
    matched: bool = False
    attempts: LoginAttempts = field(default_factory=LoginAttempts)

    def refusal(self, now: dt.datetime) -> RateLimited:
        return login_locked(self.attempts, now)


def log_in_with_pin(
    unit_of_work: UnitOfWorkFactory,
    key: CardNumber | IdentityValue,
    matches: Callable[[str | None], bool],
    now: dt.datetime,
    policy: LockoutPolicy,
) -> PinLogin:
    """A whole PIN login in one transaction, under the borrower's lock.

    A PIN check costs microseconds, so it is made while the lock is held: concurrent guesses
    queue, each sees the failures before it, and no more are checked than the lockout allows.
    A success that changes nothing (no failures to clear, already active today) writes nothing.
    Passwords, slow by design, are checked outside any transaction (reserve_attempt).
    """
    with unit_of_work() as uow:
        borrower = (
            uow.borrowers.get_by_card_number(key)
            if isinstance(key, CardNumber)
            else uow.borrowers.get_by_identity(key, now)
        )
        if borrower is None or borrower.id is None:
            return PinLogin(None)
        if not uow.credentials.lock_for_attempt(borrower.id):
            return PinLogin(None)
        verifier, attempts = uow.credentials.login_secrets(borrower.id, LoginMethod.PIN)
        if attempts.is_locked(now):
            return PinLogin(borrower, locked=True, attempts=attempts)
        matched = matches(verifier)
        after = attempts.succeeded() if matched else attempts.failed(now, policy)
        changed = after != attempts
        if changed:
            uow.credentials.save_attempts(borrower.id, LoginMethod.PIN, after)
        if matched and borrower.last_active_on != now.date():
            uow.credentials.mark_active(borrower.id, now.date())
            changed = True
        if changed:
            uow.commit()
        return PinLogin(borrower, matched=matched, attempts=after)


def refuse_if_locked(state: LoginState, now: dt.datetime) -> None:
    if state.attempts.is_locked(now):
        raise login_locked(state.attempts, now)


def reserve_attempt(
    unit_of_work: UnitOfWorkFactory,
    borrower_id: int,
    method: LoginMethod,
    now: dt.datetime,
    policy: LockoutPolicy,
) -> LoginAttempts:
    """Counts this attempt as a failure before the secret is checked, under the borrower's lock;
    refuses if a concurrent attempt has locked the login meanwhile. Returns the attempts with
    this one counted (locked, if it was the one too many)."""
    with unit_of_work() as uow:
        if not uow.credentials.lock_for_attempt(borrower_id):
            raise credentials_invalid()
        attempts = uow.credentials.attempts(borrower_id, method)
        if attempts.is_locked(now):
            raise login_locked(attempts, now)
        counted = attempts.failed(now, policy)
        uow.credentials.save_attempts(borrower_id, method, counted)
        uow.commit()
        return counted


def success_needs_writing(
    state: LoginState, today: dt.date, new_password_verifier: str | None = None
) -> bool:
    """Whether a success changes anything: most do not, and then cost no transaction."""
    return (
        not state.attempts.clean
        or state.borrower.last_active_on != today
        or new_password_verifier is not None
    )


def record_success(
    unit_of_work: UnitOfWorkFactory,
    state: LoginState,
    method: LoginMethod,
    today: dt.date,
    new_password_verifier: str | None = None,
) -> None:
    """Clears failures, notes the day (at most one write a day) and stores a re-made verifier."""
    borrower_id = state.borrower.id
    assert borrower_id is not None
    if not success_needs_writing(state, today, new_password_verifier):
        return
    stale_day = state.borrower.last_active_on != today
    with unit_of_work() as uow:
        if not state.attempts.clean:
            uow.credentials.save_attempts(borrower_id, method, LoginAttempts())
        if stale_day:
            uow.credentials.mark_active(borrower_id, today)
        if new_password_verifier is not None and state.verifier is not None:
            uow.credentials.rehash_password(borrower_id, state.verifier, new_password_verifier)
        uow.commit()
