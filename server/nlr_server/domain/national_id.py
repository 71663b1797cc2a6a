"""The national id of a borrower: fødselsnummer, D-number, DUF number or synthetic test number."""

from __future__ import annotations

import datetime
import enum
import functools
import re
from dataclasses import dataclass, field

from nlr_server.domain.errors import InvalidValue

_DIGITS = re.compile(r"[0-9]+")
_SEPARATORS = str.maketrans("", "", " -")

# Weights of the two mod-11 check digits of an 11-digit number (Folkeregisteret).
_WEIGHTS_1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_WEIGHTS_2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
# Weights of the DUF number's check digits over its first ten digits (see _is_valid_duf).
_DUF_WEIGHTS = (4, 6, 3, 2, 4, 6, 3, 2, 7, 5)

_D_NUMBER_DAY_OFFSET = 40
_H_NUMBER_MONTH_OFFSET = 40
_SYNTHETIC_MONTH_OFFSET = 80


class NationalIdKind(enum.StrEnum):
    """Which kind of national id a number is."""

    FODSELSNUMMER = enum.auto()
    D_NUMBER = enum.auto()
    DUF = enum.auto()
    SYNTHETIC = enum.auto()


@dataclass(frozen=True, slots=True)
class NationalId:
    """A validated national id.

    The digits are personal data: they are only available as ``value``; ``repr()`` and
    ``str()`` mask them so that a national id can never end up in a log line. Build one with
    :meth:`parse` from untrusted input; the constructor trusts its arguments (for values the
    register has already validated, e.g. decrypted from the store).
    """

    value: str = field(repr=False)
    kind: NationalIdKind

    @classmethod
    def parse(
        cls, raw: str, *, allow_synthetic: bool, today: datetime.date | None = None
    ) -> NationalId:
        """Validate ``raw`` (spaces and hyphens are ignored) and tell which kind it is.

        11 digits: a fødselsnummer, a D-number (day + 40), or, only when ``allow_synthetic``,
        a synthetic test number (month + 80, as in Skatteetaten's Tenor test data), each with
        two valid mod-11 check digits and a real birth date that is not after ``today``.
        H-numbers (month + 40) and FH-numbers (first digit 8 or 9) are refused: they are
        emergency and health-service numbers, not ids of a borrower.

        12 digits: a DUF number from UDI (see :func:`_is_valid_duf`).
        """
        if today is None:
            today = datetime.date.today()
        digits = raw.strip().translate(_SEPARATORS)
        if _DIGITS.fullmatch(digits):
            if len(digits) == 11:
                return cls(digits, _eleven_digit_kind(digits, allow_synthetic, today))
            if len(digits) == 12:
                if not _is_valid_duf(digits, today):
                    raise InvalidValue(
                        "a 12-digit DUF number must start with its registration year "
                        "and have valid check digits"
                    )
                return cls(digits, NationalIdKind.DUF)
        raise InvalidValue(
            "must be 11 digits (fødselsnummer or D-number) or 12 digits (DUF number)"
        )

    @property
    def birth_date(self) -> datetime.date | None:
        """The birth date the number holds; None for a DUF number, which holds none."""
        if self.kind is NationalIdKind.DUF:
            return None
        return _birth_date(self.value)

    def __repr__(self) -> str:
        return f"NationalId(kind={self.kind.name}, value={'*' * len(self.value)})"

    def __str__(self) -> str:
        return repr(self)


def make_fodselsnummer(birth_date: datetime.date, serial: int) -> str:
    """Build a valid fødselsnummer for ``birth_date``: for tests only, never for real borrowers.

    ``serial`` (0, 1, 2, ...) picks the individual number: the ``serial``-th one in the range
    Folkeregisteret uses for that century whose check digits are valid. Different serials give
    different numbers; the same arguments always give the same number. Such a number may
    belong to a real person, which is why demo data uses :func:`make_synthetic_national_id`.
    Raises ValueError if the year is outside 1854-2039 or the serial is past the range.
    """
    return _make_eleven_digits(birth_date, serial, month_offset=0)


def make_synthetic_national_id(birth_date: datetime.date, serial: int) -> str:
    """Build a valid synthetic test number (month + 80) for ``birth_date``.

    For demo data and test fixtures; ``serial`` works as in :func:`make_fodselsnummer`.
    """
    return _make_eleven_digits(birth_date, serial, month_offset=_SYNTHETIC_MONTH_OFFSET)


