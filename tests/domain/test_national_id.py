"""National ids: fødselsnummer, D-number, synthetic test numbers and DUF numbers."""

import datetime
import logging
import random

import pytest
from stdnum.no import fodselsnummer

from nlr_server.domain.errors import InvalidValue
from nlr_server.domain.national_id import (
    NationalId,
    NationalIdKind,
    make_fodselsnummer,
    make_synthetic_national_id,
)

TODAY = datetime.date(2025, 6, 15)
BIRTH_DATE = datetime.date(1985, 3, 7)


def _with_check_digits(first_nine: str) -> str:
    """Complete a number with check digits computed by python-stdnum, not by the code under test."""
    k1 = fodselsnummer.calc_check_digit1(first_nine)
    k2 = fodselsnummer.calc_check_digit2(first_nine + k1)
    return first_nine + k1 + k2


def _first_nine_with_valid_check_digits(stem: str, individuals: range) -> str:
    for individual in individuals:
        first_nine = f"{stem}{individual:03d}"
        if len(_with_check_digits(first_nine)) == 11:  # stdnum gives "10" when none exists
            return first_nine
    raise AssertionError("no valid individual number")


def _number(stem: str, individuals: range = range(0, 500)) -> str:
    return _with_check_digits(_first_nine_with_valid_check_digits(stem, individuals))


def _duf(first_ten: str) -> str:
    """A DUF number's check digits, by the rotated formulation (serial first, then the year)."""
    rotated = first_ten[4:] + first_ten[:4]
    weights = (4, 6, 3, 2, 7, 5, 4, 6, 3, 2)
    return first_ten + f"{sum(w * int(d) for w, d in zip(weights, rotated, strict=True)) % 11:02d}"


def _parse(raw: str, *, allow_synthetic: bool = False) -> NationalId:
    return NationalId.parse(raw, allow_synthetic=allow_synthetic, today=TODAY)


# --- fødselsnummer ---------------------------------------------------------------------------


def test_fodselsnummer_is_accepted_with_its_birth_date() -> None:
    national_id = _parse(make_fodselsnummer(BIRTH_DATE, 0))
    assert national_id.kind is NationalIdKind.FODSELSNUMMER
    assert national_id.birth_date == BIRTH_DATE


@pytest.mark.parametrize("separator", [" ", "-"])
def test_spaces_and_hyphens_are_ignored(separator: str) -> None:
    number = make_fodselsnummer(BIRTH_DATE, 3)
    national_id = _parse(f" {number[:6]}{separator}{number[6:]} ")
    assert national_id.value == number


def test_changing_any_one_digit_breaks_the_check_digits() -> None:
    number = make_fodselsnummer(BIRTH_DATE, 0)
    for position in range(11):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            changed = number[:position] + digit + number[position + 1 :]
            with pytest.raises(InvalidValue):
                _parse(changed)


def test_wrong_last_check_digit_is_reported_as_a_check_digit_error() -> None:
    number = make_fodselsnummer(BIRTH_DATE, 0)
    changed = number[:10] + str((int(number[10]) + 1) % 10)
    with pytest.raises(InvalidValue, match="check digits"):
        _parse(changed)


def test_number_whose_check_digit_would_be_10_is_refused() -> None:
    for individual in range(500):
        first_nine = f"070385{individual:03d}"
        if fodselsnummer.calc_check_digit1(first_nine) == "10":
            break
    for last_two in ("00", "10", "01"):
        with pytest.raises(InvalidValue):
            _parse(first_nine + last_two)


def test_birth_date_in_the_future_is_refused() -> None:
    number = make_fodselsnummer(TODAY + datetime.timedelta(days=1), 0)
    with pytest.raises(InvalidValue, match="future"):
        _parse(number)


def test_birth_date_of_today_is_accepted() -> None:
    assert _parse(make_fodselsnummer(TODAY, 0)).birth_date == TODAY


