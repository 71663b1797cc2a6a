"""The lockout policy: failures lock, locks grow, checks under way count, and everything is
forgotten a while after the last of it."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.lockout import LockoutPolicy, LoginAttempts, LoginSubject

POLICY = LockoutPolicy(
    failures_before_lock=5,
    first_lock=dt.timedelta(minutes=15),
    longest_lock=dt.timedelta(hours=24),
    forget_after=dt.timedelta(days=7),
    check_timeout=dt.timedelta(seconds=60),
)
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def failed(times: int, at: dt.datetime = T0, start: LoginAttempts | None = None) -> LoginAttempts:
    attempts = start or LoginAttempts()
    for _ in range(times):
        attempts = attempts.failed(at, POLICY)
    return attempts


def test_the_fifth_failure_in_a_row_locks_for_the_first_lock() -> None:
    four = failed(4)
    five = failed(5)

    assert (four.consecutive_failures, four.is_locked(T0)) == (4, False)
    assert five.is_locked(T0 + dt.timedelta(minutes=14, seconds=59))
    assert not five.is_locked(T0 + dt.timedelta(minutes=15))
    assert (five.consecutive_failures, five.lockouts) == (0, 1)


def test_each_lock_lasts_twice_the_one_before_up_to_the_longest() -> None:
    attempts = LoginAttempts()
    durations = []
    at = T0
    for _ in range(9):
        attempts = failed(5, at, attempts)
        assert attempts.locked_until is not None
        durations.append(attempts.locked_until - at)
        at = attempts.locked_until

    assert (
        durations
        == [dt.timedelta(minutes=15 * 2**n) for n in range(7)] + [dt.timedelta(hours=24)] * 2
    )


def test_a_success_is_a_clean_slate() -> None:
    assert failed(4).succeeded() == LoginAttempts()
    assert failed(5).succeeded().clean


def test_everything_is_forgotten_a_week_after_the_last_failure_or_lock_end() -> None:
    four = failed(4)
    locked = failed(5)
    assert locked.locked_until is not None

    assert four.current(T0 + dt.timedelta(days=7) - dt.timedelta(seconds=1), POLICY) == four
    assert four.current(T0 + dt.timedelta(days=7), POLICY) == LoginAttempts()
    # A lock is remembered (for the next one's length) from its end, not from its start.
    still = locked.locked_until + dt.timedelta(days=7) - dt.timedelta(seconds=1)
    assert locked.current(still, POLICY).lockouts == 1
    assert locked.current(still + dt.timedelta(seconds=1), POLICY) == LoginAttempts()
    assert four.forget_at(POLICY) == T0 + dt.timedelta(days=7)
    assert LoginAttempts().forget_at(POLICY) is None


def test_checks_under_way_count_against_the_room_before_a_lock() -> None:
    attempts = failed(2)
    for _ in range(3):
        assert attempts.may_check(POLICY)
        attempts = attempts.reserved(T0, POLICY)

    assert not attempts.may_check(POLICY)  # two failures and three checks under way
    assert attempts.checks_in_flight == 3


def test_concurrent_right_checks_all_succeed_and_keep_the_others_counted() -> None:
    attempts = LoginAttempts()
    for _ in range(5):
        attempts = attempts.reserved(T0, POLICY)

    attempts = attempts.released(True, T0, POLICY)

    assert (attempts.consecutive_failures, attempts.checks_in_flight) == (0, 4)
    assert attempts.may_check(POLICY)
    for _ in range(4):
        attempts = attempts.released(True, T0, POLICY)
    assert attempts.clean


def test_concurrent_wrong_checks_lock_after_the_fifth_and_no_sooner() -> None:
    attempts = LoginAttempts()
    for _ in range(5):
        attempts = attempts.reserved(T0, POLICY)
    for reported in range(1, 5):
        attempts = attempts.released(False, T0, POLICY)
        assert not attempts.is_locked(T0), reported
        assert not attempts.may_check(POLICY)  # failures + checks under way are still five

    attempts = attempts.released(False, T0, POLICY)

    assert attempts.is_locked(T0)
    assert attempts.checks_in_flight == 0
    assert attempts.in_flight_until is None


def test_a_check_never_reported_counts_as_a_failure_after_its_timeout() -> None:
    attempts = failed(4).reserved(T0, POLICY)

    assert attempts.current(T0 + dt.timedelta(seconds=59), POLICY) == attempts
    after = attempts.current(T0 + dt.timedelta(seconds=60), POLICY)

    assert after.checks_in_flight == 0
    assert after.is_locked(T0 + dt.timedelta(seconds=61))
    assert after.locked_until == T0 + dt.timedelta(seconds=60) + dt.timedelta(minutes=15)


def test_the_last_event_is_the_latest_of_failure_lock_end_and_checks_under_way() -> None:
    locked = failed(5)
    reserved = failed(1).reserved(T0 + dt.timedelta(seconds=5), POLICY)

    assert locked.last_event_at == locked.locked_until
    assert reserved.last_event_at == T0 + dt.timedelta(seconds=65)
    assert LoginAttempts().last_event_at is None


def test_a_login_subject_is_a_borrower_or_an_unknown_key() -> None:
    assert LoginSubject.of_borrower(7).borrower_id == 7
    assert LoginSubject.of_unknown_key(b"\x01" * 32).key_tag == b"\x01" * 32
    with pytest.raises(ValueError):
        LoginSubject()
    with pytest.raises(ValueError):
        LoginSubject(borrower_id=7, key_tag=b"\x01" * 32)
