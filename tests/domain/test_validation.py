"""The parse-or-record helper and the shared text cleaning."""

import pytest

from nlr_server.domain.errors import FieldViolation, InvalidArgument, InvalidValue, Violations
from nlr_server.domain.validation import check, clean_text, field_path


def _refuse() -> int:
    raise InvalidValue("must be something else")


def test_check_returns_the_parsed_value_and_records_nothing() -> None:
    violations = Violations()
    assert check(violations, "borrower.card_number", lambda: 42) == 42
    assert not violations


def test_check_records_the_violation_under_the_field_and_returns_none() -> None:
    violations = Violations()
    assert check(violations, "borrower.card_number", _refuse) is None
    with pytest.raises(InvalidArgument) as caught:
        violations.raise_if_any()
    assert caught.value.violations == [
        FieldViolation("borrower.card_number", "must be something else")
    ]


def test_check_lets_other_errors_through() -> None:
    def broken() -> int:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        check(Violations(), "borrower.card_number", broken)


def test_field_path_joins_prefix_and_name() -> None:
    assert field_path("borrower.registered_address", "city") == "borrower.registered_address.city"
    assert field_path("", "city") == "city"


def test_clean_text_trims_and_collapses_whitespace() -> None:
    assert clean_text("  Storgata \u00a0 1  ", max_length=100) == "Storgata 1"


def test_clean_text_normalises_to_nfc() -> None:
    assert clean_text("A\u030a", max_length=1) == "\u00c5"


@pytest.mark.parametrize("raw", ["Storgata\t1", "Storgata\n1", "Storgata\x001", "Stor\u202egata"])
def test_clean_text_refuses_control_characters(raw: str) -> None:
    with pytest.raises(InvalidValue, match="control characters"):
        clean_text(raw, max_length=100)


def test_clean_text_refuses_empty_and_too_long_text() -> None:
    with pytest.raises(InvalidValue, match="required"):
        clean_text("   ", max_length=10)
    with pytest.raises(InvalidValue, match="at most 10"):
        clean_text("x" * 11, max_length=10)