def test_today_defaults_to_the_real_date() -> None:
    tomorrow = datetime.date.today() + datetime.timedelta(days=1)
    with pytest.raises(InvalidValue, match="future"):
        NationalId.parse(make_fodselsnummer(tomorrow, 0), allow_synthetic=False)


def test_impossible_date_is_refused_even_with_valid_check_digits() -> None:
    with pytest.raises(InvalidValue, match="birth date"):
        _parse(_number("300285"))  # 30 February


def test_individual_number_decides_the_century() -> None:
    assert _parse(_number("010160", range(0, 500))).birth_date == datetime.date(1960, 1, 1)
    assert _parse(_number("010160", range(900, 1000))).birth_date == datetime.date(1960, 1, 1)
    assert _parse(_number("010160", range(500, 750))).birth_date == datetime.date(1860, 1, 1)
    assert _parse(_number("010110", range(500, 1000))).birth_date == datetime.date(2010, 1, 1)


def test_individual_number_outside_every_century_range_is_refused() -> None:
    # 500-749 with a two-digit year of 40-53 belongs to no century.
    with pytest.raises(InvalidValue, match="birth date"):
        _parse(_number("010145", range(500, 750)))


def test_parse_agrees_with_stdnum_on_many_numbers() -> None:
    rng = random.Random(20250615)
    for _ in range(5000):
        day = rng.randint(1, 31) + rng.choice((0, 40))
        stem = f"{day:02d}{rng.randint(1, 13):02d}{rng.randint(0, 99):02d}{rng.randint(0, 999):03d}"
        if rng.random() < 0.7:
            number = _with_check_digits(stem)
            if len(number) != 11:
                continue
        else:
            number = stem + f"{rng.randint(0, 99):02d}"
        try:
            fodselsnummer.validate(number)
            stdnum_accepts = fodselsnummer.get_birth_date(number) <= TODAY
        except Exception:
            stdnum_accepts = False
        try:
            _parse(number)
            we_accept = True
        except InvalidValue:
            we_accept = False
        assert we_accept == stdnum_accepts, number


# --- D-numbers, H-numbers, FH-numbers ----------------------------------------------------------


def test_d_number_is_accepted_with_day_plus_40() -> None:
    number = make_fodselsnummer(BIRTH_DATE, 5)
    d_number = _with_check_digits(str(int(number[0]) + 4) + number[1:9])
    national_id = _parse(d_number)
    assert national_id.kind is NationalIdKind.D_NUMBER
    assert national_id.birth_date == BIRTH_DATE
    assert fodselsnummer.is_valid(d_number)


def test_h_number_with_month_plus_40_is_refused() -> None:
    h_number = _number("074385")
    assert fodselsnummer.is_valid(h_number)  # stdnum accepts it; the register does not
    with pytest.raises(InvalidValue, match="H-numbers"):
        _parse(h_number, allow_synthetic=True)


@pytest.mark.parametrize("first_digit", ["8", "9"])
def test_fh_number_is_refused(first_digit: str) -> None:
    with pytest.raises(InvalidValue, match="FH-numbers"):
        _parse(_number(first_digit + "70385"), allow_synthetic=True)


# --- synthetic test numbers --------------------------------------------------------------------


def test_synthetic_number_is_refused_unless_allowed() -> None:
    synthetic = make_synthetic_national_id(BIRTH_DATE, 0)
    with pytest.raises(InvalidValue, match="synthetic test numbers are not accepted here"):
        _parse(synthetic, allow_synthetic=False)
    national_id = _parse(synthetic, allow_synthetic=True)
    assert national_id.kind is NationalIdKind.SYNTHETIC
    assert national_id.birth_date == BIRTH_DATE


def test_synthetic_number_has_month_plus_80() -> None:
    assert make_synthetic_national_id(BIRTH_DATE, 0)[:6] == "078385"


