"""One record of the legacy register (a ``Laaner``), validated into a borrower record.

A record comes as one line of JSON Lines or one ``item`` of the legacy SOAP answers
(ops/legacy_soap.py); either way it is a set of legacy fields, each a string (empty, null or
absent meaning empty), except ``tilknyttede``. Unknown fields are ignored. Every value goes
through the same domain value types as CreateBorrower, so an imported record obeys the same
rules as a created one. Empty dates are ``""`` or ``0000-00-00``.

A record is rejected only for what says who the borrower is: its card number, national id,
name, home library and affiliations (and a DUF number's birth date). A bad value of anything
else (sex, an address, email, a phone, a date, a flag, the PIN) is left out, the record is
imported without it, and the reason goes to the reject file as a notice; where the record has
a "should be checked" flag for it (an address, the email) the flag is set.

==================  =========================================================================
legacy field        register (and how it is read)
==================  =========================================================================
lnr                 ``card_number`` (CardNumber: ``N`` + 9 digits). Required.
fnr_hash (or fnr)   national id: the plain 11-digit number despite its name (fødselsnummer,
                    D-number or DUF; synthetic test numbers only with
                    ``--allow-synthetic-ids`` / NLR_ALLOW_SYNTHETIC_IDS), sealed: AES-256-GCM
                    ciphertext plus blind index, as everywhere. Required; ``fnr`` is the
                    project's earlier name, and the two must agree when both are given.
navn                ``family_name`` and ``given_name`` from ``"Surname, Given names"``
                    (PersonName.from_legacy: split at the first comma). Required.
kjonn               ``sex``: ``M`` male, ``F`` (and ``K``, kvinne) female, empty unspecified.
fdato               ``birth_date``, as ``YYYY-MM-DD`` or ``DD.MM.YYYY``. The national id's date
                    wins where it holds one (a different fdato is a notice); required only
                    with a DUF number (which holds no date).
p_adresse1/2,       ``registered_address`` lines 1 and 2 (Address), when a line, postal code or
p_postnr, p_sted,   city is given (a country alone is no address); then a line, postal code
p_land              and city are required. p_land is an ISO 3166-1 alpha-2 code in any case
                    (``no``), empty meaning ``NO``.
p_sjekk             ``registered_address_should_be_checked``: ``1`` yes; ``0`` or empty no.
m_adresse1/2,       ``temporary_address`` (the same rules), with m_gyldig_til as its
m_postnr, m_sted,   ``valid_until`` (required with the address, at most 10 years after the
m_land,             import day). One whose last day is before the import day is left out
m_gyldig_til        without a notice (it would never be served).
m_sjekk             ``temporary_address_should_be_checked``, as p_sjekk.
epost               ``email`` (EmailAddress, normalised).
epost_sjekk         ``email_should_be_checked``, as p_sjekk.
tlf_mobil           ``mobile_phone`` (PhoneNumber: national form for Norway, or +CC..., to E.164).
tlf_hjemme          ``home_phone`` (the same).
tlf_jobb            ``work_phone`` (the same).
prim_kontakt        ``primary_contact_phone``, the fourth phone: the primary contact (the same).
hjemmebibliotek     ``home_library`` (LibraryNumber); must be in the libraries table. Required.
tilknyttede         ``affiliations`` (JSON Lines only: the SOAP record has none): a JSON list of
                    library numbers or one comma-separated string; each must be in the
                    libraries table. The home library is always among them; duplicates count
                    once. Each affiliation's time is the borrower's creation time.
gyldig_til          ``card_expiry_date``: the card's last valid day (1900 to 2199).
folkeregsjekk_dato  ``population_register_check_time``: a date (midnight) or a time, as
                    opprettet; after the import time it is left out.
pin                 the PIN, with ``--legacy-pin-key-file``: the hex of AES-128-ECB/PKCS#5
                    under the legacy shared key (crypto/legacy_pin.py), kept only as the
                    register's own PIN verifier. One that does not decrypt to 4 to 8 digits is
                    a notice; without the key every PIN is skipped (the summary counts them).
passord, feide      not carried over (the password's format is not public; the Feide id is
                    not in the record): a non-empty passord and feide ``1`` are counted.
opprettet           ``created_at``: ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]`` (or a space for ``T``),
                    with ``Z`` or an offset, else Norwegian local time; a date alone is
                    midnight. Missing, unreadable or after the import time: the import time.
opprettet_av        ``created_by``: a library number in the libraries table, else the home
                    library.
sist_endret         ``last_changed_at``: read as opprettet; missing, unreadable, before the
                    creation time or after the import time: the creation time.
sist_endret_av      ``last_changed_by``: as opprettet_av, else the creating library.
==================  =========================================================================

Not in the record, so not imported: guardian links (so the under-15 guardian rule of
CreateBorrower is not applied to legacy records), identities, contact preferences. The
security level is PIN. A reason names the legacy field and what is wrong with it, never the
value. A valid record is a domain ``Borrower`` (the store maps it to its columns as it maps a
created one, store/record_columns.py), its sealed national id and its PIN; whether its card
number and national id are free is decided when its batch is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from nlr_server.crypto.legacy_pin import LegacyPins
from nlr_server.crypto.national_id_sealer import NationalIdSealer, SealedNationalId
from nlr_server.domain.actor import Actor
from nlr_server.domain.address import Address, TemporaryAddress
from nlr_server.domain.borrower import Affiliation, Borrower, PersonalData, Sex
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.credentials import Pin, SecurityLevel
from nlr_server.domain.errors import InvalidArgument, InvalidValue, Violations
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.person_name import PersonName

NORWEGIAN_TIME = ZoneInfo("Europe/Oslo")
_LONGEST_TEMPORARY = dt.timedelta(days=3653)
_OLDEST_BIRTH_YEAR = 1880
_CARD_EXPIRY_YEARS = range(1900, 2200)
_SEX = {"": Sex.UNSPECIFIED, "M": Sex.MALE, "F": Sex.FEMALE, "K": Sex.FEMALE}
_FLAGS = {"": False, "0": False, "1": True}
_EMPTY_DATES = frozenset({"", "0000-00-00", "0000-00-00T00:00:00", "0000-00-00 00:00:00"})
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
# The legacy record's fields (the SOAP Laaner's, in its order), and the project's own ``fnr``.
LEGACY_FIELDS: tuple[str, ...] = (
    "lnr",
    "navn",
    "p_adresse1",
    "p_adresse2",
    "p_postnr",
    "p_sted",
    "p_land",
    "p_sjekk",
    "m_adresse1",
    "m_adresse2",
    "m_postnr",
    "m_sted",
    "m_land",
    "m_sjekk",
    "m_gyldig_til",
    "tlf_hjemme",
    "tlf_jobb",
    "tlf_mobil",
    "epost",
    "epost_sjekk",
    "prim_kontakt",
    "hjemmebibliotek",
    "fdato",
    "fnr_hash",
    "kjonn",
    "pin",
    "passord",
    "feide",
    "opprettet",
    "opprettet_av",
    "sist_endret",
    "sist_endret_av",
    "gyldig_til",
    "folkeregsjekk_dato",
)
_STRING_FIELDS: tuple[str, ...] = (*LEGACY_FIELDS, "fnr")


@dataclass(frozen=True, slots=True)
class ImportContext:
    """What every record is checked against; the same in every run of one import."""

    libraries: frozenset[str]
    allow_synthetic_ids: bool
    # Fixed when the import first started: the fallback creation time and the "today" of the
    # date rules, so a resumed import decides every record as the first run would have.
    import_time: dt.datetime
    # The import time's date in Norway (worked out once: every record needs it several times).
    today: dt.date = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "today", self.import_time.astimezone(NORWEGIAN_TIME).date())


class PinOutcome(enum.Enum):
    """What became of a record's legacy ``pin``."""

    NONE = "none"  # the record has no pin
    CARRIED = "carried"  # decrypted; the borrower keeps it
    SKIPPED = "skipped"  # the import was given no legacy key
    LEFT_OUT = "left_out"  # did not decrypt to a PIN (a notice says so)


