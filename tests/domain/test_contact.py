"""Email addresses and phone numbers."""

import pytest

from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.errors import InvalidValue

# --- email -------------------------------------------------------------------------------------


def test_email_domain_is_normalised_to_lower_case() -> None:
    assert EmailAddress.parse("Kari.Nordmann@Bibliotek.NO").value == "Kari.Nordmann@bibliotek.no"


def test_email_surrounding_whitespace_is_stripped() -> None:
    assert str(EmailAddress.parse("  kari@bibliotek.no \n")) == "kari@bibliotek.no"


def test_international_email_domain_is_accepted() -> None:
    assert EmailAddress.parse("ola@bøker.no").value == "ola@bøker.no"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "kari",
        "kari@",
        "@bibliotek.no",
        "kari@bibliotek",
        "kari nordmann@bibliotek.no",
        "kari@@bibliotek.no",
        "Kari <kari@bibliotek.no>",
        "kari@bibliotek.test",
    ],
)
def test_malformed_email_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        EmailAddress.parse(raw)


def test_email_of_254_characters_is_accepted_and_255_refused() -> None:
    local = "k" * 64
    labels = ".".join(["d" * 60] * 3) + ".no"
    longest = f"{local}@ddd.{labels}"
    assert len(longest) == 254
    assert EmailAddress.parse(longest).value == longest
    too_long = f"{local}@dddd.{labels}"
    assert len(too_long) == 255
    with pytest.raises(InvalidValue):
        EmailAddress.parse(too_long)


@pytest.mark.parametrize(
    "raw", ["kari nordmann@bibliotek.no", "kari@bibliotek.test", "kari,x@bibliotek.no"]
)
def test_email_error_message_does_not_echo_the_input(raw: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        EmailAddress.parse(raw)
    message = str(caught.value)
    for part in ("kari", "bibliotek.test", "nordmann", ","):
        assert part not in message


# --- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["912 34 567", "91234567", "+47 912 34 567", "0047 91234567", " +4791234567 "]
)
def test_norwegian_mobile_is_stored_in_e164(raw: str) -> None:
    assert PhoneNumber.parse(raw).value == "+4791234567"


def test_norwegian_landline_is_accepted() -> None:
    assert str(PhoneNumber.parse("22 22 22 22")) == "+4722222222"


def test_foreign_number_in_international_form_is_accepted() -> None:
    assert PhoneNumber.parse("+46 70 123 45 67").value == "+46701234567"


def test_default_region_decides_how_a_national_number_is_read() -> None:
    assert PhoneNumber.parse("070-123 45 67", default_region="SE").value == "+46701234567"


@pytest.mark.parametrize("raw", ["", "12345", "abc", "+47 12", "+999 1234567", "1" * 41])
def test_impossible_or_invalid_phone_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        PhoneNumber.parse(raw)


def test_phone_error_message_does_not_echo_the_input() -> None:
    for raw in ("12345", "+47 12", "nummer"):
        with pytest.raises(InvalidValue) as caught:
            PhoneNumber.parse(raw)
        assert raw not in str(caught.value)
