"""Postal addresses, validated field by field."""

import pytest

from nlr_server.domain.address import Address
from nlr_server.domain.errors import FieldViolation, InvalidArgument, Violations

PREFIX = "borrower.registered_address"


def _violations_of(violations: Violations) -> list[FieldViolation]:
    with pytest.raises(InvalidArgument) as caught:
        violations.raise_if_any()
    return caught.value.violations


def _parse(
    lines: list[str] | tuple[str, ...] = ("Storgata 1",),
    postal_code: str = "0155",
    city: str = "Oslo",
    country_code: str = "NO",
) -> tuple[Address | None, Violations]:
    violations = Violations()
    address = Address.parse(lines, postal_code, city, country_code, violations, PREFIX)
    return address, violations


def _fields(violations: Violations) -> list[str]:
    return [violation.field for violation in _violations_of(violations)]


def test_norwegian_address_is_accepted() -> None:
    address, violations = _parse(["Storgata 1", "c/o Hansen"], "0155", "Oslo", "NO")
    assert not violations
    assert address == Address(("Storgata 1", "c/o Hansen"), "0155", "Oslo", "NO")


def test_empty_country_code_means_norway() -> None:
    address, _ = _parse(country_code="")
    assert address is not None
    assert address.country_code == "NO"


def test_country_code_is_upper_cased() -> None:
    address, _ = _parse(postal_code="SW1A 1AA", city="London", country_code=" gb ")
    assert address is not None
    assert address.country_code == "GB"


@pytest.mark.parametrize("country_code", ["SJ", "BV", "AQ"])
def test_norwegian_territories_and_places_without_telephones_are_countries(
    country_code: str,
) -> None:
    _, violations = _parse(postal_code="9170", city="Longyearbyen", country_code=country_code)
    assert not violations


@pytest.mark.parametrize("country_code", ["NOR", "N", "ZZ", "UK", "1", "n\u0131"])
def test_unknown_country_code_is_refused(country_code: str) -> None:
    address, violations = _parse(postal_code="12345", country_code=country_code)
    assert address is None
    assert _fields(violations) == [f"{PREFIX}.country_code"]


def test_whitespace_is_trimmed_and_empty_lines_dropped() -> None:
    address, _ = _parse(["", "  Storgata   1 ", "   "], " 0155 ", "  Oslo ")
    assert address == Address(("Storgata 1",), "0155", "Oslo", "NO")


def test_at_least_one_address_line_is_required() -> None:
    address, violations = _parse(["", "  "])
    assert address is None
    assert _fields(violations) == [f"{PREFIX}.lines"]


def test_at_most_three_address_lines() -> None:
    address, violations = _parse(["a", "b", "c", "d"])
    assert address is None
    assert _fields(violations) == [f"{PREFIX}.lines"]


def test_line_of_100_characters_is_accepted_and_101_refused() -> None:
    assert _parse(["x" * 100])[0] is not None
    address, violations = _parse(["Storgata 1", "x" * 101])
    assert address is None
    assert _fields(violations) == [f"{PREFIX}.lines[1]"]


@pytest.mark.parametrize("bad", ["Storgata\t1", "Storgata 1\n0155 Oslo", "Storgata\x00 1"])
def test_control_characters_in_a_line_are_refused(bad: str) -> None:
    address, violations = _parse([bad])
    assert address is None
    assert _fields(violations) == [f"{PREFIX}.lines[0]"]


@pytest.mark.parametrize(
    "postal_code", ["", "155", "01555", "O155", "01 55", "\u0660\u0661\u0665\u0665"]
)
def test_norwegian_postal_code_is_exactly_four_digits(postal_code: str) -> None:
    address, violations = _parse(postal_code=postal_code)
    assert address is None
    assert _fields(violations) == [f"{PREFIX}.postal_code"]


@pytest.mark.parametrize(
    ("country_code", "postal_code", "normalised"),
    [("GB", "sw1a  1aa", "SW1A 1AA"), ("SE", "114 55", "114 55"), ("PL", "00-950", "00-950")],
)
def test_foreign_postal_code_is_letters_digits_spaces_and_hyphens(
    country_code: str, postal_code: str, normalised: str
) -> None:
    address, violations = _parse(postal_code=postal_code, country_code=country_code)
    assert not violations
    assert address is not None
    assert address.postal_code == normalised


@pytest.mark.parametrize(
    "postal_code", ["", "12345678901", "SW1A_1AA", "\u0131\u01311", "-", "Ø123"]
)
def test_malformed_foreign_postal_code_is_refused(postal_code: str) -> None:
    address, violations = _parse(postal_code=postal_code, country_code="DE")
    assert address is None
    assert _fields(violations) == [f"{PREFIX}.postal_code"]


def test_city_is_required_and_at_most_60_characters() -> None:
    assert _parse(city="x" * 60)[0] is not None
    for city in ("", "   ", "x" * 61, "Oslo\r"):
        address, violations = _parse(city=city)
        assert address is None
        assert _fields(violations) == [f"{PREFIX}.city"]


def test_every_bad_field_is_reported_at_once() -> None:
    address, violations = _parse(["x" * 101], "1_2", "", "XX")
    assert address is None
    assert _fields(violations) == [
        f"{PREFIX}.country_code",
        f"{PREFIX}.lines[0]",
        f"{PREFIX}.postal_code",
        f"{PREFIX}.city",
    ]


def test_violations_never_echo_the_input() -> None:
    _, violations = _parse(["Hemmeligveien 13\t"], "9999x", "Hemmelighus\n", "QQ")
    for violation in _violations_of(violations):
        for secret in ("Hemmelig", "9999", "QQ"):
            assert secret not in violation.description


def test_violations_already_collected_do_not_make_a_good_address_bad() -> None:
    violations = Violations()
    violations.add("borrower.email", "must be a valid email address")
    address = Address.parse(["Storgata 1"], "0155", "Oslo", "NO", violations, PREFIX)
    assert address is not None


def test_a_single_string_is_not_taken_for_a_list_of_lines() -> None:
    with pytest.raises(TypeError):
        Address.parse("Storgata 1", "0155", "Oslo", "NO", Violations(), PREFIX)
