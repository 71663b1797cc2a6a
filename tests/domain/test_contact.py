"""Email addresses and phone numbers."""

import random
from collections.abc import Iterator

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from nlr_server.domain.contact import _PLAIN_EMAIL, EmailAddress, PhoneNumber
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


def _email_by_email_validator(raw: str) -> str | None:
    """What EmailAddress.parse gave before its fast path for plain addresses: the reference."""
    candidate = raw.strip()
    if len(candidate) > 254:
        return None
    try:
        normalized = validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    return normalized if len(normalized) <= 254 else None


def _email(raw: str) -> str | None:
    try:
        return EmailAddress.parse(raw).value
    except InvalidValue:
        return None


def _generated_addresses(count: int) -> Iterator[str]:
    """Addresses near the plain form's edges: special characters, dots, hyphens, digits, case,
    special-use and numeric top-level domains, long labels, non-ASCII letters."""
    pick = random.Random(20261124)
    local_parts = [
        "kari",
        "Kari.Nordmann",
        "a",
        "ola_n+lib",
        "x-y",
        "k" * 64,
        "k" * 65,
        ".kari",
        "kari.",
        "ka..ri",
        "kåre",
        "kari!",
        '"q"',
        "o'neil",
        "a b",
        "1",
        "_",
    ]
    labels = [
        "example",
        "EXAMPLE",
        "bibliotek",
        "b-k",
        "-bk",
        "bk-",
        "b--k",
        "xn--bker-zra",
        "d" * 63,
        "d" * 64,
        "1",
        "123",
        "bøker",
        "a_b",
        "localhost",
        "test",
        "",
    ]
    tlds = [
        "no",
        "NO",
        "com",
        "org",
        "c",
        "b1",
        "1b",
        "123",
        "local",
        "test",
        "invalid",
        "onion",
        "arpa",
        "localhost",
        "museum",
        "x" * 63,
    ]
    for _ in range(count):
        local = pick.choice(local_parts)
        if pick.random() < 0.3:
            local += pick.choice(["", ".", "-", "+"]) + pick.choice(local_parts)
        domain = ".".join(pick.choice(labels) for _ in range(pick.randint(0, 3)))
        tld = pick.choice(tlds)
        yield f"{local}@{domain}.{tld}" if domain else f"{local}@{tld}"


def test_plain_addresses_are_read_exactly_as_email_validator_reads_them() -> None:
    plain = 0
    for raw in _generated_addresses(30_000):
        expected = _email_by_email_validator(raw)
        assert _email(raw) == expected, raw
        plain += expected is not None and _PLAIN_EMAIL.fullmatch(raw.strip()) is not None
    assert plain > 1_000, "the comparison must cover many addresses of the plain form"


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


def _read_by_phonenumbers(raw: str) -> str | None:
    """What PhoneNumber.parse gave before its fast path for Norwegian forms: the reference."""
    try:
        number = phonenumbers.parse(raw, "NO")
    except phonenumbers.NumberParseException:
        return None
    if not (phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number(number)):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _read(raw: str) -> str | None:
    try:
        return PhoneNumber.parse(raw).value
    except InvalidValue:
        return None


def test_norwegian_forms_are_read_exactly_as_phonenumbers_reads_them() -> None:
    # Every three-digit start (Norway's and Svalbard's ranges, valid and not) with several
    # endings, in the forms the fast path takes and some it leaves to phonenumbers.
    forms = (
        "{}",
        "{0[0]}{0[1]}{0[2]} {0[3]}{0[4]} {0[5]}{0[6]}{0[7]}",
        "+47 {}",
        "+47{}",
        " + 47 {0[0]}{0[1]} {0[2]}{0[3]} {0[4]}{0[5]} {0[6]}{0[7]} ",
        "0047{}",
        "+470{}",
        "{}0",
    )
    compared = accepted = 0
    for start in range(1000):
        for ending in ("00000", "12345", "99999", "54321"):
            digits = f"{start:03d}{ending}"
            for form in forms:
                raw = form.format(digits)
                expected = _read_by_phonenumbers(raw)
                assert _read(raw) == expected, raw
                compared += 1
                accepted += expected is not None
    assert compared == 32_000
    assert accepted > 10_000, "the comparison must cover many valid numbers, not only refusals"