@dataclass(frozen=True, slots=True)
class ImportedBorrower:
    """A valid record: the borrower it describes, their sealed national id and PIN, and what
    was left out of it (notices, each as ``legacy_field: what is wrong``)."""

    number: int
    borrower: Borrower
    national_id: SealedNationalId
    pin: Pin | None
    pin_outcome: PinOutcome
    notices: tuple[str, ...]
    # Counted in the summary: what the register cannot carry over.
    has_feide: bool
    has_password: bool


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record not imported (``imported`` False), or a notice of what an imported one lost."""

    number: int
    reason: str
    imported: bool = False


class _Reasons:
    """Problems of one record, each as ``legacy_field: what is wrong``: those that reject it,
    and notices of values left out."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.notices: list[str] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(f"{field}: {description}")

    def notice(self, field: str, description: str) -> None:
        self.notices.append(f"{field}: {description}")

    def check(self, field: str, parse: Any, *args: Any) -> Any:
        try:
            return parse(*args)
        except InvalidValue as error:
            self.add(field, str(error))
            return None

    def lenient(self, field: str, parse: Any, *args: Any) -> Any:
        """``parse(*args)``, or None with a notice."""
        try:
            return parse(*args)
        except InvalidValue as error:
            self.notice(field, f"{error} (left out)")
            return None


