"""PINs and passwords as values: validated once, never shown in a repr or a log line."""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field

from nlr_server.domain.errors import InvalidValue

MIN_PIN_DIGITS, MAX_PIN_DIGITS = 4, 8
MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH = 8, 128


class SecurityLevel(enum.Enum):
    """The weakest way of logging in a borrower accepts, ordered from weakest to strongest; also
    how strong a login was (what it reached).

    - PIN: a PIN or anything stronger.
    - PASSWORD: a password (or a Feide login), never a PIN.
    - TWO_FACTOR: a password (or Feide) and a TOTP code.
    - EID: ID-porten only.

    Ordered by rank, not by name (a plain Enum, not a StrEnum, so no comparison falls back to
    the strings stored in the database): a level added later is placed in _LEVEL_ORDER and
    every check made with < and opens() follows.
    """

    PIN = "pin"
    PASSWORD = "password"
    TWO_FACTOR = "two_factor"
    EID = "eid"

    @property
    def rank(self) -> int:
        return _LEVEL_ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        return self.rank < _level(other).rank

    def __le__(self, other: object) -> bool:
        return self.rank <= _level(other).rank

    def __gt__(self, other: object) -> bool:
        return self.rank > _level(other).rank

    def __ge__(self, other: object) -> bool:
        return self.rank >= _level(other).rank


# Weakest first. Only ever insert: a borrower's stored level keeps its name, not its rank.
_LEVEL_ORDER: tuple[SecurityLevel, ...] = (
    SecurityLevel.PIN,
    SecurityLevel.PASSWORD,
    SecurityLevel.TWO_FACTOR,
    SecurityLevel.EID,
)


def _level(other: object) -> SecurityLevel:
    if not isinstance(other, SecurityLevel):
        # Not NotImplemented: Python would then compare a str by its letters.
        raise TypeError(f"a SecurityLevel is compared only with another, not {type(other)}")
    return other


class LoginMethod(enum.StrEnum):
    """A way of proving who one is; also what failed logins are counted under (lockout)."""

    PIN = "pin"
    PASSWORD = "password"
    # The second factor: a TOTP code (RFC 6238) or one of the recovery codes.
    TOTP = "totp"
    IDPORTEN = "idporten"
    FEIDE = "feide"

    @property
    def reaches(self) -> SecurityLevel:
        """The security level a login by this method alone reaches."""
        reached = _REACHES.get(self)
        if reached is None:
            raise ValueError(f"{self.value} is a second factor, not a login of its own")
        return reached

    @property
    def takes_second_factor(self) -> bool:
        """Whether a TOTP code after this method makes the login TWO_FACTOR."""
        return self in (LoginMethod.PASSWORD, LoginMethod.FEIDE)


_REACHES: dict[LoginMethod, SecurityLevel] = {
    LoginMethod.PIN: SecurityLevel.PIN,
    LoginMethod.PASSWORD: SecurityLevel.PASSWORD,
    LoginMethod.FEIDE: SecurityLevel.PASSWORD,
    LoginMethod.IDPORTEN: SecurityLevel.EID,
}


def reached(method: LoginMethod, second_factor: bool = False) -> SecurityLevel:
    """How strong a login by ``method`` is, with or without a right TOTP code after it."""
    level = method.reaches
    if second_factor and method.takes_second_factor:
        return max(level, SecurityLevel.TWO_FACTOR)
    return level


def may_reach(method: LoginMethod, level: SecurityLevel) -> bool:
    """Whether a login by ``method``, with a second factor where it takes one, can reach
    ``level`` at all (a password for a TWO_FACTOR borrower can; for an EID one it cannot)."""
    return reached(method, second_factor=True) >= level


def opens(method: LoginMethod, level: SecurityLevel, second_factor: bool = False) -> bool:
    """Whether a right secret of this method (and a right TOTP code, if given) logs in a
    borrower of this security level: the login reaches at least the level the borrower has
    chosen. Every login path asks this (VerifyPin, VerifyPassword, AffiliateBorrower's PIN
    proof, SelfService's logins)."""
    return reached(method, second_factor) >= level


@dataclass(frozen=True, slots=True)
class Pin:
    value: str = field(repr=False)

    @classmethod
    def parse(cls, raw: str) -> Pin:
        if not (raw.isascii() and raw.isdigit()):
            raise InvalidValue(f"must be {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
        if not MIN_PIN_DIGITS <= len(raw) <= MAX_PIN_DIGITS:
            raise InvalidValue(f"must be {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
        return cls(raw)

    def __str__(self) -> str:
        return "Pin(****)"


@dataclass(frozen=True, slots=True)
class Password:
    value: str = field(repr=False)

    @classmethod
    def parse(cls, raw: str) -> Password:
        # NFC so that the same password typed on two keyboards verifies alike.
        text = unicodedata.normalize("NFC", raw)
        if not MIN_PASSWORD_LENGTH <= len(text) <= MAX_PASSWORD_LENGTH:
            raise InvalidValue(f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
        if any(unicodedata.category(c) == "Cc" for c in text):
            raise InvalidValue("must not contain control characters")
        return cls(text)

    def __str__(self) -> str:
        return "Password(********)"
