"""PINs and passwords as values: validated once, never shown in a repr or a log line."""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field

from nlr_server.domain.errors import InvalidValue

MIN_PIN_DIGITS, MAX_PIN_DIGITS = 4, 8
MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH = 8, 128


class SecurityLevel(enum.Enum):
    """The weakest way of logging in a borrower accepts, ordered from weakest to strongest.

    Ordered by rank, not by name (a plain Enum, not a StrEnum, so no comparison falls back to
    the strings stored in the database): a level added later (two-factor, eID) is placed in
    _LEVEL_ORDER and every check made with < and opens() follows.
    """

    PIN = "pin"
    PASSWORD = "password"

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
_LEVEL_ORDER: tuple[SecurityLevel, ...] = (SecurityLevel.PIN, SecurityLevel.PASSWORD)


def _level(other: object) -> SecurityLevel:
    if not isinstance(other, SecurityLevel):
        # Not NotImplemented: Python would then compare a str by its letters.
        raise TypeError(f"a SecurityLevel is compared only with another, not {type(other)}")
    return other


class LoginMethod(enum.StrEnum):
    PIN = "pin"
    PASSWORD = "password"

    @property
    def reaches(self) -> SecurityLevel:
        """The highest security level a login by this method opens."""
        return _REACHES[self]


_REACHES: dict[LoginMethod, SecurityLevel] = {
    LoginMethod.PIN: SecurityLevel.PIN,
    LoginMethod.PASSWORD: SecurityLevel.PASSWORD,
}


def opens(method: LoginMethod, level: SecurityLevel) -> bool:
    """Whether a right secret of this method logs in a borrower of this security level: the
    method reaches at least the level the borrower has chosen. Every login path asks this
    (VerifyPin, VerifyPassword, AffiliateBorrower's PIN proof)."""
    return method.reaches >= level


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
