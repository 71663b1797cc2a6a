"""Person names: given and family name, and the legacy "Surname, Given" form."""

import pytest

from nlr_server.domain.errors import FieldViolation, InvalidArgument, InvalidValue, Violations
from nlr_server.domain.person_name import PersonName

PREFIX = "borrower"


def _parse(given_name: str, family_name: str) -> tuple[PersonName | None, list[FieldViolation]]:
    violations = Violations()
    name = PersonName.parse(given_name, family_name, violations, PREFIX)
    if not violations:
        return name, []
    with pytest.raises(InvalidArgument) as caught:
        violations.raise_if_any()
    return name, caught.value.violations


@pytest.mark.parametrize(
    ("given_name", "family_name"),
    [
        ("Kari", "Nordmann"),
        ("Åse Marie", "Bø"),
        ("Ánde", "Sárá"),  # Northern Sámi
        ("Máhtte", "Ŋuolja-Čeavččá"),
        ("Jean-Luc", "O'Brien"),
        ("Siobhán", "O\u2019Neill"),
        ("J. R. R.", "Tolkien"),
        ("Zoë", "Ðurić"),
    ],
)
def test_names_in_letters_of_every_kind_are_accepted(given_name: str, family_name: str) -> None:
    name, violations = _parse(given_name, family_name)
    assert violations == []
    assert name == PersonName(given_name, family_name)


def test_whitespace_is_trimmed_and_collapsed() -> None:
    name, _ = _parse("  Kari \u00a0 Anne ", " Nordmann  ")
    assert name == PersonName("Kari Anne", "Nordmann")


def test_decomposed_accents_are_normalised_to_composed_letters() -> None:
    name, _ = _parse("A\u030ase", "Bo\u0308e")
    assert name == PersonName("Åse", "Böe")


def test_full_name_is_given_then_family() -> None:
    assert PersonName("Kari Anne", "Nordmann").full_name == "Kari Anne Nordmann"


def test_100_characters_are_accepted_and_101_refused() -> None:
    assert _parse("a" * 100, "b" * 100)[1] == []
    _, violations = _parse("a" * 101, "Nordmann")
    assert [v.field for v in violations] == ["borrower.given_name"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "Kari2",
        "K4ri",
        "Kari\tAnne",
        "Kari\nAnne",
        "Kari\x00",
        "Kari!",
        "Kari_",
        "@",
        "Ⅻ",
    ],
)
def test_bad_family_name_is_refused(bad: str) -> None:
    name, violations = _parse("Kari", bad)
    assert name is None
    assert [v.field for v in violations] == ["borrower.family_name"]


@pytest.mark.parametrize("bad", ["-", ".", "' -"])
def test_name_must_contain_a_letter(bad: str) -> None:
    _, violations = _parse(bad, "Nordmann")
    assert [v.description for v in violations] == ["must contain at least one letter"]


def test_digits_are_refused_with_their_own_message() -> None:
    _, violations = _parse("Kari", "Nordmann 2")
    assert [v.description for v in violations] == ["must not contain digits"]


def test_both_bad_parts_are_reported() -> None:
    name, violations = _parse("", "N0rdmann")
    assert name is None
    assert [v.field for v in violations] == ["borrower.given_name", "borrower.family_name"]


def test_violations_never_echo_the_input() -> None:
    _, violations = _parse("Hemmelig1", "Skjult!")
    for violation in violations:
        assert "Hemmelig" not in violation.description
        assert "Skjult" not in violation.description


def test_legacy_form_is_surname_comma_given_names() -> None:
    assert PersonName.from_legacy("Nordmann, Kari Anne") == PersonName("Kari Anne", "Nordmann")


def test_legacy_form_is_split_at_the_first_comma_and_trimmed() -> None:
    assert PersonName.from_legacy("  Bø ,Åse ") == PersonName("Åse", "Bø")


def test_legacy_form_without_a_comma_is_refused() -> None:
    with pytest.raises(InvalidValue, match="comma") as caught:
        PersonName.from_legacy("Kari Nordmann")
    assert "Kari" not in str(caught.value)


@pytest.mark.parametrize("navn", ["Nordmann,", ", Kari", "Nordmann, Kari, Anne", "Nordm4nn, Kari"])
def test_legacy_form_with_a_bad_part_is_refused(navn: str) -> None:
    with pytest.raises(InvalidValue):
        PersonName.from_legacy(navn)
