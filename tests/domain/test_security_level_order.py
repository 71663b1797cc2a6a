"""Security levels: ordered by rank, which login method opens which level, and which changes a
library may make (raise or keep, never lower)."""

from __future__ import annotations

import pytest

from nlr_server.domain.actor import Actor
from nlr_server.domain.credentials import LoginMethod, SecurityLevel, opens
from nlr_server.domain.errors import PermissionDenied
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.policy import require_may_set_security_level

PIN, PASSWORD = SecurityLevel.PIN, SecurityLevel.PASSWORD


def test_levels_are_ordered_by_rank_weakest_first() -> None:
    assert PIN < PASSWORD
    assert PIN <= PASSWORD
    assert PASSWORD > PIN
    assert PASSWORD >= PIN
    assert PIN <= PIN and PIN >= PIN
    assert not PIN < PIN
    assert not PASSWORD < PIN
    assert sorted([PASSWORD, PIN]) == [PIN, PASSWORD]
    assert max(PIN, PASSWORD) is PASSWORD


def test_order_is_by_rank_not_by_the_stored_name() -> None:
    # By name "password" < "pin"; by rank it is the other way round.
    assert PASSWORD.value < PIN.value
    assert PASSWORD > PIN
    assert [level.rank for level in (PIN, PASSWORD)] == [0, 1]


def test_a_level_is_not_compared_with_a_string() -> None:
    level, stored_name = SecurityLevel.PIN, "password"
    with pytest.raises(TypeError):
        assert level < stored_name
    with pytest.raises(TypeError):
        assert stored_name > level


def test_levels_are_stored_and_read_back_by_name() -> None:
    assert SecurityLevel("pin") is PIN
    assert SecurityLevel("password") is PASSWORD
    assert PASSWORD.value == "password"


def test_each_method_reaches_its_own_level() -> None:
    assert LoginMethod.PIN.reaches is PIN
    assert LoginMethod.PASSWORD.reaches is PASSWORD


@pytest.mark.parametrize(
    ("method", "level", "expected"),
    [
        (LoginMethod.PIN, PIN, True),
        (LoginMethod.PIN, PASSWORD, False),
        (LoginMethod.PASSWORD, PIN, True),
        (LoginMethod.PASSWORD, PASSWORD, True),
    ],
)
def test_a_method_opens_the_levels_up_to_the_one_it_reaches(
    method: LoginMethod, level: SecurityLevel, expected: bool
) -> None:
    assert opens(method, level) is expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (PIN, PIN, True),
        (PIN, PASSWORD, True),
        (PASSWORD, PASSWORD, True),
        (PASSWORD, PIN, False),
    ],
)
def test_a_library_may_raise_or_keep_a_level_but_not_lower_it(
    old: SecurityLevel, new: SecurityLevel, expected: bool
) -> None:
    library = Actor.library(LibraryNumber("2030100"))
    if expected:
        require_may_set_security_level(library, old, new)
        return
    with pytest.raises(PermissionDenied) as refused:
        require_may_set_security_level(library, old, new)
    assert refused.value.reason == "SECURITY_LEVEL_LOWERING"


@pytest.mark.parametrize("actor", [Actor.borrower("N000000001"), Actor.operator("kari")])
def test_the_borrower_and_an_operator_may_lower_a_level(actor: Actor) -> None:
    require_may_set_security_level(actor, PASSWORD, PIN)