def json_fields(text: bytes | str) -> tuple[dict[str, Any], Any] | str:
    """The fields of one JSON line and its ``tilknyttede``, or why the line is no record."""
    try:
        record = json.loads(text)
    except ValueError:
        return "not valid JSON"
    if not isinstance(record, dict):
        return "not a JSON object"
    return record, record.get("tilknyttede")


def parse_record(
    number: int,
    record: Mapping[str, Any],
    affiliated: Any,
    context: ImportContext,
    sealer: NationalIdSealer,
    pins: LegacyPins | None,
) -> ImportedBorrower | RejectedRecord:
    """The borrower one record describes, or why it is rejected (never quoting a value)."""
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
    imported = _borrower(number, fields, affiliated, context, reasons, sealer, pins)
    if reasons.items:
        return RejectedRecord(number, "; ".join(reasons.items))
    assert imported is not None
    return imported


def _borrower(
    number: int,
    fields: dict[str, str],
    affiliated: Any,
    context: ImportContext,
    reasons: _Reasons,
    sealer: NationalIdSealer,
    pins: LegacyPins | None,
) -> ImportedBorrower | None:
    card_number = _required(reasons, fields, "lnr", CardNumber.parse)
    national_id = _national_id(reasons, fields, context)
    name = _required(reasons, fields, "navn", PersonName.from_legacy)
    birth_date = _birth_date(reasons, fields["fdato"], national_id, context.today)
    home = _required(reasons, fields, "hjemmebibliotek", _library_number)
    if home is not None and home.value not in context.libraries:
        reasons.add("hjemmebibliotek", "no such library in the register")
    affiliations = _affiliations(reasons, affiliated, home, context.libraries)
    if reasons.items:
        return None
    assert card_number and national_id and name and birth_date and home
    sex = _SEX.get(fields["kjonn"].upper())
    if sex is None:
        reasons.notice("kjonn", 'must be "M", "F", "K" or empty (left out)')
        sex = Sex.UNSPECIFIED
    registered = _address(reasons, fields, "p", context)
    notices_before = len(reasons.notices)
    temporary = _temporary_address(reasons, fields, context)
    # Given but not kept for a reason (a notice), not because its last day has passed.
    temporary_left_out = temporary is None and len(reasons.notices) > notices_before
    email = _optional(reasons, fields, "epost", EmailAddress.parse)
    phones = {
        legacy: _optional(reasons, fields, legacy, PhoneNumber.parse)
        for legacy in ("tlf_mobil", "tlf_hjemme", "tlf_jobb", "prim_kontakt")
    }
    created_at = _time(fields["opprettet"], context.import_time) or context.import_time
    created_by = _library(fields["opprettet_av"], context.libraries) or home
    changed_at = _time(fields["sist_endret"], context.import_time)
    if changed_at is None or changed_at < created_at:
        changed_at = created_at
    changed_by = _library(fields["sist_endret_av"], context.libraries) or created_by
    checked_at = None
    if fields["folkeregsjekk_dato"] not in _EMPTY_DATES:
        checked_at = _time(fields["folkeregsjekk_dato"], context.import_time)
        if checked_at is None:
            reasons.notice(
                "folkeregsjekk_dato", "must be a date or time, not in the future (left out)"
            )
    pin, pin_outcome = _pin(reasons, fields["pin"], pins)
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
        temporary_address=temporary,
        email_should_be_checked=_flag(
            reasons, fields, "epost_sjekk", bool(fields["epost"]) and email is None
        ),
        card_expiry_date=_card_expiry(reasons, fields["gyldig_til"]),
        primary_contact_phone=phones["prim_kontakt"],
        registered_address_should_be_checked=_flag(
            reasons, fields, "p_sjekk", registered is None and _address_given(fields, "p")
        ),
        temporary_address_should_be_checked=_flag(reasons, fields, "m_sjekk", temporary_left_out),
    )
    borrower = Borrower(
        card_number=card_number,
        personal=personal,
        home_library=home,
        # The export has no times of its own for them.
        affiliations=tuple(
            Affiliation(_library_number(library), created_at) for library in affiliations
        ),
        # The legacy register's creators and changers are libraries.
        created_by=_library_actor(created_by),
        created_at=created_at,
        last_changed_by=_library_actor(changed_by),
        last_changed_at=changed_at,
        population_register_checked_at=checked_at,
    )
    return ImportedBorrower(
        number,
        borrower,
        sealer.seal(national_id.value),
        pin,
        pin_outcome,
        tuple(reasons.notices),
        has_feide=fields["feide"] == "1",
        has_password=bool(fields["passord"]),
    )


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
    return reasons.lenient(name, parse, fields[name])


