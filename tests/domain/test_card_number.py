"""Card numbers: N + 9 digits."""

import pytest

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.errors import InvalidValue


def test_valid_card_number_is_kept_as_is() -> None:
    assert CardNumber.parse("N000123456").value == "N000123456"


def test_surrounding_whitespace_is_stripped() -> None:
    assert CardNumber.parse("  N000123456\n").value == "N000123456"


def test_lowercase_n_is_normalised_to_upper_case() -> None:
    assert CardNumber.parse("n000123456") == CardNumber("N000123456")


def test_str_is_the_card_number() -> None:
    assert str(CardNumber.parse("N987654321")) == "N987654321"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "N",
        "000123456",
        "N00012345",
        "N0001234567",
        "X000123456",
        "N000 123456",
        "N00012345a",
        "NN00123456",
        # Arabic-Indic digits: digits to Python, not to a card reader.
        "N\u0660\u0660\u0660\u0661\u0662\u0663\u0664\u0665\u0666",
    ],
)
def test_malformed_card_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        CardNumber.parse(raw)


def test_error_message_does_not_echo_the_input() -> None:
    with pytest.raises(InvalidValue) as caught:
        CardNumber.parse("N12345")
    assert "N12345" not in str(caught.value)
    assert "12345" not in str(caught.value)


def test_card_number_is_immutable() -> None:
    card = CardNumber.parse("N000123456")
    with pytest.raises(AttributeError):
        card.value = "N000000001"  # type: ignore[misc]
