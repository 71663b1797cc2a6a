"""A Folkeregisteret person (``personer/{id}`` or a bulk lookup's ``folkeregisterperson``) read
into the domain's PopulationPerson.

Each element is an array of entries, of which the one with ``erGjeldende`` is current (an
object alone is taken as that entry); ``doedsfall`` is one object. Unknown fields are ignored
and unknown values kept or read as the safer choice: an unknown protection level hides the
address. Names: ``fornavn`` and ``mellomnavn`` are the given names, ``etternavn`` the family
name. ``kjoenn`` ``kvinne`` or ``mann``. ``bostedsadresse``: a ``vegadresse`` (street, house
number and letter, ``bruksenhetsnummer`` after them, ``poststed``), a ``matrikkeladresse``
(its ``adressetilleggsnavn`` as the line), or ``ukjentBosted``; its ``adressegradering`` counts
as protection too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nlr_server.domain.address import Address, AddressProtection
from nlr_server.domain.borrower import Sex
from nlr_server.domain.errors import InvalidArgument, Violations
from nlr_server.domain.person_name import PersonName
from nlr_server.domain.population import PopulationPerson, ResidenceKind

_SEX = {"kvinne": Sex.FEMALE, "mann": Sex.MALE}
_PROTECTION = {
    "": AddressProtection.NONE,
    "ugradert": AddressProtection.NONE,
    "fortrolig": AddressProtection.CONFIDENTIAL,
    "strengtFortrolig": AddressProtection.STRICTLY_CONFIDENTIAL,
    "strengtFortroligUtland": AddressProtection.STRICTLY_CONFIDENTIAL,
}


class PersonDocumentError(ValueError):
    """Not a person the register can read; the message quotes nothing of it."""


def read_person(document: Any) -> PopulationPerson:
    if not isinstance(document, dict):
        raise PersonDocumentError("the person is not a JSON object")
    identity = _current(document.get("identifikasjonsnummer"))
    national_id = _text(identity, "foedselsEllerDNummer") if identity else ""
    if not national_id:
        raise PersonDocumentError("the person has no current identifikasjonsnummer")
    residence, address, graded = _residence(_current(document.get("bostedsadresse")))
    protection = max(
        _protection(_text(_current(document.get("adressebeskyttelse")), "graderingsnivaa")),
        graded,
    )
    status = _text(_current(document.get("status")), "status") or None
    return PopulationPerson(
        national_id=national_id,
        name=_name(_current(document.get("navn"))),
        sex=_SEX.get(_text(_current(document.get("kjoenn")), "kjoenn")),
        residence=residence,
        address=address,
        protection=protection,
        status=status,
        died_on=_date(_text(_dict(document.get("doedsfall")), "doedsdato")),
    )


def _current(element: Any) -> dict[str, Any] | None:
    """The current entry of an element: the one with erGjeldende, or an object given alone."""
    if isinstance(element, dict):
        return element
    if isinstance(element, list):
        for entry in element:
            if isinstance(entry, dict) and entry.get("erGjeldende") is True:
                return entry
    return None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _text(entry: dict[str, Any] | None, name: str) -> str:
    value = entry.get(name) if entry else None
    return value.strip() if isinstance(value, str) else ""


def _name(entry: dict[str, Any] | None) -> PersonName | None:
    given = " ".join(part for part in (_text(entry, "fornavn"), _text(entry, "mellomnavn")) if part)
    violations = Violations()
    return PersonName.parse(given, _text(entry, "etternavn"), violations, "") if entry else None


def _protection(level: str) -> AddressProtection:
    # An unknown level hides the address rather than serve it.
    return _PROTECTION.get(level, AddressProtection.CONFIDENTIAL)


def _residence(
    entry: dict[str, Any] | None,
) -> tuple[ResidenceKind, Address | None, AddressProtection]:
    if entry is None:
        return ResidenceKind.NOT_GIVEN, None, AddressProtection.NONE
    graded = _protection(_text(entry, "adressegradering"))
    if entry.get("ukjentBosted") is not None and not entry.get("vegadresse"):
        return ResidenceKind.UNKNOWN, None, graded
    street = _dict(entry.get("vegadresse"))
    land = _dict(entry.get("matrikkeladresse"))
    if street is not None:
        number = _dict(street.get("adressenummer"))
        line = " ".join(
            part
            for part in (
                _text(street, "adressenavn"),
                _text(number, "husnummer") + _text(number, "husbokstav"),
                _text(street, "bruksenhetsnummer"),
            )
            if part
        )
        place = _dict(street.get("poststed"))
    elif land is not None:
        line = _text(land, "adressetilleggsnavn")
        place = _dict(land.get("poststed"))
    else:
        return ResidenceKind.NOT_GIVEN, None, graded
    violations = Violations()
    address = Address.parse(
        [line], _text(place, "postnummer"), _text(place, "poststedsnavn"), "NO", violations, ""
    )
    try:
        violations.raise_if_any()
    except InvalidArgument:
        return ResidenceKind.NOT_GIVEN, None, graded
    return ResidenceKind.ADDRESS, address, graded


def _date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw[:10]) if raw else None
    except ValueError:
        return None
