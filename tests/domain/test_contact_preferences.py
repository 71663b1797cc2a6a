"""Contact preferences must point at contact data the borrower has."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.borrower import PersonalData
from nlr_server.domain.contact import ContactMethod, LanguageCode, PhoneKind, PhoneNumber
from nlr_server.domain.errors import InvalidArgument, InvalidValue, Violations
from nlr_server.domain.person_name import PersonName

NAME = PersonName(given_name="Kari", family_name="Nordmann")


def violated(personal: PersonalData, touched: frozenset[str] | None = None) -> set[str]:
    violations = Violations()
    personal.check_consistency(violations, touched)
    try:
        violations.raise_if_any()
    except InvalidArgument as refused:
        return {violation.field for violation in refused.violations}
    return set()


def test_preferences_pointing_at_missing_data_are_named() -> None:
    personal = PersonalData(
        name=NAME,
        birth_date=dt.date(1990, 1, 1),
        primary_phone=PhoneKind.WORK,
        preferred_contact_method=ContactMethod.LETTER,
    )

    assert violated(personal) == {"borrower.primary_phone", "borrower.preferred_contact_method"}


def test_a_change_is_checked_only_against_the_rules_its_fields_take_part_in() -> None:
    personal = PersonalData(
        name=NAME, birth_date=dt.date(1990, 1, 1), preferred_contact_method=ContactMethod.LETTER
    )

    assert violated(personal, frozenset({"given_name"})) == set()
    assert violated(personal, frozenset({"temporary_address"})) == {
        "borrower.preferred_contact_method"
    }


def test_preferences_met_are_fine() -> None:
    personal = PersonalData(
        name=NAME,
        birth_date=dt.date(1990, 1, 1),
        mobile_phone=PhoneNumber("+4791234567"),
        primary_phone=PhoneKind.MOBILE,
        preferred_contact_method=ContactMethod.SMS,
    )

    assert violated(personal) == set()


@pytest.mark.parametrize(
    ("raw", "code"), [("nb", "nb"), (" NN ", "nn"), ("nob", "nb"), ("sma", "sma"), ("eng", "en")]
)
def test_language_codes_are_normalised(raw: str, code: str) -> None:
    assert LanguageCode.parse(raw).value == code


@pytest.mark.parametrize("raw", ["", "x", "xx", "norsk", "nb-NO", "n\u00f8"])
def test_unknown_language_codes_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        LanguageCode.parse(raw)
