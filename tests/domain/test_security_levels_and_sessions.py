"""Security levels in order, what each login reaches, and what a session opens."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.credentials import LoginMethod, SecurityLevel, opens, reached
from nlr_server.domain.errors import PermissionDenied
from nlr_server.domain.session import (
    Session,
    SessionPolicy,
    require_may_choose,
    require_two_factors,
)

PIN, PASSWORD, TWO_FACTOR, EID = (
    SecurityLevel.PIN,
    SecurityLevel.PASSWORD,
    SecurityLevel.TWO_FACTOR,
    SecurityLevel.EID,
)
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def test_levels_are_ordered_pin_password_two_factor_eid() -> None:
    assert PIN < PASSWORD < TWO_FACTOR < EID
    assert max(PASSWORD, TWO_FACTOR) is TWO_FACTOR


@pytest.mark.parametrize(
    ("method", "second_factor", "level"),
    [
        (LoginMethod.PIN, False, PIN),
        (LoginMethod.PIN, True, PIN),
        (LoginMethod.PASSWORD, False, PASSWORD),
        (LoginMethod.PASSWORD, True, TWO_FACTOR),
        (LoginMethod.FEIDE, False, PASSWORD),
        (LoginMethod.FEIDE, True, TWO_FACTOR),
        (LoginMethod.IDPORTEN, False, EID),
    ],
)
def test_what_each_login_reaches(
    method: LoginMethod, second_factor: bool, level: SecurityLevel
) -> None:
    assert reached(method, second_factor) is level


def test_a_totp_code_is_no_login_of_its_own() -> None:
    with pytest.raises(ValueError, match="second factor"):
        _ = LoginMethod.TOTP.reaches


@pytest.mark.parametrize(
    ("method", "second_factor", "chosen", "opened"),
    [
        (LoginMethod.PIN, False, PASSWORD, False),
        (LoginMethod.PASSWORD, False, PASSWORD, True),
        (LoginMethod.PASSWORD, False, TWO_FACTOR, False),
        (LoginMethod.PASSWORD, True, TWO_FACTOR, True),
        (LoginMethod.PASSWORD, True, EID, False),
        (LoginMethod.IDPORTEN, False, EID, True),
    ],
)
def test_a_login_opens_a_borrower_whose_level_it_reaches(
    method: LoginMethod, second_factor: bool, chosen: SecurityLevel, opened: bool
) -> None:
    assert opens(method, chosen, second_factor) is opened


DEFAULT_POLICY = SessionPolicy()


def session(strength: SecurityLevel, policy: SessionPolicy = DEFAULT_POLICY) -> Session:
    return Session.opened(1, "N000000001", "ab" * 32, LoginMethod.PASSWORD, strength, NOW, policy)


def test_a_session_slides_at_most_once_a_minute_and_never_past_its_end() -> None:
    policy = SessionPolicy(idle=dt.timedelta(minutes=15), longest=dt.timedelta(minutes=20))
    opened = session(PASSWORD, policy)
    assert opened.expires_at == NOW + dt.timedelta(minutes=15)

    assert opened.extended(NOW + dt.timedelta(seconds=30), policy) is None
    later = opened.extended(NOW + dt.timedelta(minutes=2), policy)
    assert later is not None and later.expires_at == NOW + dt.timedelta(minutes=17)
    last = later.extended(NOW + dt.timedelta(minutes=10), policy)
    assert last is not None and last.expires_at == NOW + dt.timedelta(minutes=20)
    assert not last.is_live(NOW + dt.timedelta(minutes=20))


def test_reading_needs_two_factors() -> None:
    with pytest.raises(PermissionDenied) as refused:
        require_two_factors(session(PASSWORD))
    assert refused.value.reason == "TWO_FACTORS_REQUIRED"
    require_two_factors(session(TWO_FACTOR))
    require_two_factors(session(EID))


@pytest.mark.parametrize(
    ("strength", "old", "new", "reason"),
    [
        (PASSWORD, PASSWORD, TWO_FACTOR, "SECURITY_LEVEL_ABOVE_SESSION"),
        (TWO_FACTOR, PASSWORD, EID, "SECURITY_LEVEL_ABOVE_SESSION"),
        (PASSWORD, PASSWORD, PIN, "TWO_FACTORS_REQUIRED"),
        (TWO_FACTOR, TWO_FACTOR, PIN, None),
        (PASSWORD, PIN, PASSWORD, None),
        (EID, EID, PIN, None),
    ],
)
def test_a_borrower_chooses_no_level_above_the_session_and_lowers_with_two_factors(
    strength: SecurityLevel, old: SecurityLevel, new: SecurityLevel, reason: str | None
) -> None:
    if reason is None:
        require_may_choose(session(strength), old, new)
        return
    with pytest.raises(PermissionDenied) as refused:
        require_may_choose(session(strength), old, new)
    assert refused.value.reason == reason
