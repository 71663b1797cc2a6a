"""The card number (lånernummer) that identifies a borrower's library card: ``N`` + 9 digits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nlr_server.domain.errors import InvalidValue

_CARD_NUMBER = re.compile(r"N[0-9]{9}")


@dataclass(frozen=True, slots=True, order=True)
class CardNumber:
    """A card number such as ``N000123456``; build it with :meth:`parse` from untrusted input."""

    value: str

    @classmethod
    def parse(cls, raw: str) -> CardNumber:
        """Validate ``raw`` (surrounding whitespace and a lower-case ``n`` are accepted)."""
        candidate = raw.strip()
        # upper() only on the letter: str.upper() could map other characters to ASCII ones.
        if candidate[:1] == "n":
            candidate = "N" + candidate[1:]
        if not _CARD_NUMBER.fullmatch(candidate):
            raise InvalidValue('must be "N" followed by 9 digits')
        return cls(candidate)

    def __str__(self) -> str:
        return self.value
