"""Harness of the use-case tests: actors at work, borrowers put in place through the use cases
themselves, and the rows the use cases wrote, read back from the real SQLite store."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

import register_harness
from nlr_server.crypto.pin_verifier import PinVerifier
from nlr_server.domain.actor import Actor
from nlr_server.domain.address import Address, TemporaryAddress
from nlr_server.domain.audit import Acting
from nlr_server.domain.borrower import Borrower, PersonalData, Sex
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import EmailAddress, PhoneNumber
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.lockout import LockoutPolicy
from nlr_server.domain.national_id import NationalId
from nlr_server.domain.person_name import PersonName
from nlr_server.store.models import (
    AuditEventRow,
    Base,
    BorrowerRow,
    CardNumberRow,
    FeedEntryRow,
    FeedHeadRow,
    VendorRow,
    table_of,
)
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory
from nlr_server.usecases import borrowers

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
OSLO = LibraryNumber(register_harness.OSLO)
BERGEN = LibraryNumber(register_harness.BERGEN)
TROMSO = LibraryNumber(register_harness.TROMSO)
# The test ILS vendor's certificate, as the API layer would hand it to a use case.
CERTIFICATE = "c0ffee" * 10 + "c0de"
STORGATA = Address(("Storgata 1",), "0155", "Oslo", "NO")
HYTTA = Address(("Fjellveien 9",), "3580", "Geilo", "NO")


def personal(**changes: Any) -> PersonalData:
    """Kari Nordmann, an adult with an email address, a mobile phone and an address."""
    kari = PersonalData(
        name=PersonName("Kari", "Nordmann"),
        birth_date=dt.date(1990, 5, 1),
        sex=Sex.FEMALE,
        registered_address=STORGATA,
        email=EmailAddress("kari@example.org"),
        mobile_phone=PhoneNumber("+4791234567"),
    )
    return dataclasses.replace(kari, **changes)


def new_national_id() -> NationalId:
    """A fresh synthetic national id, never used in this test session before."""
    return NationalId.parse(register_harness.national_id(), allow_synthetic=True, today=TODAY)


class Audited(NamedTuple):
    """An audit row's identifiers, as stored."""

    rpc: str
    outcome: str
    actor_kind: str | None
    actor_id: str | None
    library_number: str | None
    vendor_id: int | None
    certificate_fingerprint: str | None
    card_number: str | None
    borrower_id: int | None
    occurred_at: dt.datetime


class Fed(NamedTuple):
    """A change-feed row, as stored."""

    sequence: int
    library_number: str
    kind: str
    borrower_id: int | None
    card_number: str | None
    deletion_reason: str | None


@dataclasses.dataclass(frozen=True)
class Enrolled:
    """A borrower as the last use case that put them in place answered, and their national id."""

    borrower: Borrower
    national_id: NationalId

    @property
    def card_number(self) -> CardNumber:
        return self.borrower.card_number


class Store:
    """A migrated SQLite register with the test vendors and libraries, for one test."""

    def __init__(self, unit_of_work: SqlUnitOfWorkFactory, pins: PinVerifier) -> None:
        self.unit_of_work = unit_of_work
        self.pins = pins
        self.lockout = LockoutPolicy()
        self.vendor_id: int = self._scalar(
            select(VendorRow.id).where(VendorRow.name == register_harness.TEST_VENDOR)
        )

    def library(self, library: LibraryNumber, action: str) -> Acting:
        """The library at work through the test ILS vendor's certificate."""
        return Acting(
            Actor.library(library),
            action,
            vendor_id=self.vendor_id,
            certificate_fingerprint=CERTIFICATE,
        )

    def enrol(
        self,
        card_number: str,
        *libraries: LibraryNumber,
        **changes: Any,
    ) -> Enrolled:
        """A borrower created at NOW by the first library (Oslo if none is named) and
        affiliated with the others, each through its use case; ``changes`` to the personal
        data."""
        national_id = new_national_id()
        home, *others = libraries or (OSLO,)
        borrower = borrowers.create_borrower(
            self.unit_of_work,
            self.library(home, "CreateBorrower"),
            home,
            CardNumber(card_number),
            personal(**changes),
            national_id,
            NOW,
        )
        for library in others:
            borrower = borrowers.affiliate_borrower(
                self.unit_of_work,
                self.library(library, "AffiliateBorrower"),
                borrower.card_number,
                national_id,
                NOW,
                self.pins.matches,
                self.lockout,
            )
        return Enrolled(borrower, national_id)

    def borrower(self, card_number: CardNumber) -> Borrower | None:
        with self.unit_of_work(read_only=True) as uow:
            return uow.borrowers.get_by_card_number(card_number)

    def row(self, card_number: CardNumber) -> BorrowerRow:
        """The borrower's row as stored, every column loaded."""
        with Session(self.unit_of_work.engine) as session:
            return session.scalars(
                select(BorrowerRow).where(BorrowerRow.card_number == card_number.value)
            ).one()

    def card_retired_reason(self, card_number: CardNumber) -> str | None:
        """Why the card number was retired; None while it is in use."""
        reason: str | None = self._scalar(
            select(CardNumberRow.retired_reason).where(
                CardNumberRow.card_number == card_number.value
            )
        )
        return reason

    def audit_mark(self) -> int:
        """The last audit row's id: what a test's act adds comes after it."""
        return int(self._scalar(select(func.coalesce(func.max(AuditEventRow.id), 0))))

    def audited(self, after: int = 0) -> list[Audited]:
        """The audit rows after ``after`` (an audit_mark), oldest first."""
        columns = [getattr(AuditEventRow, name) for name in Audited._fields]
        query = select(*columns).where(AuditEventRow.id > after).order_by(AuditEventRow.id)
        with self.unit_of_work.engine.connect() as connection:
            return [Audited(*row) for row in connection.execute(query)]

    def feed_mark(self) -> int:
        """The last change-feed sequence number handed out."""
        return int(self._scalar(select(FeedHeadRow.last_sequence)))

    def fed(self, after: int = 0) -> list[Fed]:
        """The change-feed rows after sequence ``after``, by sequence and library."""
        columns = [getattr(FeedEntryRow, name) for name in Fed._fields]
        query = (
            select(*columns)
            .where(FeedEntryRow.sequence > after)
            .order_by(FeedEntryRow.sequence, FeedEntryRow.library_number)
        )
        with self.unit_of_work.engine.connect() as connection:
            return [Fed(*row) for row in connection.execute(query)]

    def count(self, row: type[Base]) -> int:
        return int(self._scalar(select(func.count()).select_from(table_of(row))))

    def contents(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table: equal before and after an act that changes nothing."""
        with self.unit_of_work.engine.connect() as connection:
            return {
                table.name: [tuple(row) for row in connection.execute(select(table))]
                for table in Base.metadata.sorted_tables
            }

    def refuse_inserts(self, table: str) -> None:
        """From now on the database refuses every new row of ``table``, as a failing disk or a
        constraint would: what a use case wrote before it in the transaction must roll back."""
        with self.unit_of_work.engine.begin() as connection:
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )

    def _scalar(self, query: Any) -> Any:
        with self.unit_of_work.engine.connect() as connection:
            return connection.execute(query).scalar_one()


def temporary_until(day: dt.date) -> TemporaryAddress:
    return TemporaryAddress(HYTTA, day)
