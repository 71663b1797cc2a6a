"""A postal address (registered or temporary), validated field by field."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from nlr_server.domain.errors import InvalidValue, Violations
from nlr_server.domain.validation import check, clean_text, field_path

MAX_LINES = 3
MAX_LINE_LENGTH = 100
MAX_CITY_LENGTH = 60
NORWAY = "NO"

# ISO 3166-1 alpha-2: phonenumbers knows every region with a telephone plan (plus the reserved
# AC and TA and the user-assigned XK for Kosovo, which postal services use too); these are the
# ISO territories without one.
_NO_TELEPHONE_PLAN = frozenset({"AQ", "BV", "GS", "HM", "PN", "TF", "UM"})
COUNTRY_CODES: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS) | _NO_TELEPHONE_PLAN

_NORWEGIAN_POSTAL_CODE = re.compile(r"[0-9]{4}")
_FOREIGN_POSTAL_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,9}")
# Beyond this many lines a request is not worth a violation per line.
_MAX_LINES_CHECKED = 10


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address: 1 to 3 lines, postal code, city (poststed) and ISO country code."""

    lines: tuple[str, ...]
    postal_code: str
    city: str
    country_code: str

    @classmethod
    def parse(
        cls,
        lines: Sequence[str],
        postal_code: str,
        city: str,
        country_code: str,
        violations: Violations,
        field_prefix: str,
    ) -> Address | None:
        """Validate and normalise each field; record one violation per bad field.

        Returns None if any field is bad. Empty address lines are dropped; whitespace is
        trimmed and collapsed; an empty country code means Norway.
        """
        if isinstance(lines, str):
            raise TypeError("lines must be a sequence of lines, not one string")
        ok = True

        def record(name: str, description: str) -> None:
            nonlocal ok
            ok = False
            violations.add(field_path(field_prefix, name), description)

        country = country_code.strip()
        country = country.upper() if country.isascii() else country
        country = country or NORWAY
        if country not in COUNTRY_CODES:
            record("country_code", "must be an ISO 3166-1 alpha-2 country code such as NO")

        clean_lines: list[str] = []
        given_lines = [(index, line) for index, line in enumerate(lines) if line.strip()]
        if not 1 <= len(given_lines) <= MAX_LINES:
            record("lines", f"must have 1 to {MAX_LINES} address lines")
        if len(given_lines) <= _MAX_LINES_CHECKED:
            for index, line in given_lines:
                try:
                    clean_lines.append(clean_text(line, max_length=MAX_LINE_LENGTH))
                except InvalidValue as exc:
                    record(f"lines[{index}]", str(exc))

        code = check(
            violations,
            field_path(field_prefix, "postal_code"),
            lambda: _parse_postal_code(postal_code, country),
        )
        clean_city = check(
            violations,
            field_path(field_prefix, "city"),
            lambda: clean_text(city, max_length=MAX_CITY_LENGTH),
        )
        if not ok or code is None or clean_city is None:
            return None
        return cls(tuple(clean_lines), code, clean_city, country)


def _parse_postal_code(raw: str, country: str) -> str:
    if country == NORWAY:
        code = raw.strip()
        if not code:
            raise InvalidValue("is required")
        if not _NORWEGIAN_POSTAL_CODE.fullmatch(code):
            raise InvalidValue("must be 4 digits for a Norwegian address")
        return code
    code = " ".join(raw.split())
    if not code:
        raise InvalidValue("is required")
    if not _FOREIGN_POSTAL_CODE.fullmatch(code):
        raise InvalidValue("must be 1 to 10 letters, digits, spaces or hyphens")
    # Upper-cased only once known to be ASCII: str.upper() maps some other letters to ASCII.
    return code.upper()


@dataclass(frozen=True, slots=True)
class TemporaryAddress:
    """An address that applies up to and including ``valid_until`` (midlertidig adresse)."""

    address: Address
    valid_until: dt.date

    def applies_on(self, day: dt.date) -> bool:
        return day <= self.valid_until


class AddressProtection(enum.IntEnum):
    """Adressebeskyttelse, weakest first: a stronger one never gives way to a weaker one found
    beside it."""

    NONE = 0  # ugradert
    CONFIDENTIAL = 1  # fortrolig: the address is never served
    STRICTLY_CONFIDENTIAL = 2  # strengtFortrolig: no address is available, and every one held
    # about the person must be deleted
