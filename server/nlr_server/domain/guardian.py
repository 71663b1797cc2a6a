"""Guardians (foresatte): links between a child's and a guardian's records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.library_number import LibraryNumber

ADULT_AGE = 18


@dataclass(frozen=True, slots=True)
class GuardianLink:
    """A link seen from one side: the other borrower's card number, when and by whom."""

    card_number: CardNumber
    linked_at: dt.datetime
    linked_by: LibraryNumber


@dataclass(frozen=True, slots=True)
class GuardianLinks:
    guardians: tuple[GuardianLink, ...] = ()
    wards: tuple[GuardianLink, ...] = ()