def _national_id(
    reasons: _Reasons, fields: dict[str, str], context: ImportContext
) -> NationalId | None:
    """``fnr_hash`` (the legacy record's, holding the plain number), or the project's ``fnr``."""
    legacy, own = fields["fnr_hash"], fields["fnr"]
    if legacy and own and legacy != own:
        reasons.add("fnr_hash", "differs from fnr (give one of them)")
        return None
    name = "fnr_hash" if legacy or not own else "fnr"
    national_id: NationalId | None = _required(
        reasons,
        fields,
        name,
        lambda raw: NationalId.parse(
            raw, allow_synthetic=context.allow_synthetic_ids, today=context.today
        ),
    )
    return national_id


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
    """The national id's birth date; fdato only for a DUF number (where it is required)."""
    held = national_id.birth_date if national_id is not None else None
    given = None
    if raw not in _EMPTY_DATES:
        try:
            given = parse_date(raw)
            if given > today or given.year < _OLDEST_BIRTH_YEAR:
                raise InvalidValue("must be a real birth date, not in the future")
        except InvalidValue as error:
            if held is None and national_id is not None:
                reasons.add("fdato", str(error))
                return None
            given = None
            if national_id is not None:
                reasons.notice("fdato", f"{error} (the national id's date is kept)")
    if national_id is None:
        return given
    if held is None:
        if given is None and raw in _EMPTY_DATES:
            reasons.add("fdato", "is required with a DUF number")
        return given
    if given is not None and given != held:
        reasons.notice("fdato", "does not match the national id (the national id's date is kept)")
    return held


def _address(
    reasons: _Reasons, fields: dict[str, str], prefix: str, context: ImportContext
) -> Address | None:
    """The address of the ``p`` (registered) or ``m`` (temporary) fields; None when none is
    given, or with notices when the one given is incomplete or bad."""
    names = [f"{prefix}_{legacy}" for legacy in ("adresse1", "adresse2", "postnr", "sted", "land")]
    # A country alone is no address (the legacy record fills it in for everyone).
    if not any(fields[name] for name in names[:4]):
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
        which = "registered" if prefix == "p" else "temporary"
        for violation in error.violations:
            legacy = _ADDRESS_FIELDS.get(violation.field, violation.field)
            reasons.notice(
                f"{prefix}_{legacy}", f"{violation.description} (the {which} address is left out)"
            )
        return None
    return address


def _address_given(fields: dict[str, str], prefix: str) -> bool:
    return any(
        fields[f"{prefix}_{legacy}"] for legacy in ("adresse1", "adresse2", "postnr", "sted")
    )


def _temporary_address(
    reasons: _Reasons, fields: dict[str, str], context: ImportContext
) -> TemporaryAddress | None:
    address = _address(reasons, fields, "m", context)
    raw = fields["m_gyldig_til"]
    if address is None:
        return None
    if raw in _EMPTY_DATES:
        reasons.notice("m_gyldig_til", "is required with a temporary address (it is left out)")
        return None
    try:
        day = parse_date(raw)
    except InvalidValue as error:
        reasons.notice("m_gyldig_til", f"{error} (the temporary address is left out)")
        return None
    if day > context.today + _LONGEST_TEMPORARY:
        reasons.notice(
            "m_gyldig_til", "must be at most 10 years after the import (the address is left out)"
        )
        return None
    # Past: it would never be served, so it is not kept (and needs no notice).
    return TemporaryAddress(address, day) if day >= context.today else None


def _flag(reasons: _Reasons, fields: dict[str, str], name: str, left_out: bool) -> bool:
    """A "should be checked" flag; also set when the value it is about was left out."""
    flag = _FLAGS.get(fields[name])
    if flag is None:
        reasons.notice(name, 'must be "0", "1" or empty (left out)')
        flag = False
    return flag or left_out


def _card_expiry(reasons: _Reasons, raw: str) -> dt.date | None:
    if raw in _EMPTY_DATES:
        return None
    try:
        day = parse_date(raw)
    except InvalidValue as error:
        reasons.notice("gyldig_til", f"{error} (left out)")
        return None
    if day.year not in _CARD_EXPIRY_YEARS:
        reasons.notice("gyldig_til", "must be a date between 1900 and 2199 (left out)")
        return None
    return day


def _pin(reasons: _Reasons, raw: str, pins: LegacyPins | None) -> tuple[Pin | None, PinOutcome]:
    if not raw:
        return None, PinOutcome.NONE
    if pins is None:
        return None, PinOutcome.SKIPPED
    try:
        return pins.decrypt(raw), PinOutcome.CARRIED
    except InvalidValue as error:
        reasons.notice("pin", f"{error} (imported without a PIN)")
        return None, PinOutcome.LEFT_OUT


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
