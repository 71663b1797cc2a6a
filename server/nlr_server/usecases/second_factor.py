"""The TOTP second factor: enrolment (a secret shown once, confirmed by a first code, with
recovery codes) and the check of a code, counted and locked as passwords are."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from nlr_server.crypto import totp
from nlr_server.crypto.totp import TotpSecretSealer
from nlr_server.domain.audit import Acting
from nlr_server.domain.credentials import LoginMethod, SecurityLevel
from nlr_server.domain.errors import FailedPrecondition, Unauthenticated
from nlr_server.domain.lockout import LockoutPolicy, LoginAttempts, LoginSubject
from nlr_server.domain.second_factor import totp_not_enrolled
from nlr_server.usecases.authentication import login_locked
from nlr_server.usecases.ports import UnitOfWork, UnitOfWorkFactory


class CodeKind(enum.Enum):
    TOTP = "totp"
    RECOVERY = "recovery"


@dataclass(frozen=True, slots=True)
class SecondFactorCode:
    kind: CodeKind
    value: str


class CodeOutcome(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    # The borrower has no confirmed second factor: nothing was checked or counted.
    NOT_ENROLLED = "not_enrolled"


@dataclass(frozen=True, slots=True)
class CodeCheck:
    outcome: CodeOutcome
    recovery_codes_left: int = 0
    # Whether this wrong code locked the second factor.
    locked_now: bool = False


def code_invalid() -> Unauthenticated:
    return Unauthenticated("the code is wrong or was used already", reason="CODE_INVALID")


def check_code(
    unit_of_work: UnitOfWorkFactory,
    borrower_id: int,
    code: SecondFactorCode,
    now: dt.datetime,
    policy: LockoutPolicy,
    sealer: TotpSecretSealer,
) -> CodeCheck:
    """Checks a TOTP or recovery code of a borrower with a confirmed second factor, under
    the borrower's login lock: a wrong code counts (5 in a row lock, LOGIN_LOCKED), a right
    one clears the count and is never accepted again. Refuses while locked."""
    with unit_of_work() as uow:
        subject, stored, attempts = _unlocked_attempts(uow, borrower_id, now, policy)
        factor = uow.second_factors.totp_of(borrower_id)
        if factor is None or not factor.confirmed:
            return CodeCheck(CodeOutcome.NOT_ENROLLED)
        if code.kind is CodeKind.TOTP:
            secret = sealer.open(factor.secret_ciphertext, borrower_id)
            step = totp.matching_step(secret, code.value, now, factor.last_step)
            accepted = step is not None and uow.second_factors.accept_step(borrower_id, step)
        else:
            accepted = _use_recovery_code(uow, borrower_id, code.value, now)
        after = attempts.succeeded() if accepted else attempts.failed(now, policy)
        if after != stored:
            uow.credentials.save_login_attempts(subject, LoginMethod.TOTP, after)
        left = len(uow.second_factors.recovery_codes(borrower_id))
        uow.commit()
        if not accepted:
            return CodeCheck(CodeOutcome.WRONG, left, locked_now=after.is_locked(now))
        return CodeCheck(CodeOutcome.ACCEPTED, left)


def _unlocked_attempts(
    uow: UnitOfWork, borrower_id: int, now: dt.datetime, policy: LockoutPolicy
) -> tuple[LoginSubject, LoginAttempts, LoginAttempts]:
    """The borrower's TOTP attempts under their login lock, as stored and as they stand now;
    LOGIN_LOCKED while locked."""
    subject = LoginSubject.of_borrower(borrower_id)
    uow.credentials.lock_login(subject)
    stored = uow.credentials.login_attempts(subject, LoginMethod.TOTP)
    attempts = stored.current(now, policy)
    if attempts.is_locked(now):
        raise login_locked(attempts, now)
    return subject, stored, attempts


def _use_recovery_code(uow: UnitOfWork, borrower_id: int, code: str, now: dt.datetime) -> bool:
    if not totp.is_recovery_code_shaped(code):
        return False
    for code_id, verifier in uow.second_factors.recovery_codes(borrower_id):
        if totp.recovery_matches(code, verifier):
            return uow.second_factors.use_recovery_code(code_id, now)
    return False


def enroll(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    borrower_id: int,
    card_number: str,
    now: dt.datetime,
    sealer: TotpSecretSealer,
) -> str:
    """A new secret, unconfirmed, in place of an unconfirmed one; its ``otpauth://`` URI, shown
    this once. Refused while a confirmed one is in use."""
    with unit_of_work() as uow:
        factor = uow.second_factors.totp_of(borrower_id)
        if factor is not None and factor.confirmed:
            raise FailedPrecondition(
                "two-factor login is set up already: turn it off first (DisableTotp)",
                reason="TOTP_ALREADY_ENROLLED",
            )
        secret = totp.new_secret()
        sealed = sealer.seal(secret, borrower_id)
        uow.second_factors.begin_totp(borrower_id, sealed.ciphertext, sealed.key_version, now)
        uow.audit.append([acting.event(now, card_number=card_number, borrower_id=borrower_id)])
        uow.commit()
        return totp.provisioning_uri(secret, card_number)


def confirm(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    borrower_id: int,
    card_number: str,
    code: str,
    now: dt.datetime,
    policy: LockoutPolicy,
    sealer: TotpSecretSealer,
) -> list[str]:
    """Confirms the enrolment with the app's first code; the recovery codes, shown this once.
    A wrong code counts as a wrong second factor and changes nothing else."""
    with unit_of_work() as uow:
        subject, stored, attempts = _unlocked_attempts(uow, borrower_id, now, policy)
        factor = uow.second_factors.totp_of(borrower_id)
        if factor is None:
            raise totp_not_enrolled()
        if factor.confirmed:
            raise FailedPrecondition(
                "two-factor login is set up already", reason="TOTP_ALREADY_ENROLLED"
            )
        secret = sealer.open(factor.secret_ciphertext, borrower_id)
        step = totp.matching_step(secret, code, now, None)
        if step is None:
            uow.credentials.save_login_attempts(
                subject, LoginMethod.TOTP, attempts.failed(now, policy)
            )
            uow.commit()
            raise code_invalid()
        codes = totp.new_recovery_codes()
        uow.second_factors.confirm_totp(
            borrower_id, step, now, [totp.recovery_verifier(c) for c in codes]
        )
        if attempts != stored or stored.consecutive_failures:
            uow.credentials.save_login_attempts(subject, LoginMethod.TOTP, attempts.succeeded())
        uow.audit.append([acting.event(now, card_number=card_number, borrower_id=borrower_id)])
        uow.commit()
        return codes


def disable(
    unit_of_work: UnitOfWorkFactory,
    acting: Acting,
    borrower_id: int,
    card_number: str,
    now: dt.datetime,
) -> None:
    """Turns two-factor login off, with its recovery codes; refused while the borrower's level
    needs it."""
    with unit_of_work() as uow:
        borrower = uow.borrowers.get_by_id(borrower_id)
        if borrower is not None and borrower.personal.security_level is SecurityLevel.TWO_FACTOR:
            raise FailedPrecondition(
                "the security level is two-factor: choose another level first",
                reason="SECURITY_LEVEL_NEEDS_TOTP",
            )
        if not uow.second_factors.remove_totp(borrower_id):
            raise totp_not_enrolled()
        uow.audit.append([acting.event(now, card_number=card_number, borrower_id=borrower_id)])
        uow.commit()
