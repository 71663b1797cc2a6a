"""Which view a library gets, and which feed entries one change makes: the domain rules alone."""

from __future__ import annotations

import dataclasses
import datetime as dt

from nlr_server.domain.actor import Actor
from nlr_server.domain.borrower import Affiliation, Borrower, DeletionReason, PersonalData
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.change_feed import ChangeKind, FeedEntry, Tombstone, entries_for
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.person_name import PersonName
from nlr_server.domain.policy import view_for
from nlr_server.domain.views import BorrowerView

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
OSLO, BERGEN, TROMSO = LibraryNumber("2030100"), LibraryNumber("2460100"), LibraryNumber("2540200")
CARD = CardNumber("N000000001")


def _borrower(*libraries: LibraryNumber) -> Borrower:
    personal = PersonalData(name=PersonName("Kari", "Nordmann"), birth_date=dt.date(1990, 5, 1))
    registered = Borrower.register(CARD, personal, libraries[0], Actor.library(libraries[0]), NOW)
    affiliations = tuple(Affiliation(library, NOW) for library in libraries)
    return dataclasses.replace(registered, affiliations=affiliations, id=7)


def test_an_affiliated_library_gets_the_full_view_and_any_other_the_basic_one() -> None:
    borrower = _borrower(OSLO, BERGEN)
    assert view_for(Actor.library(OSLO), borrower) is BorrowerView.FULL
    assert view_for(Actor.library(BERGEN), borrower) is BorrowerView.FULL
    assert view_for(Actor.library(TROMSO), borrower) is BorrowerView.BASIC


def test_a_new_borrower_is_created_for_its_library() -> None:
    assert entries_for(None, _borrower(OSLO), ChangeKind.CREATED) == [
        FeedEntry(OSLO, ChangeKind.CREATED, 7)
    ]


def test_an_update_reaches_every_affiliated_library_with_its_kind() -> None:
    before = _borrower(OSLO, BERGEN)
    after = dataclasses.replace(before, version=2, id=7)
    assert entries_for(before, after, ChangeKind.CARD_REPLACED) == [
        FeedEntry(OSLO, ChangeKind.CARD_REPLACED, 7),
        FeedEntry(BERGEN, ChangeKind.CARD_REPLACED, 7),
    ]


def test_a_new_library_is_told_affiliated_while_the_others_get_the_change() -> None:
    before = _borrower(OSLO)
    after = _borrower(OSLO, BERGEN)
    assert entries_for(before, after) == [
        FeedEntry(OSLO, ChangeKind.UPDATED, 7),
        FeedEntry(BERGEN, ChangeKind.AFFILIATED, 7),
    ]


def test_a_library_that_left_gets_a_tombstone_without_personal_data() -> None:
    before = _borrower(OSLO, BERGEN)
    after = _borrower(OSLO)
    assert entries_for(before, after) == [
        FeedEntry(OSLO, ChangeKind.UPDATED, 7),
        FeedEntry(BERGEN, ChangeKind.AFFILIATION_REMOVED, None, Tombstone(CARD)),
    ]


def test_a_deletion_is_a_tombstone_with_its_reason_for_every_library() -> None:
    before = _borrower(OSLO, BERGEN)
    entries = entries_for(before, None, ChangeKind.DELETED, DeletionReason.DECEASED)
    assert entries == [
        FeedEntry(library, ChangeKind.DELETED, None, Tombstone(CARD, DeletionReason.DECEASED))
        for library in (OSLO, BERGEN)
    ]
    assert all(entry.kind.is_tombstone and entry.borrower_id is None for entry in entries)