def _eleven_digit_kind(digits: str, allow_synthetic: bool, today: datetime.date) -> NationalIdKind:
    if not _has_valid_check_digits(digits):
        raise InvalidValue("must be 11 digits with valid check digits")
    if digits[0] in "89":
        raise InvalidValue("FH-numbers are not accepted")
    day, month = int(digits[0:2]), int(digits[2:4])
    kind = NationalIdKind.D_NUMBER if day > _D_NUMBER_DAY_OFFSET else NationalIdKind.FODSELSNUMMER
    if _H_NUMBER_MONTH_OFFSET < month <= _H_NUMBER_MONTH_OFFSET + 12:
        raise InvalidValue("H-numbers are not accepted")
    if _SYNTHETIC_MONTH_OFFSET < month <= _SYNTHETIC_MONTH_OFFSET + 12:
        if not allow_synthetic:
            raise InvalidValue("synthetic test numbers are not accepted here")
        kind = NationalIdKind.SYNTHETIC
    birth_date = _birth_date(digits)
    if birth_date is None:
        raise InvalidValue("does not hold a valid birth date")
    if birth_date > today:
        raise InvalidValue("holds a birth date in the future")
    return kind


def _check_digits(first_nine: str) -> str | None:
    """The two check digits of an 11-digit number, or None if no valid pair exists."""
    k1 = -sum(w * int(d) for w, d in zip(_WEIGHTS_1, first_nine, strict=True)) % 11
    if k1 == 10:
        return None
    first_ten = first_nine + str(k1)
    k2 = -sum(w * int(d) for w, d in zip(_WEIGHTS_2, first_ten, strict=True)) % 11
    if k2 == 10:
        return None
    return f"{k1}{k2}"


def _has_valid_check_digits(digits: str) -> bool:
    return _check_digits(digits[:9]) == digits[9:]


def _birth_date(digits: str) -> datetime.date | None:
    """The birth date of an 11-digit number, after undoing the D-number and synthetic offsets.

    The century follows from the individual number, as in Folkeregisteret's rules (and
    ``stdnum.no.fodselsnummer``): 000-499 1900-1999, 500-749 1854-1899, 500-999 2000-2039,
    900-999 also 1940-1999.
    """
    day, month, year = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    individual = int(digits[6:9])
    if day > _D_NUMBER_DAY_OFFSET:
        day -= _D_NUMBER_DAY_OFFSET
    if month > _SYNTHETIC_MONTH_OFFSET:
        month -= _SYNTHETIC_MONTH_OFFSET
    if individual < 500:
        year += 1900
    elif individual < 750 and year >= 54:
        year += 1800
    elif year < 40:
        year += 2000
    elif individual >= 900:
        year += 1900
    else:
        return None
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _is_valid_duf(digits: str, today: datetime.date) -> bool:
    """Whether a 12-digit number is a plausible DUF number.

    A DUF number is the 4-digit year the person was registered in UDI's DUF system, a 6-digit
    serial and two check digits: the weighted sum of the first ten digits (weights 4, 6, 3, 2,
    4, 6, 3, 2, 7, 5) modulo 11, written as two digits (00-10). UDI publishes no specification
    we could cite; the algorithm is the one documented by Feide (lovas.info, "Identitetsnummer
    i Norge") and used by independent open-source validators, which agree with each other.
    If real DUF numbers turn up that fail it, validate only the length and year instead.
    """
    year = int(digits[:4])
    if not 1900 <= year <= today.year:
        return False
    remainder = sum(w * int(d) for w, d in zip(_DUF_WEIGHTS, digits[:10], strict=True)) % 11
    return digits[10:] == f"{remainder:02d}"


def _individual_range(year: int) -> range:
    if 1854 <= year <= 1899:
        return range(500, 750)
    if 1900 <= year <= 1999:
        return range(0, 500)
    if 2000 <= year <= 2039:
        return range(500, 1000)
    raise ValueError("birth year must be 1854-2039")


@functools.lru_cache(maxsize=4096)
def _valid_suffixes(stem: str, individuals: range) -> tuple[str, ...]:
    """Every individual number + check digits that completes ``stem`` (DDMMYY) validly."""
    suffixes = []
    for individual in individuals:
        body = f"{stem}{individual:03d}"
        check = _check_digits(body)
        if check is not None:
            suffixes.append(f"{individual:03d}{check}")
    return tuple(suffixes)


def _make_eleven_digits(birth_date: datetime.date, serial: int, *, month_offset: int) -> str:
    stem = f"{birth_date.day:02d}{birth_date.month + month_offset:02d}{birth_date.year % 100:02d}"
    suffixes = _valid_suffixes(stem, _individual_range(birth_date.year))
    if not 0 <= serial < len(suffixes):
        raise ValueError(f"serial must be 0 to {len(suffixes) - 1} for this birth date")
    return stem + suffixes[serial]