def test_synthetic_d_number_is_accepted_when_allowed() -> None:
    synthetic_d = _number("478385")
    national_id = _parse(synthetic_d, allow_synthetic=True)
    assert national_id.kind is NationalIdKind.SYNTHETIC
    assert national_id.birth_date == BIRTH_DATE


def test_synthetic_number_needs_valid_check_digits() -> None:
    synthetic = make_synthetic_national_id(BIRTH_DATE, 0)
    changed = synthetic[:10] + str((int(synthetic[10]) + 1) % 10)
    with pytest.raises(InvalidValue, match="check digits"):
        _parse(changed, allow_synthetic=True)


def test_synthetic_number_needs_a_real_date() -> None:
    with pytest.raises(InvalidValue, match="birth date"):
        _parse(_number("019385"), allow_synthetic=True)  # month 93 - 80 = 13
    with pytest.raises(InvalidValue, match="birth date"):
        _parse(_number("318485"), allow_synthetic=True)  # 31 April


def test_synthetic_number_with_birth_date_in_the_future_is_refused() -> None:
    synthetic = make_synthetic_national_id(TODAY + datetime.timedelta(days=1), 0)
    with pytest.raises(InvalidValue, match="future"):
        _parse(synthetic, allow_synthetic=True)


# --- DUF numbers -------------------------------------------------------------------------------


def test_duf_number_is_accepted_without_a_birth_date() -> None:
    national_id = _parse(_duf("2005123456"))
    assert national_id.kind is NationalIdKind.DUF
    assert national_id.birth_date is None


def test_duf_check_digits_match_published_examples() -> None:
    # Worked by hand: 2*4+0*6+0*3+2*2+0*4+5*6+7*3+0*2+5*7+5*5 = 123 = 11*11 + 2
    assert _parse("200205705502").kind is NationalIdKind.DUF
    assert _parse("200900595509").kind is NationalIdKind.DUF


def test_duf_number_whose_check_digits_are_10_is_accepted() -> None:
    for serial in range(1000):
        number = _duf(f"2010{serial:06d}")
        if number.endswith("10"):
            break
    assert _parse(number).kind is NationalIdKind.DUF


def test_duf_number_with_wrong_check_digits_is_refused() -> None:
    number = _duf("2005123456")
    for position in range(12):
        digit = str((int(number[position]) + 1) % 10)
        changed = number[:position] + digit + number[position + 1 :]
        with pytest.raises(InvalidValue):
            _parse(changed)


@pytest.mark.parametrize("year", ["1899", "2026", "9999"])
def test_duf_number_must_start_with_a_plausible_year(year: str) -> None:
    with pytest.raises(InvalidValue, match="registration year"):
        _parse(_duf(year + "123456"))


def test_duf_number_from_this_year_is_accepted() -> None:
    assert _parse(_duf("2025000001")).kind is NationalIdKind.DUF


# --- malformed input and leaks -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "1234567890",
        "1234567890123",
        "0703851234a",
        "07038512345 6789",
        "\uff10\uff17\uff10\uff13\uff18\uff15\uff11\uff12\uff13\uff14\uff15",
    ],
)
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue, match="11 digits"):
        _parse(raw)


def test_invalid_value_messages_never_contain_the_input() -> None:
    valid = make_fodselsnummer(BIRTH_DATE, 0)
    bad_inputs = [
        valid[:10] + str((int(valid[10]) + 1) % 10),
        make_synthetic_national_id(BIRTH_DATE, 0),
        _number("074385"),
        _number("870385"),
        _number("300285"),
        make_fodselsnummer(TODAY + datetime.timedelta(days=3), 0),
        _duf("2099123456"),
        _duf("2005123456")[:11] + "9",
        "123456789",
    ]
    for raw in bad_inputs:
        with pytest.raises(InvalidValue) as caught:
            _parse(raw)
        message = str(caught.value)
        assert raw not in message
        assert raw[:6] not in message and raw[6:] not in message


