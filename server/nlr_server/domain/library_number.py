"""The library number (biblioteknummer) from Base Bibliotek: type digit, municipality, local id."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nlr_server.domain.errors import InvalidValue

_LIBRARY_NUMBER = re.compile(r"[0-9]{7}")
_ISIL_PREFIX = "NO-"


@dataclass(frozen=True, slots=True, order=True)
class LibraryNumber:
    """A 7-digit library number such as ``2030000``; its ISIL is ``NO-`` + the number."""

    value: str

    @classmethod
    def parse(cls, raw: str) -> LibraryNumber:
        """Validate ``raw``: 7 digits, or the ISIL form ``NO-1234567`` (whitespace is trimmed)."""
        candidate = raw.strip()
        prefix = candidate[: len(_ISIL_PREFIX)]
        # isascii() first: str.upper() maps some non-ASCII letters to ASCII ones.
        if prefix.isascii() and prefix.upper() == _ISIL_PREFIX:
            candidate = candidate[len(_ISIL_PREFIX) :]
        if not _LIBRARY_NUMBER.fullmatch(candidate):
            raise InvalidValue('must be 7 digits, or an ISIL "NO-" followed by 7 digits')
        return cls(candidate)

    @property
    def type_digit(self) -> int:
        """The first digit, which says what kind of library this is."""
        return int(self.value[0])

    @property
    def municipality_number(self) -> str:
        """The 4-digit municipality number (kommunenummer), leading zeros kept."""
        return self.value[1:5]

    @property
    def isil(self) -> str:
        """The library's ISIL (ISO 15511) identifier, e.g. ``NO-2030000``."""
        return _ISIL_PREFIX + self.value

    def __str__(self) -> str:
        return self.value
