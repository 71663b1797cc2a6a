"""One line of the legacy register's JSON Lines export, validated into a borrower record.

Each line is one JSON object. Every value is a string (or null / absent, which means empty),
except ``tilknyttede``. Unknown fields are ignored. Every value goes through the same domain
value types as CreateBorrower, so an imported record obeys the same rules as a created one.

=================  ==========================================================================
legacy field       register (and how it is read)
=================  ==========================================================================
lnr                ``card_number`` (CardNumber: ``N`` + 9 digits). Required.
fnr                national id (NationalId: fødselsnummer, D-number or DUF; synthetic test
                   numbers only with ``--allow-synthetic-ids`` / NLR_ALLOW_SYNTHETIC_IDS),
                   sealed: AES-256-GCM ciphertext plus blind index, as everywhere. Required.
navn               ``family_name`` and ``given_name`` from ``"Surname, Given names"``
                   (PersonName.from_legacy: split at the first comma). Required.
kjonn              ``sex``: ``M`` male, ``K`` (kvinne) female, empty unspecified; any case.
fdato              ``birth_date``, as ``YYYY-MM-DD`` or ``DD.MM.YYYY``. As in CreateBorrower the
                   birth date follows the national id: when both are given they must agree,
                   and it is required only with a DUF number (which holds no date).
p_adresse1/2       ``registered_address`` lines 1 and 2 (Address). Given when any p_* field is
p_postnr, p_sted   non-empty; then a line, postal code and city are required. p_land is the
p_land             ISO 3166-1 alpha-2 country code, empty meaning ``NO``.
m_adresse1/2,      ``temporary_address`` (the same rules), with ``gyldig_til`` as its
m_postnr, m_sted,  ``valid_until`` (a date in either format, required with an m_* field, at
m_land,            most 10 years after the import day). One whose last day is before the
gyldig_til         import day is left out (it would never be served), not rejected.
epost              ``email`` (EmailAddress, normalised); ``email_should_be_checked`` false.
tlf_mobil          ``mobile_phone`` (PhoneNumber: national form for Norway, or +CC..., to E.164).
tlf_hjemme         ``home_phone`` (the same).
tlf_jobb           ``work_phone`` (the same).
hjemmebibliotek    ``home_library`` (LibraryNumber); must be in the libraries table. Required.
tilknyttede        ``affiliations``: a JSON list of library numbers or one comma-separated
                   string; each must be in the libraries table. The home library is always
                   among them (added if the export left it out); duplicates count once. Each
                   affiliation's time is the borrower's creation time (the export has none).
opprettet          ``created_at``: ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` (or a space for ``T``),
                   with ``Z`` or an offset, else Norwegian local time; a date alone is
                   midnight. Missing, unreadable or after the import time: the import time.
opprettet_av       ``created_by``: a library number in the libraries table, else the home
                   library.
sist_endret        ``last_changed_at``: read as opprettet; missing, unreadable, before the
                   creation time or after the import time: the creation time.
sist_endret_av     ``last_changed_by``: as opprettet_av, else the creating library.
=================  ==========================================================================

Not in the export, so not imported: PIN and password (the legacy PIN was encrypted with a key
every vendor shared; borrowers set a new one), guardian links (so the under-15 guardian rule of
CreateBorrower is not applied to legacy records), identities, contact preferences, card expiry.
The security level is PIN. A rejected line's reason names the legacy field and what is wrong
with it, never the value. A valid line is a domain ``Borrower`` (the store maps it to its
columns as it maps a created one, store/record_columns.py) and its sealed national id; whether
its card number and national id are free is decided when its batch is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from nlr_server.crypto.national_id_sealer import NationalIdSealer, SealedNationalId
from nlr_server.domain.actor import Actor
from nlr_server.domain.address import Address, TemporaryAddress
from nlr_server.domain.borrower import Affiliation, Borrower, PersonalData, Sex
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.errors import InvalidArgument, InvalidValue, Violations
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.person_name import PersonName

NORWEGIAN_TIME = ZoneInfo("Europe/Oslo")
_LONGEST_TEMPORARY = dt.timedelta(days=3653)
_OLDEST_BIRTH_YEAR = 1880
_SEX = {"": Sex.UNSPECIFIED, "M": Sex.MALE, "K": Sex.FEMALE}
_NORWEGIAN_DATE = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ADDRESS_FIELDS = {
    "lines": "adresse1",
    "lines[0]": "adresse1",
    "lines[1]": "adresse2",
    "postal_code": "postnr",
    "city": "sted",
    "country_code": "land",
}
_STRING_FIELDS = (
    "lnr",
    "fnr",
    "navn",
    "kjonn",
    "fdato",
    "p_adresse1",
    "p_adresse2",
    "p_postnr",
    "p_sted",
    "p_land",
    "m_adresse1",
    "m_adresse2",
    "m_postnr",
    "m_sted",
    "m_land",
    "gyldig_til",
    "epost",
    "tlf_mobil",
    "tlf_hjemme",
    "tlf_jobb",
    "hjemmebibliotek",
    "opprettet",
    "opprettet_av",
    "sist_endret",
    "sist_endret_av",
)


@dataclass(frozen=True, slots=True)
class ImportContext:
    """What every line is checked against; the same in every run of one import."""

    libraries: frozenset[str]
    allow_synthetic_ids: bool
    # Fixed when the import first started: the fallback creation time and the "today" of the
    # date rules, so a resumed import decides every line as the first run would have.
    import_time: dt.datetime
    # The import time's date in Norway (worked out once: every line needs it several times).
    today: dt.date = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "today", self.import_time.astimezone(NORWEGIAN_TIME).date())


@dataclass(frozen=True, slots=True)
class ImportedBorrower:
    """A valid line: the borrower it describes and their sealed national id."""

    line: int
    borrower: Borrower
    national_id: SealedNationalId


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line: int
    reason: str


class _Reasons:
    """Problems of one line, each as ``legacy_field: what is wrong``."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(f"{field}: {description}")

    def check(self, field: str, parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except InvalidValue as error:
            self.add(field, str(error))
            return None


def parse_line(
    line: int, text: bytes | str, context: ImportContext, sealer: NationalIdSealer
) -> ImportedBorrower | RejectedLine:
    """The borrower one line describes, or why the line is rejected (never quoting a value)."""
    try:
        record = json.loads(text)
    except ValueError:
        return RejectedLine(line, "not valid JSON")
    if not isinstance(record, dict):
        return RejectedLine(line, "not a JSON object")
    reasons = _Reasons()
    fields: dict[str, str] = {}
    for name in _STRING_FIELDS:
        value = record.get(name)
        if value is None:
            fields[name] = ""
        elif isinstance(value, str):
            fields[name] = value.strip()
        else:
            reasons.add(name, "must be a string")
            fields[name] = ""
    imported = _borrower(line, fields, record.get("tilknyttede"), context, reasons, sealer)
    if reasons.items:
        return RejectedLine(line, "; ".join(reasons.items))
    assert imported is not None
    return imported


def _borrower(
    line: int,
    fields: dict[str, str],
    affiliated: Any,
    context: ImportContext,
    reasons: _Reasons,
    sealer: NationalIdSealer,
) -> ImportedBorrower | None:
    card_number = _required(reasons, fields, "lnr", CardNumber.parse)
    national_id = _required(
        reasons,
        fields,
        "fnr",
        lambda raw: NationalId.parse(
            raw, allow_synthetic=context.allow_synthetic_ids, today=context.today
        ),
    )
    name = _required(reasons, fields, "navn", PersonName.from_legacy)
    sex = _SEX.get(fields["kjonn"].upper())
    if sex is None:
        reasons.add("kjonn", 'must be "M", "K" or empty')
    birth_date = _birth_date(reasons, fields["fdato"], national_id, context.today)
    registered = _address(reasons, fields, "p", context)
    temporary = _address(reasons, fields, "m", context)
    valid_until = _valid_until(reasons, fields, temporary is not None, context.today)
    email = _optional(reasons, fields, "epost", EmailAddress.parse)
    phones = {
        legacy: _optional(reasons, fields, legacy, PhoneNumber.parse)
        for legacy in ("tlf_mobil", "tlf_hjemme", "tlf_jobb")
    }
    home = _required(reasons, fields, "hjemmebibliotek", _library_number)
    if home is not None and home.value not in context.libraries:
        reasons.add("hjemmebibliotek", "no such library in the register")
    affiliations = _affiliations(reasons, affiliated, home, context.libraries)
    if reasons.items:
        return None
    assert card_number and national_id and name and birth_date and home and sex is not None
    created_at = _time(fields["opprettet"], context.import_time) or context.import_time
    created_by = _library(fields["opprettet_av"], context.libraries) or home
    changed_at = _time(fields["sist_endret"], context.import_time)
    if changed_at is None or changed_at < created_at:
        changed_at = created_at
    changed_by = _library(fields["sist_endret_av"], context.libraries) or created_by
    if temporary is not None and valid_until is not None and valid_until < context.today:
        temporary, valid_until = None, None
    personal = PersonalData(
        name=name,
        birth_date=birth_date,
        sex=sex,
        registered_address=registered,
        email=email,
        mobile_phone=phones["tlf_mobil"],
        home_phone=phones["tlf_hjemme"],
        work_phone=phones["tlf_jobb"],
        security_level=SecurityLevel.PIN,
        temporary_address=(
            TemporaryAddress(temporary, valid_until)
            if temporary is not None and valid_until is not None
            else None
        ),
    )
    borrower = Borrower(
        card_number=card_number,
        personal=personal,
        home_library=home,
        # The export has no times of its own for them.
        affiliations=tuple(
            Affiliation(_library_number(number), created_at) for number in affiliations
        ),
        # The legacy register's creators and changers are libraries.
        created_by=_library_actor(created_by),
        created_at=created_at,
        last_changed_by=_library_actor(changed_by),
        last_changed_at=changed_at,
    )
    return ImportedBorrower(line, borrower, sealer.seal(national_id.value))


# A few hundred libraries fill millions of lines: each spelling is parsed once (a rejected
# one again each time, as the cache keeps no exceptions), and each library's actor made once.
@functools.lru_cache(maxsize=4096)
def _library_number(raw: str) -> LibraryNumber:
    return LibraryNumber.parse(raw)


@functools.lru_cache(maxsize=4096)
def _library_actor(number: LibraryNumber) -> Actor:
    return Actor.library(number)


def _required(reasons: _Reasons, fields: dict[str, str], name: str, parse: Any) -> Any:
    if not fields[name]:
        reasons.add(name, "is required")
        return None
    return reasons.check(name, parse, fields[name])


def _optional(reasons: _Reasons, fields: dict[str, str], name: str, parse: Any) -> Any:
    if not fields[name]:
        return None
    return reasons.check(name, parse, fields[name])


def parse_date(raw: str) -> dt.date:
    """A date as ``YYYY-MM-DD`` or the legacy ``DD.MM.YYYY``."""
    try:
        if _ISO_DATE.fullmatch(raw):
            return dt.date.fromisoformat(raw)
        match = _NORWEGIAN_DATE.fullmatch(raw)
        if match:
            day, month, year = (int(part) for part in match.groups())
            return dt.date(year, month, day)
    except ValueError:
        pass
    raise InvalidValue("must be a date as YYYY-MM-DD or DD.MM.YYYY")


def _birth_date(
    reasons: _Reasons, raw: str, national_id: NationalId | None, today: dt.date
) -> dt.date | None:
    given = None
    if raw:
        given = reasons.check("fdato", parse_date, raw)
        if given is not None and (given > today or given.year < _OLDEST_BIRTH_YEAR):
            reasons.add("fdato", "must be a real birth date, not in the future")
            given = None
    if national_id is None:
        return given
    held = national_id.birth_date
    if held is None:
        if given is None and not raw:
            reasons.add("fdato", "is required with a DUF number")
        return given
    if given is not None and given != held:
        reasons.add("fdato", "does not match the national id")
    return held


def _address(
    reasons: _Reasons, fields: dict[str, str], prefix: str, context: ImportContext
) -> Address | None:
    names = [f"{prefix}_{legacy}" for legacy in ("adresse1", "adresse2", "postnr", "sted", "land")]
    if not any(fields[name] for name in names):
        return None
    violations = Violations()
    address = Address.parse(
        [fields[names[0]], fields[names[1]]],
        fields[names[2]],
        fields[names[3]],
        fields[names[4]],
        violations,
        "",
    )
    try:
        violations.raise_if_any()
    except InvalidArgument as error:
        for violation in error.violations:
            legacy = _ADDRESS_FIELDS.get(violation.field, violation.field)
            reasons.add(f"{prefix}_{legacy}", violation.description)
    return address


def _valid_until(
    reasons: _Reasons, fields: dict[str, str], has_address: bool, today: dt.date
) -> dt.date | None:
    raw = fields["gyldig_til"]
    if not raw:
        if has_address:
            reasons.add("gyldig_til", "is required with a temporary address")
        return None
    day = reasons.check("gyldig_til", parse_date, raw)
    if day is not None and day > today + _LONGEST_TEMPORARY:
        reasons.add("gyldig_til", "must be at most 10 years after the import")
        return None
    return day if has_address else None


def _affiliations(
    reasons: _Reasons, raw: Any, home: LibraryNumber | None, libraries: Collection[str]
) -> tuple[str, ...]:
    if raw is None or raw == "":
        given: list[Any] = []
    elif isinstance(raw, str):
        given = raw.split(",")
    elif isinstance(raw, list):
        given = raw
    else:
        reasons.add("tilknyttede", "must be a list of library numbers or a comma-separated string")
        return ()
    numbers: list[str] = [] if home is None else [home.value]
    for index, item in enumerate(given):
        if not isinstance(item, str):
            reasons.add(f"tilknyttede[{index}]", "must be a library number as a string")
            continue
        if not item.strip():
            continue
        number = reasons.check(f"tilknyttede[{index}]", _library_number, item)
        if number is None:
            continue
        if number.value not in libraries:
            reasons.add(f"tilknyttede[{index}]", "no such library in the register")
        elif number.value not in numbers:
            numbers.append(number.value)
    return tuple(numbers)


def _time(raw: str, import_time: dt.datetime) -> dt.datetime | None:
    """A legacy timestamp in UTC; None if missing, unreadable or after the import."""
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw.replace(" ", "T", 1))
    except ValueError:
        try:
            moment = dt.datetime.combine(parse_date(raw), dt.time())
        except InvalidValue:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=NORWEGIAN_TIME)
    moment = moment.astimezone(dt.UTC)
    return None if moment > import_time else moment


def _library(raw: str, libraries: Collection[str]) -> LibraryNumber | None:
    try:
        number = _library_number(raw)
    except InvalidValue:
        return None
    return number if number.value in libraries else None