def test_repr_never_shows_the_digits() -> None:
    number = make_fodselsnummer(BIRTH_DATE, 0)
    national_id = _parse(number)
    assert repr(national_id) == "NationalId(kind=FODSELSNUMMER, value=***********)"
    for text in (repr(national_id), str(national_id), f"{national_id}", repr([national_id])):
        assert number[:6] not in text
        assert number[6:] not in text


def test_logging_a_national_id_never_shows_the_digits(caplog: pytest.LogCaptureFixture) -> None:
    number = make_fodselsnummer(BIRTH_DATE, 0)
    with caplog.at_level(logging.INFO):
        logging.getLogger("nlr.test").info("created %s (%r)", _parse(number), _parse(number))
    assert number[6:] not in caplog.text
    assert "FODSELSNUMMER" in caplog.text


def test_value_attribute_holds_the_digits() -> None:
    number = make_fodselsnummer(BIRTH_DATE, 0)
    assert _parse(number).value == number


def test_kind_is_a_str_enum() -> None:
    assert isinstance(NationalIdKind.D_NUMBER, str)
    assert {kind.name for kind in NationalIdKind} == {
        "FODSELSNUMMER",
        "D_NUMBER",
        "DUF",
        "SYNTHETIC",
    }


# --- generators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "birth_date",
    [
        datetime.date(1854, 1, 1),
        datetime.date(1899, 12, 31),
        datetime.date(1900, 1, 1),
        datetime.date(1940, 2, 29),
        datetime.date(1999, 12, 31),
        datetime.date(2000, 1, 1),
        datetime.date(2024, 2, 29),
    ],
)
def test_every_generated_fodselsnummer_passes_stdnum(birth_date: datetime.date) -> None:
    serial = 0
    numbers = set()
    while True:
        try:
            number = make_fodselsnummer(birth_date, serial)
        except ValueError:
            break
        assert fodselsnummer.validate(number) == number
        assert fodselsnummer.get_birth_date(number) == birth_date
        assert _parse(number).birth_date == birth_date
        numbers.add(number)
        serial += 1
    assert len(numbers) == serial > 200  # one distinct number per serial


def test_generated_synthetic_numbers_parse_as_synthetic_with_their_birth_date() -> None:
    rng = random.Random(7)
    for _ in range(300):
        birth_date = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randint(0, 45000))
        synthetic = make_synthetic_national_id(birth_date, rng.randint(0, 200))
        national_id = NationalId.parse(synthetic, allow_synthetic=True, today=TODAY)
        assert national_id.kind is NationalIdKind.SYNTHETIC
        assert national_id.birth_date == birth_date


def test_generators_are_deterministic() -> None:
    assert make_fodselsnummer(BIRTH_DATE, 17) == make_fodselsnummer(BIRTH_DATE, 17)
    assert make_synthetic_national_id(BIRTH_DATE, 17) == make_synthetic_national_id(BIRTH_DATE, 17)
    assert make_fodselsnummer(BIRTH_DATE, 17) != make_fodselsnummer(BIRTH_DATE, 18)


def test_generated_numbers_use_the_individual_range_of_their_century() -> None:
    assert 500 <= int(make_fodselsnummer(datetime.date(1880, 5, 1), 0)[6:9]) <= 749
    assert int(make_fodselsnummer(datetime.date(1980, 5, 1), 0)[6:9]) <= 499
    assert int(make_fodselsnummer(datetime.date(2020, 5, 1), 0)[6:9]) >= 500


@pytest.mark.parametrize("serial", [-1, 500])
def test_generator_refuses_a_serial_out_of_range(serial: int) -> None:
    with pytest.raises(ValueError, match="serial"):
        make_fodselsnummer(BIRTH_DATE, serial)


@pytest.mark.parametrize("year", [1853, 2040])
def test_generator_refuses_a_year_without_individual_numbers(year: int) -> None:
    with pytest.raises(ValueError, match="birth year"):
        make_synthetic_national_id(datetime.date(year, 1, 1), 0)
