"""Library numbers: 7 digits, also accepted as an ISIL."""

import pytest

from nlr_server.domain.errors import InvalidValue
from nlr_server.domain.library_number import LibraryNumber


def test_seven_digits_are_accepted() -> None:
    assert LibraryNumber.parse("2030000").value == "2030000"


def test_surrounding_whitespace_is_stripped() -> None:
    assert LibraryNumber.parse(" 2030000 ").value == "2030000"


@pytest.mark.parametrize("raw", ["NO-2030000", "no-2030000", " NO-2030000 "])
def test_isil_form_is_normalised_to_the_seven_digits(raw: str) -> None:
    assert LibraryNumber.parse(raw) == LibraryNumber("2030000")


def test_parts_of_the_number() -> None:
    number = LibraryNumber.parse("2030112")
    assert number.type_digit == 2
    assert number.municipality_number == "0301"
    assert number.isil == "NO-2030112"
    assert str(number) == "2030112"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "203000",
        "20300000",
        "203000a",
        "SE-2030000",
        "NO2030000",
        "NO-",
        "203 0000",
        "\uff12\uff10\uff13\uff10\uff10\uff10\uff10",
    ],
)
def test_malformed_library_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        LibraryNumber.parse(raw)


def test_error_message_does_not_echo_the_input() -> None:
    with pytest.raises(InvalidValue) as caught:
        LibraryNumber.parse("20300001")
    assert "20300001" not in str(caught.value)
