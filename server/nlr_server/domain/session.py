"""A borrower's SelfService session: opened by a login through a portal, bound to that portal's
certificate, short-lived and sliding up to a limit.

How strong a session is (``strength``, a SecurityLevel) is what its login reached: a password
alone is PASSWORD, with a TOTP code after it TWO_FACTOR, ID-porten EID. What it opens:

- below the borrower's own security level, nothing but the second factor and logging out (a
  password login of a TWO_FACTOR borrower waits for its code);
- reading or exporting the record, changing a PIN or password and lowering the level need two
  factors (TWO_FACTOR or EID), whatever level the borrower has chosen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from nlr_server.domain.credentials import LoginMethod, SecurityLevel
from nlr_server.domain.errors import PermissionDenied, Unauthenticated

# What reading the record needs: "Dette krever bruk av to-faktorautentisering."
TWO_FACTORS = SecurityLevel.TWO_FACTOR


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    # Idle time after which a session ends (NLR_SESSION_MINUTES).
    idle: dt.timedelta = dt.timedelta(minutes=15)
    # However busy, a session ends this long after its login (NLR_SESSION_MAX_MINUTES).
    longest: dt.timedelta = dt.timedelta(hours=8)
    # A use moves the expiry on only once it is at least this old, so most calls write nothing.
    extend_every: dt.timedelta = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Session:
    borrower_id: int
    card_number: str
    certificate_fingerprint: str
    method: LoginMethod
    strength: SecurityLevel
    created_at: dt.datetime
    expires_at: dt.datetime
    ends_at: dt.datetime

    @classmethod
    def opened(
        cls,
        borrower_id: int,
        card_number: str,
        certificate_fingerprint: str,
        method: LoginMethod,
        strength: SecurityLevel,
        now: dt.datetime,
        policy: SessionPolicy,
    ) -> Session:
        ends_at = now + policy.longest
        return cls(
            borrower_id,
            card_number,
            certificate_fingerprint,
            method,
            strength,
            now,
            min(now + policy.idle, ends_at),
            ends_at,
        )

    def is_live(self, now: dt.datetime) -> bool:
        return now < self.expires_at

    def extended(self, now: dt.datetime, policy: SessionPolicy) -> Session | None:
        """The session with its expiry moved on by this use, or None when it need not move."""
        expires_at = min(now + policy.idle, self.ends_at)
        if expires_at - self.expires_at < policy.extend_every:
            return None
        return replace(self, expires_at=expires_at)

    def strengthened(self, strength: SecurityLevel) -> Session:
        return replace(self, strength=max(self.strength, strength))

    def opens(self, level: SecurityLevel) -> bool:
        """Whether the session reaches the borrower's chosen level (else it waits for its
        second factor)."""
        return self.strength >= level


def session_invalid() -> Unauthenticated:
    # The same for a token never issued, one that expired, one logged out or revoked, and one
    # shown by another portal certificate than it was issued to.
    return Unauthenticated(
        "no session: log in again (the session expired, was ended, or is not this portal's)",
        reason="SESSION_INVALID",
    )


def require_opened(session: Session, level: SecurityLevel) -> None:
    """Refuses a call of a session that has not reached the borrower's security level."""
    if not session.opens(level):
        raise PermissionDenied(
            "this login needs its second factor first (ConfirmSecondFactor)",
            reason="SECOND_FACTOR_REQUIRED",
        )


def require_two_factors(session: Session) -> None:
    """Refuses a call that needs two factors (reading or exporting the record, changing a
    secret, lowering the level) from a session of one."""
    if session.strength < TWO_FACTORS:
        raise PermissionDenied(
            "this needs a login with two factors: a password and a TOTP code, or ID-porten",
            reason="TWO_FACTORS_REQUIRED",
        )


def require_may_choose(session: Session, old: SecurityLevel, new: SecurityLevel) -> None:
    """A borrower chooses a level no higher than their session's own strength (so they never
    lock themself out by a level they cannot reach), and lowers it only with two factors."""
    if new > session.strength:
        raise PermissionDenied(
            f"a level above this login's own ({session.strength.value}) cannot be chosen in it",
            reason="SECURITY_LEVEL_ABOVE_SESSION",
        )
    if new < old:
        require_two_factors(session)
