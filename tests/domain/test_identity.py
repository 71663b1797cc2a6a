"""Other identities: each kind's value rules, and how long an identity is kept."""

import datetime as dt

import pytest

from nlr_server.domain.errors import InvalidValue
from nlr_server.domain.identity import (
    IdentityKind,
    IdentityValue,
    check_delete_after,
    latest_delete_after,
    new_identity,
)

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


def test_a_feide_id_is_trimmed_and_lower_cased() -> None:
    parsed = IdentityValue.parse(IdentityKind.FEIDE, " Kari.Nordmann@Student.UiO.no\n")

    assert parsed == IdentityValue(IdentityKind.FEIDE, "kari.nordmann@student.uio.no")


@pytest.mark.parametrize(
    "raw",
    [
        "kari",
        "@uio.no",
        "kari@",
        "kari@uio",
        "kari@uio.",
        "kari@-uio.no",
        "kari@@uio.no",
        "ka ri@uio.no",
        "kåre@uio.no",
        "KÅRE@UIO.NO",
        "kari@uio.n0",
        "k" * 65 + "@uio.no",
        "kari@" + "a" * 250 + ".no",
    ],
)
def test_a_feide_id_must_be_name_at_realm(raw: str) -> None:
    with pytest.raises(InvalidValue):
        IdentityValue.parse(IdentityKind.FEIDE, raw)


@pytest.mark.parametrize("kind", [IdentityKind.POCKET, IdentityKind.SCHOOL_CARD])
def test_pocket_and_school_card_values_keep_their_case(kind: IdentityKind) -> None:
    assert IdentityValue.parse(kind, " Ab-1_2.C ").value == "Ab-1_2.C"
    assert IdentityValue.parse(kind, "x" * 64).value == "x" * 64


@pytest.mark.parametrize("raw", ["", "   ", "a b", "a/b", "a@b", "æøå", "x" * 65])
@pytest.mark.parametrize("kind", [IdentityKind.POCKET, IdentityKind.SCHOOL_CARD])
def test_pocket_and_school_card_values_are_1_to_64_safe_characters(
    kind: IdentityKind, raw: str
) -> None:
    with pytest.raises(InvalidValue):
        IdentityValue.parse(kind, raw)


def test_a_delete_after_time_lies_ahead_by_at_most_ten_years() -> None:
    ten_years = dt.datetime(2036, 11, 24, 10, 0, tzinfo=dt.UTC)

    assert check_delete_after(ten_years, NOW) == ten_years
    for refused in (NOW, NOW - dt.timedelta(seconds=1), ten_years + dt.timedelta(seconds=1)):
        with pytest.raises(InvalidValue):
            check_delete_after(refused, NOW)


def test_ten_years_after_29_february_is_28_february() -> None:
    leap_day = dt.datetime(2028, 2, 29, tzinfo=dt.UTC)

    assert latest_delete_after(leap_day) == dt.datetime(2038, 2, 28, tzinfo=dt.UTC)


def test_a_new_identity_is_kept_for_the_default_lifetime_unless_told_otherwise() -> None:
    value = IdentityValue(IdentityKind.POCKET, "p-1")
    chosen = NOW + dt.timedelta(days=7)

    default = new_identity(value, NOW, None, dt.timedelta(days=1095))
    told = new_identity(value, NOW, chosen, dt.timedelta(days=1095))

    assert (default.created_at, default.delete_after) == (NOW, NOW + dt.timedelta(days=1095))
    assert told.delete_after == chosen
