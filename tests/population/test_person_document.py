"""Folkeregisteret's person documents read into what the register follows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from nlr_server.domain.address import AddressProtection
from nlr_server.domain.borrower import Sex
from nlr_server.domain.population import ResidenceKind
from nlr_server.population.person_document import PersonDocumentError, read_person

NATIONAL_ID = "01017012345"


def _entry(**fields: Any) -> dict[str, Any]:
    """A current entry with the metadata every element carries."""
    return {
        "erGjeldende": True,
        "kilde": "KILDE_DSF",
        "ajourholdstidspunkt": "2026-11-30T10:00:00+01:00",
        "gyldighetstidspunkt": "2026-11-30T10:00:00+01:00",
        **fields,
    }


def _old(**fields: Any) -> dict[str, Any]:
    return {**_entry(**fields), "erGjeldende": False}


def _person(**elements: Any) -> dict[str, Any]:
    return {
        "identifikasjonsnummer": [
            _entry(foedselsEllerDNummer=NATIONAL_ID, identifikatortype="fnr")
        ],
        **elements,
    }


def test_the_current_entries_are_read_and_the_old_ones_and_unknown_fields_ignored() -> None:
    person = read_person(
        _person(
            navn=[
                _old(fornavn="Kari", etternavn="Hansen"),
                _entry(fornavn="Kari", mellomnavn="Marie", etternavn="Nordmann", nyttFelt=1),
            ],
            kjoenn=[_entry(kjoenn="kvinne")],
            bostedsadresse=[
                _old(vegadresse={"adressenavn": "Gamleveien"}),
                _entry(
                    vegadresse={
                        "adressenavn": "Storgata",
                        "adressenummer": {"husnummer": "12", "husbokstav": "B"},
                        "bruksenhetsnummer": "H0201",
                        "poststed": {"poststedsnavn": "OSLO", "postnummer": "0182"},
                        "kommunenummer": "0301",
                    },
                    adressegradering="ugradert",
                ),
            ],
            status=[_entry(status="bosatt")],
            framtidigFelt={"ukjent": True},
        )
    )

    assert person.national_id == NATIONAL_ID
    assert person.name is not None
    assert (person.name.given_name, person.name.family_name) == ("Kari Marie", "Nordmann")
    assert person.sex is Sex.FEMALE
    assert person.residence is ResidenceKind.ADDRESS
    assert person.address is not None
    assert (person.address.lines, person.address.postal_code, person.address.city) == (
        ("Storgata 12B H0201",),
        "0182",
        "OSLO",
    )
    assert person.protection is AddressProtection.NONE
    assert (person.status, person.died_on, person.is_dead) == ("bosatt", None, False)


@pytest.mark.parametrize(
    ("elements", "protection"),
    [
        ({"adressebeskyttelse": [_entry(graderingsnivaa="fortrolig")]}, "CONFIDENTIAL"),
        (
            {"adressebeskyttelse": [_entry(graderingsnivaa="strengtFortrolig")]},
            "STRICTLY_CONFIDENTIAL",
        ),
        # On the address, and stronger than the element: the stronger one counts.
        (
            {
                "adressebeskyttelse": [_entry(graderingsnivaa="fortrolig")],
                "bostedsadresse": [_entry(ukjentBosted={}, adressegradering="strengtFortrolig")],
            },
            "STRICTLY_CONFIDENTIAL",
        ),
        # A level the register does not know hides the address rather than serve it.
        ({"adressebeskyttelse": [_entry(graderingsnivaa="nyttNivaa")]}, "CONFIDENTIAL"),
        ({"adressebeskyttelse": [_old(graderingsnivaa="strengtFortrolig")]}, "NONE"),
    ],
)
def test_address_protection_takes_the_strongest_current_level(
    elements: dict[str, Any], protection: str
) -> None:
    assert read_person(_person(**elements)).protection is AddressProtection[protection]


def test_unknown_residence_a_cadastral_address_and_one_the_register_cannot_hold() -> None:
    unknown = read_person(_person(bostedsadresse=[_entry(ukjentBosted={"bostedskommune": "0301"})]))
    cadastral = read_person(
        _person(
            bostedsadresse=[
                _entry(
                    matrikkeladresse={
                        "adressetilleggsnavn": "Nordre Li gård",
                        "poststed": {"poststedsnavn": "VÅGÅ", "postnummer": "2680"},
                    }
                )
            ]
        )
    )
    no_street = read_person(
        _person(bostedsadresse=[_entry(vegadresse={"poststed": {"postnummer": "0182"}})])
    )

    assert (unknown.residence, unknown.address) == (ResidenceKind.UNKNOWN, None)
    assert cadastral.address is not None and cadastral.address.lines == ("Nordre Li gård",)
    assert (no_street.residence, no_street.address) == (ResidenceKind.NOT_GIVEN, None)
    assert read_person(_person()).residence is ResidenceKind.NOT_GIVEN


def test_death_and_an_unknown_sex_or_name() -> None:
    dead = read_person(
        _person(
            doedsfall={"doedsdato": "2026-11-28", "erGjeldende": True},
            status=[_entry(status="doed")],
            kjoenn=[_entry(kjoenn="ukjent")],
            navn=[_entry(fornavn="", etternavn="Nordmann")],
        )
    )

    assert (dead.died_on, dead.is_dead) == (dt.date(2026, 11, 28), True)
    assert dead.sex is None
    assert dead.name is None


@pytest.mark.parametrize(
    "document",
    [[], {"navn": [_entry(fornavn="Kari", etternavn="Nordmann")]}, {"identifikasjonsnummer": []}],
)
def test_a_document_without_a_current_identity_number_is_refused(document: Any) -> None:
    with pytest.raises(PersonDocumentError):
        read_person(document)
