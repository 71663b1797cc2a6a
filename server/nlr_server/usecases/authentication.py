"""Logging a borrower in by PIN or password, with lockout after repeated failures.

Failures are counted per login subject (domain/lockout.py): the borrower a card number or
identity belongs to, or, when no borrower holds it, that key itself. An unknown card therefore
costs the same work as a registered one (the same reads, the same write of a failure) and is
locked the same way, and a borrower with several keys gets no more guesses than one with one.

The password steps are separate functions because the password check itself (slow by design)
runs on its own bounded pool between them, never on a database worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.credentials import LoginMethod
from nlr_server.domain.errors import PermissionDenied, RateLimited, Unauthenticated
from nlr_server.domain.identity import IdentityValue
from nlr_server.domain.lockout import LockoutPolicy, LoginAttempts, LoginSubject
from nlr_server.domain.login import method_reaches, refusal_after_success
from nlr_server.usecases.ports import LoginCandidate, UnitOfWork, UnitOfWorkFactory

LoginKey = CardNumber | IdentityValue


def login_locked(attempts: LoginAttempts, now: dt.datetime) -> RateLimited:
    assert attempts.locked_until is not None
    return RateLimited(
        "too many wrong attempts: this way of logging in is locked for now",
        retry_after=(attempts.locked_until - now).total_seconds(),
        reason="LOGIN_LOCKED",
    )


def credentials_invalid() -> Unauthenticated:
    # The same answer for an unknown card or identity, a borrower without this secret, a
    # borrower whose security level this secret does not reach, and a wrong secret.
    return Unauthenticated(
        "the card number or the PIN or password is wrong", reason="CREDENTIALS_INVALID"
    )


def _subject(candidate: LoginCandidate | None, key_tag: bytes) -> LoginSubject:
    if candidate is not None:
        return LoginSubject.of_borrower(candidate.borrower_id)
    return LoginSubject.of_unknown_key(key_tag)


def method_opens(
    method: LoginMethod, holder: LoginCandidate | None, second_factor: bool = False
) -> bool:
    """Whether a right secret of this method may open anything: not for an unknown key
    (None), nor for a borrower whose security level the method does not reach (a PIN for one
    who has chosen to log in with a password only): domain/login.py. ``second_factor``: a TOTP
    code follows, which may take a password up to TWO_FACTOR."""
    return holder is not None and method_reaches(method, holder.security_level, second_factor)


@dataclass(frozen=True, slots=True)
class PinCheck:
    """How a PIN check went: whether the login was locked (the PIN then not checked), whether
    the PIN opened it, and the attempts as they now stand and as they were stored."""

    subject: LoginSubject
    locked: bool = False
    matched: bool = False
    attempts: LoginAttempts = field(default_factory=LoginAttempts)
    stored: LoginAttempts = field(default_factory=LoginAttempts)

    @property
    def changed(self) -> bool:
        return self.attempts != self.stored

    def save(self, uow: UnitOfWork) -> bool:
        """Stores the attempts if they changed; whether anything was written."""
        if not self.changed:
            return False
        uow.credentials.save_login_attempts(self.subject, LoginMethod.PIN, self.attempts)
        return True

    def refusal(self, now: dt.datetime) -> RateLimited:
        return login_locked(self.attempts, now)

    def locked_by_this_failure(self, now: dt.datetime) -> bool:
        return not self.locked and not self.matched and self.attempts.is_locked(now)


def check_pin(
    uow: UnitOfWork,
    subject: LoginSubject,
    verifier: str | None,
    opens: bool,
    matches: Callable[[str | None], bool],
    now: dt.datetime,
    policy: LockoutPolicy,
    stored: LoginAttempts | None = None,
) -> PinCheck:
    """One PIN check under the subject's lock (taken by the caller), in the caller's unit of
    work, on the subject's attempts as stored (read here unless the caller has them); the
    caller saves
    the outcome (PinCheck.save) and commits, after any write of its own to the borrower's row,
    so every transaction touches the borrower before its attempts, as a deletion does.

    A PIN check costs microseconds, so it is made while the lock is held: concurrent guesses
    queue, each sees the failures before it, and no more are checked than the lockout allows.
    Where the PIN cannot open anything (``opens`` false: unknown key, password-only borrower)
    ``matches`` is still called, with no verifier, so the answer and its time are those of a
    wrong PIN, and it counts as one.
    """
    if stored is None:
        stored = uow.credentials.login_attempts(subject, LoginMethod.PIN)
    attempts = stored.current(now, policy)
    if attempts.is_locked(now):
        return PinCheck(subject, locked=True, attempts=attempts, stored=attempts)
    matched = matches(verifier if opens else None)
    after = attempts.succeeded() if matched else attempts.failed(now, policy)
    return PinCheck(subject, matched=matched, attempts=after, stored=stored)


@dataclass(frozen=True, slots=True)
class PinLogin:
    """A PIN login: who holds the key (None: nobody), the whole borrower after a success,
    and how the check went."""

    holder: LoginCandidate | None
    borrower: Borrower | None
    check: PinCheck
    # Set when the right PIN still opens nothing (domain/login.py).
    refusal: PermissionDenied | None = None


def log_in_with_pin(
    unit_of_work: UnitOfWorkFactory,
    key: LoginKey,
    key_tag: bytes,
    matches: Callable[[str | None], bool],
    now: dt.datetime,
    policy: LockoutPolicy,
) -> PinLogin:
    """A whole PIN login in one transaction (see check_pin): a registered and an unknown key
    run the same statements up to the answer of a failure. A success reads the whole record;
    one that changes nothing (no failures to clear, already active today) writes nothing."""
    with unit_of_work() as uow:
        # Finds the holder and takes the login subject's lock, in one query.
        holder, stored = uow.credentials.claim_login(key, key_tag, LoginMethod.PIN, now)
        subject = _subject(holder, key_tag)
        verifier = holder.verifier if holder is not None else None
        pin_opens = method_opens(LoginMethod.PIN, holder)
        check = check_pin(uow, subject, verifier, pin_opens, matches, now, policy, stored)
        changed = False
        borrower = None
        if check.matched and holder is not None:
            borrower = uow.borrowers.get_by_id(holder.borrower_id)
            if borrower is not None and borrower.last_active_on != now.date():
                uow.credentials.mark_active(holder.borrower_id, now.date())
                changed = True
        if check.save(uow) or changed:
            uow.commit()
        refusal = refusal_after_success(borrower, now.date()) if borrower is not None else None
        return PinLogin(holder, borrower, check, refusal)


@dataclass(frozen=True, slots=True)
class ReservedCheck:
    """A password check allowed to start: who holds the key (None: nobody), the subject its
    outcome counts against, and the attempts with it counted as under way."""

    holder: LoginCandidate | None
    subject: LoginSubject
    attempts: LoginAttempts
    # Whether the method reaches the holder's security level (method_opens).
    opens: bool

    @property
    def verifier(self) -> str | None:
        """What the secret is checked against: None where it cannot open anything, so the
        check runs as long as a real one, never matches and counts as a failure."""
        if self.holder is None or not self.opens:
            return None
        return self.holder.verifier


def reserve_check(
    unit_of_work: UnitOfWorkFactory,
    key: LoginKey,
    key_tag: bytes,
    method: LoginMethod,
    now: dt.datetime,
    policy: LockoutPolicy,
    second_factor: bool = False,
) -> ReservedCheck | None:
    """Counts a check as under way, under the subject's lock, before the (slow) secret is
    checked outside any transaction. Refuses (LOGIN_LOCKED) while locked; None while the
    failures so far and the checks under way, should all of those fail, would already lock:
    the caller tries again shortly, when one of them has reported. So no more checks than the
    lockout allows are ever made, and yet concurrent right secrets all get checked."""
    with unit_of_work() as uow:
        holder, stored = uow.credentials.claim_login(key, key_tag, method, now)
        subject = _subject(holder, key_tag)
        if stored is None:
            stored = uow.credentials.login_attempts(subject, method)
        attempts = stored.current(now, policy)
        if attempts.is_locked(now):
            raise login_locked(attempts, now)
        if not attempts.may_check(policy):
            return None
        reserved = attempts.reserved(now, policy)
        uow.credentials.save_login_attempts(subject, method, reserved)
        uow.commit()
        return ReservedCheck(holder, subject, reserved, method_opens(method, holder, second_factor))


@dataclass(frozen=True, slots=True)
class FinishedCheck:
    """The attempts after a reported check, and the whole borrower after a success."""

    attempts: LoginAttempts
    borrower: Borrower | None
    # Set when the right secret still opens nothing (domain/login.py).
    refusal: PermissionDenied | None = None


def finish_check(
    unit_of_work: UnitOfWorkFactory,
    check: ReservedCheck,
    method: LoginMethod,
    matched: bool,
    now: dt.datetime,
    policy: LockoutPolicy,
    new_verifier: str | None = None,
) -> FinishedCheck:
    """Reports a reserved check: a failure counts (and may lock), a success clears the
    failures, notes the day (at most one write a day) and stores a re-made verifier."""
    with unit_of_work() as uow:
        uow.credentials.lock_login(check.subject)
        stored = uow.credentials.login_attempts(check.subject, method)
        after = stored.current(now, policy).released(matched, now, policy)
        borrower = None
        holder = check.holder
        if matched and holder is not None:
            # The borrower's row before the attempts (see check_pin).
            borrower = uow.borrowers.get_by_id(holder.borrower_id)
            if borrower is not None and borrower.last_active_on != now.date():
                uow.credentials.mark_active(holder.borrower_id, now.date())
            if new_verifier is not None and holder.verifier is not None:
                uow.credentials.rehash_password(holder.borrower_id, holder.verifier, new_verifier)
        if after != stored:
            uow.credentials.save_login_attempts(check.subject, method, after)
        uow.commit()
        refusal = refusal_after_success(borrower, now.date()) if borrower is not None else None
        return FinishedCheck(after, borrower, refusal)
