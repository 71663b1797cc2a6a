"""The notice a borrower gets after asking to be deleted: which libraries may still hold a copy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from nlr_server.domain.borrower import Borrower
from nlr_server.domain.contact import EmailAddress
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.person_name import PersonName


class NoticeNotDelivered(Exception):
    """A delivery attempt failed; the message is safe to log (never an address or a name)."""


@dataclass(frozen=True, slots=True)
class NoticeLibrary:
    """A library the deleted borrower was affiliated with, as the notice names it."""

    number: LibraryNumber
    name: str


@dataclass(frozen=True, slots=True)
class DeletionNotice:
    """An email to a deleted borrower, waiting in the outbox until it is delivered.

    It holds personal data (address, name and the libraries that knew the borrower), so the
    outbox purges it as soon as it is delivered or given up.
    """

    recipient: EmailAddress
    borrower_name: PersonName
    libraries: tuple[NoticeLibrary, ...]
    created_at: dt.datetime
    # Failed delivery attempts so far: the backoff grows with them.
    attempts: int = 0
    id: int | None = None

    @classmethod
    def for_deleted(
        cls, borrower: Borrower, library_names: Mapping[LibraryNumber, str], now: dt.datetime
    ) -> DeletionNotice | None:
        """The notice for a borrower deleted at their own request; None without an email
        address. Libraries are listed in the order the borrower was affiliated with them."""
        email = borrower.personal.email
        if email is None:
            return None
        libraries = tuple(
            NoticeLibrary(a.library_number, library_names.get(a.library_number, ""))
            for a in borrower.affiliations
        )
        return cls(email, borrower.personal.name, libraries, now)

    @property
    def subject(self) -> str:
        return (
            "Du er slettet fra Nasjonalt lånerregister / "
            "You have been deleted from the national borrower register"
        )

    @property
    def body(self) -> str:
        name = f"{self.borrower_name.given_name} {self.borrower_name.family_name}"
        norwegian = _list(self.libraries, "biblioteknummer")
        english = _list(self.libraries, "library number")
        return (
            f"Hei {name},\n"
            "\n"
            "Som du ba om, er opplysningene om deg slettet fra Nasjonalt lånerregister, det\n"
            "felles registeret bak lånekortet. Lånekortet kan ikke lenger brukes.\n"
            "\n"
            "Disse bibliotekene var knyttet til lånekortet ditt og kan ha en egen kopi av\n"
            "opplysningene om deg i sitt biblioteksystem. Vil du at de skal slette den også,\n"
            "må du be hvert av dem om det:\n"
            "\n"
            f"{norwegian}\n"
            "\n"
            "Denne e-posten kan ikke besvares.\n"
            "\n"
            "-- English --\n"
            "\n"
            f"Dear {name},\n"
            "\n"
            "As you asked, your details have been deleted from the Norwegian national borrower\n"
            "register, the shared register behind the library card. The card can no longer\n"
            "be used.\n"
            "\n"
            "These libraries were affiliated with your card and may keep their own copy of\n"
            "your details in their library system. If you want them to delete it too, please\n"
            "ask each of them:\n"
            "\n"
            f"{english}\n"
            "\n"
            "Please do not reply to this email.\n"
        )


def _list(libraries: tuple[NoticeLibrary, ...], number_label: str) -> str:
    return "\n".join(
        f"  - {library.name} ({number_label} {library.number.value})"
        if library.name
        else f"  - {number_label} {library.number.value}"
        for library in libraries
    )


# However many attempts failed, the next one comes at least this often.
LONGEST_RETRY = dt.timedelta(hours=1)
# A claimed notice is left to its claimant this long: if that server dies while sending, another
# picks the notice up afterwards (so a notice may, rarely, arrive twice; it is never lost).
CLAIM_FOR = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """When to try a notice again, and when to give it up."""

    first_retry: dt.timedelta
    give_up_after: dt.timedelta
    longest_retry: dt.timedelta = LONGEST_RETRY
    claim_for: dt.timedelta = CLAIM_FOR

    def next_attempt(self, failures: int, now: dt.datetime) -> dt.datetime:
        """After ``failures`` failed attempts (at least 1): the first retry, doubled for each
        further failure, never longer than ``longest_retry``."""
        if failures < 1:
            raise ValueError("the first attempt is not a retry")
        # In seconds (a float), so that many failures cannot overflow a timedelta.
        delay = self.first_retry.total_seconds() * 2.0 ** min(failures - 1, 64)
        return now + dt.timedelta(seconds=min(delay, self.longest_retry.total_seconds()))

    def give_up_before(self, now: dt.datetime) -> dt.datetime:
        """Notices created before this time and still undelivered are given up."""
        return now - self.give_up_after
