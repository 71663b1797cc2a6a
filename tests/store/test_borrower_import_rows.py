"""A borrower written by the import's bulk path (store/borrower_import.py: COPY on PostgreSQL,
executemany on SQLite) reads back as the record it was made from, every field of it, on each
store: the bulk rows are record_columns.new_row's, so no field of the record is left behind."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text
from sqlalchemy.engine import make_url

from nlr_server.crypto.keyring import Keyring
from nlr_server.crypto.national_id_sealer import NationalIdSealer
from nlr_server.domain.actor import Actor
from nlr_server.domain.address import Address, TemporaryAddress
from nlr_server.domain.borrower import RECORD_FIELDS, Borrower, PersonalData, Sex
from nlr_server.domain.card_number import CardNumber
from nlr_server.domain.contact import (
    ContactMethod,
    EmailAddress,
    LanguageCode,
    PhoneKind,
    PhoneNumber,
)
from nlr_server.domain.credentials import SecurityLevel
from nlr_server.domain.library_number import LibraryNumber
from nlr_server.domain.national_id import make_synthetic_national_id
from nlr_server.domain.person_name import PersonName
from nlr_server.store import borrower_import, migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.unit_of_work import SqlUnitOfWorkFactory

OSLO = LibraryNumber("2030100")
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
CARD = CardNumber("N000000001")

# Every field of the record set, none to its default.
PERSONAL = PersonalData(
    name=PersonName("Kari", "Nordmann"),
    birth_date=dt.date(1990, 5, 17),
    sex=Sex.FEMALE,
    registered_address=Address(("Storgata 1",), "0155", "Oslo", "NO"),
    email=EmailAddress("kari@example.org"),
    mobile_phone=PhoneNumber("+4791234567"),
    home_phone=PhoneNumber("+4722334455"),
    work_phone=PhoneNumber("+4722334456"),
    security_level=SecurityLevel.PASSWORD,
    temporary_address=TemporaryAddress(
        Address(("Studentbyen 4",), "7030", "Trondheim", "NO"), dt.date(2027, 6, 30)
    ),
    primary_phone=PhoneKind.WORK,
    email_should_be_checked=True,
    preferred_contact_method=ContactMethod.SMS,
    preferred_language=LanguageCode("nn"),
    card_expiry_date=dt.date(2030, 12, 31),
    consent_time=dt.datetime(2025, 3, 14, 9, 26, 53, tzinfo=dt.UTC),
    primary_contact_phone=PhoneNumber("+4722334457"),
    registered_address_should_be_checked=True,
    temporary_address_should_be_checked=True,
)


def test_every_field_of_the_record_is_set_here() -> None:
    defaults = PersonalData(name=PERSONAL.name, birth_date=PERSONAL.birth_date)
    unset = [
        name
        for name in RECORD_FIELDS
        if name not in ("name", "birth_date") and getattr(PERSONAL, name) == getattr(defaults, name)
    ]
    assert unset == []


def test_a_bulk_written_borrower_reads_back_with_every_field(
    database_url: str, keyring: Keyring
) -> None:
    engine = create_store_engine(database_url)
    sealer = NationalIdSealer(keyring)
    borrower = Borrower.register(CARD, PERSONAL, OSLO, Actor.library(OSLO), NOW)
    try:
        migrate.upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO libraries (library_number, name, active) VALUES (:n, :m, :a)"),
                {"n": OSLO.value, "m": "Oslo", "a": True},
            )
        rows = borrower_import.ImportRows(make_url(database_url).drivername)
        sealed = sealer.seal(make_synthetic_national_id(PERSONAL.birth_date, 1))

        new = rows.new_borrower(borrower, sealed)
        with engine.begin() as connection:
            first_id = borrower_import.next_borrower_id(connection)
            borrower_import.insert_borrowers(connection, first_id, [new])

        with SqlUnitOfWorkFactory(engine, sealer)() as uow:
            stored = uow.borrowers.get_by_card_number(CARD)
        assert stored is not None
        assert stored.personal == PERSONAL
        assert dataclasses.replace(stored, personal=PERSONAL) == borrower
    finally:
        engine.dispose()
