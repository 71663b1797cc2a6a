"""The deletion notice: who gets one, what it says, and when a failed delivery is tried again."""

from __future__ import annotations

import datetime as dt

import pytest

from nlr_server.domain.actor import Actor
from nlr_server.domain.borrower import Affiliation, Borrower, PersonalData
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress
from nlr_server.domain.deletion_notice import DeletionNotice, DeliveryPolicy, NoticeLibrary
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.person_name import PersonName

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
OSLO = LibraryNumber("2030100")
BERGEN = LibraryNumber("2460100")


def borrower(email: str | None = "kari@example.org") -> Borrower:
    personal = PersonalData(
        name=PersonName("Kari", "Nordmann"),
        birth_date=dt.date(1990, 5, 1),
        email=EmailAddress(email) if email else None,
    )
    registered = Borrower.register(
        CardNumber("N000000001"), personal, OSLO, Actor.library(OSLO), NOW
    )
    later = NOW + dt.timedelta(days=3)
    return Borrower(
        card_number=registered.card_number,
        personal=personal,
        home_library=OSLO,
        affiliations=(*registered.affiliations, Affiliation(BERGEN, later)),
        created_by=Actor.library(OSLO),
        created_at=NOW,
        last_changed_by=Actor.library(OSLO),
        last_changed_at=NOW,
    )


NAMES = {OSLO: "Deichman Oslo", BERGEN: "Bergen offentlige bibliotek"}


def test_notice_is_for_the_borrowers_address_and_lists_every_affiliated_library() -> None:
    notice = DeletionNotice.for_deleted(borrower(), NAMES, NOW)

    assert notice == DeletionNotice(
        recipient=EmailAddress("kari@example.org"),
        borrower_name=PersonName("Kari", "Nordmann"),
        libraries=(
            NoticeLibrary(OSLO, "Deichman Oslo"),
            NoticeLibrary(BERGEN, "Bergen offentlige bibliotek"),
        ),
        created_at=NOW,
    )


def test_borrower_without_an_email_address_gets_no_notice() -> None:
    assert DeletionNotice.for_deleted(borrower(email=None), NAMES, NOW) is None


def test_body_names_each_library_and_its_number_in_norwegian_and_english() -> None:
    notice = DeletionNotice.for_deleted(borrower(), NAMES, NOW)
    assert notice is not None

    lines = notice.body.splitlines()

    assert lines[0] == "Hei Kari Nordmann,"
    assert "Dear Kari Nordmann," in lines
    assert [line for line in lines if line.startswith("  - ")] == [
        "  - Deichman Oslo (biblioteknummer 2030100)",
        "  - Bergen offentlige bibliotek (biblioteknummer 2460100)",
        "  - Deichman Oslo (library number 2030100)",
        "  - Bergen offentlige bibliotek (library number 2460100)",
    ]
    assert notice.subject == (
        "Du er slettet fra Nasjonalt lånerregister / "
        "You have been deleted from the national borrower register"
    )


def test_body_holds_no_card_number_and_no_address() -> None:
    notice = DeletionNotice.for_deleted(borrower(), NAMES, NOW)
    assert notice is not None

    assert "N000000001" not in notice.body
    assert "kari@example.org" not in notice.body


def test_library_without_a_name_is_listed_by_its_number() -> None:
    notice = DeletionNotice.for_deleted(borrower(), {OSLO: "Deichman Oslo"}, NOW)
    assert notice is not None

    assert "  - library number 2460100" in notice.body.splitlines()


POLICY = DeliveryPolicy(first_retry=dt.timedelta(seconds=60), give_up_after=dt.timedelta(hours=72))


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 60), (2, 120), (3, 240), (6, 1920), (7, 3600), (8, 3600), (10_000, 3600)],
)
def test_each_failure_doubles_the_wait_up_to_an_hour(failures: int, delay: int) -> None:
    assert POLICY.next_attempt(failures, NOW) == NOW + dt.timedelta(seconds=delay)


def test_a_first_attempt_is_not_a_retry() -> None:
    with pytest.raises(ValueError, match="not a retry"):
        POLICY.next_attempt(0, NOW)


def test_notices_older_than_the_give_up_time_are_given_up() -> None:
    assert POLICY.give_up_before(NOW) == NOW - dt.timedelta(hours=72)
