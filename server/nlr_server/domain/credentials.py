"""PINs and passwords as values: validated once, never shown in a repr or a log line."""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field

from nlr_server.domain.errors import InvalidValue

MIN_PIN_DIGITS, MAX_PIN_DIGITS = 4, 8
MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH = 8, 128


class SecurityLevel(enum.StrEnum):
    """The weakest way of logging in a borrower accepts."""

    PIN = "pin"
    PASSWORD = "password"


class LoginMethod(enum.StrEnum):
    PIN = "pin"
    PASSWORD = "password"


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
