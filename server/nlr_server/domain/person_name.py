"""A borrower's name as given and family name, with the legacy register's "Surname, Given" form."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from nlr_server.domain.errors import InvalidValue, Violations
from nlr_server.domain.validation import check, clean_text, field_path

MAX_NAME_LENGTH = 100
# Besides letters (with their combining marks): space, hyphen, the apostrophes U+0027 and
# U+2019, period.
_PUNCTUATION = frozenset(" -'\u2019.")


@dataclass(frozen=True, slots=True)
class PersonName:
    """Given name(s) and family name, each trimmed, NFC-normalised and 1 to 100 characters."""

    given_name: str
    family_name: str

    @classmethod
    def parse(
        cls, given_name: str, family_name: str, violations: Violations, field_prefix: str
    ) -> PersonName | None:
        """Validate both parts, recording a violation for each bad one; None if either is bad."""
        given = check(
            violations, field_path(field_prefix, "given_name"), lambda: _clean_name(given_name)
        )
        family = check(
            violations, field_path(field_prefix, "family_name"), lambda: _clean_name(family_name)
        )
        if given is None or family is None:
            return None
        return cls(given, family)

    @staticmethod
    def parse_part(raw: str) -> str:
        """Validate one part on its own, as an update that changes only one part needs."""
        return _clean_name(raw)

    @classmethod
    def from_legacy(cls, navn: str) -> PersonName:
        """Parse the legacy register's ``"Surname, Given names"`` form, split at the first comma."""
        family_name, comma, given_name = navn.partition(",")
        if not comma:
            raise InvalidValue('must be "Surname, Given names" with a comma')
        return cls(_clean_name(given_name), _clean_name(family_name))

    @property
    def full_name(self) -> str:
        """Given and family name as written in Norway: ``"Kari Nordmann"``."""
        return f"{self.given_name} {self.family_name}"


def _clean_name(raw: str) -> str:
    name = clean_text(raw, max_length=MAX_NAME_LENGTH)
    if any(_is_digit(char) for char in name):
        raise InvalidValue("must not contain digits")
    if not all(_is_name_character(char) for char in name):
        raise InvalidValue("may contain only letters, spaces, hyphens, apostrophes and periods")
    if not any(unicodedata.category(char).startswith("L") for char in name):
        raise InvalidValue("must contain at least one letter")
    return name


def _is_digit(char: str) -> bool:
    return unicodedata.category(char).startswith("N")


def _is_name_character(char: str) -> bool:
    # Marks (M*) carry accents that have no precomposed letter in NFC.
    return char in _PUNCTUATION or unicodedata.category(char)[0] in "LM"
