"""Upgrading a database that already holds borrowers keeps every row, on both stores."""

from __future__ import annotations

from sqlalchemy import select, text

from nlr_server.domain.contact import PhoneNumber
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.record_columns import RECORD_COLUMNS, borrower_of


def test_upgrading_from_the_first_schema_keeps_libraries_borrowers_and_affiliations(
    database_url: str,
) -> None:
    engine = create_store_engine(database_url)
    try:
        migrate.upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO libraries (library_number, name, active) VALUES (:n, :m, :a)"),
                {"n": "2030100", "m": "Oslo", "a": True},
            )
            connection.execute(
                text(
                    "INSERT INTO borrowers (card_number, given_name, family_name,"
                    " national_id_ciphertext, national_id_index, birth_date, sex, home_library,"
                    " created_by, created_at, last_changed_by, last_changed_at, version)"
                    " VALUES ('N000000001', 'Kari', 'Nordmann', :c, :i, '1990-05-17', 'female',"
                    " '2030100', '2030100', '2026-01-01 00:00:00+00', '2030100',"
                    " '2026-01-01 00:00:00+00', 1)"
                ),
                {"c": b"\x01ciphertext", "i": b"\x00" * 32},
            )
            borrower_id = connection.execute(text("SELECT id FROM borrowers")).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO affiliations (borrower_id, library_number, affiliated_at)"
                    " VALUES (:b, '2030100', '2026-01-01 00:00:00+00')"
                ),
                {"b": borrower_id},
            )

        migrate.upgrade(engine)

        assert migrate.is_at_head(engine)
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT card_number, national_id_key_version, security_level, vendor_id"
                    " FROM borrowers JOIN libraries ON library_number = home_library"
                )
            ).one()
            affiliations = connection.execute(text("SELECT count(*) FROM affiliations")).scalar()
            if engine.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert tuple(row) == ("N000000001", 1, "pin", None)
        assert affiliations == 1
    finally:
        engine.dispose()


def test_upgrading_to_actors_makes_every_creator_changer_and_audited_caller_a_library(
    database_url: str,
) -> None:
    engine = create_store_engine(database_url)
    try:
        migrate.upgrade(engine, "0014")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO libraries (library_number, name, active) VALUES (:n, :m, :a)"),
                {"n": "2030100", "m": "Oslo", "a": True},
            )
            connection.execute(
                text(
                    "INSERT INTO borrowers (card_number, given_name, family_name,"
                    " national_id_ciphertext, national_id_index, national_id_key_version,"
                    " security_level, birth_date, sex, address_protected,"
                    " email_should_be_checked, home_library, created_by, created_at,"
                    " last_changed_by, last_changed_at, version)"
                    " VALUES ('N000000001', 'Kari', 'Nordmann', :c, :i, 1, 'pin', '1990-05-17',"
                    " 'female', :f, :f, '2030100', '2030100', '2026-01-01 00:00:00+00',"
                    " '2030100', '2026-01-01 00:00:00+00', 1)"
                ),
                {"c": b"\x01ciphertext", "i": b"\x00" * 32, "f": False},
            )
            connection.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, rpc, outcome, library_number,"
                    " card_number) VALUES ('2026-01-01 00:00:00+00', 'GetBorrower', 'OK',"
                    " '2030100', 'N000000001'), ('2026-01-01 00:00:01+00', 'GetBorrower',"
                    " 'UNAUTHENTICATED', NULL, NULL)"
                )
            )

        migrate.upgrade(engine)

        with engine.connect() as connection:
            borrower = connection.execute(
                text(
                    "SELECT created_by_kind, created_by, last_changed_by_kind, last_changed_by"
                    " FROM borrowers"
                )
            ).one()
            audited = connection.execute(
                text("SELECT actor_kind, actor_id FROM audit_events ORDER BY id")
            ).all()
        assert tuple(borrower) == ("library", "2030100", "library", "2030100")
        assert [tuple(row) for row in audited] == [("library", "2030100"), (None, None)]
    finally:
        engine.dispose()


def test_upgrading_to_the_contact_phone_and_address_checks_gives_existing_borrowers_neither(
    database_url: str,
) -> None:
    engine = create_store_engine(database_url)
    try:
        migrate.upgrade(engine, "0016")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO libraries (library_number, name, active) VALUES (:n, :m, :a)"),
                {"n": "2030100", "m": "Oslo", "a": True},
            )
            connection.execute(
                text(
                    "INSERT INTO borrowers (card_number, given_name, family_name,"
                    " national_id_ciphertext, national_id_index, national_id_key_version,"
                    " security_level, birth_date, sex, address_protected,"
                    " email_should_be_checked, work_phone, home_library, created_by_kind,"
                    " created_by, created_at, last_changed_by_kind, last_changed_by,"
                    " last_changed_at, version)"
                    " VALUES ('N000000001', 'Kari', 'Nordmann', :c, :i, 1, 'pin', '1990-05-17',"
                    " 'female', :f, :t, '+4722334456', '2030100', 'library', '2030100',"
                    " '2026-01-01 00:00:00+00', 'library', '2030100', '2026-01-01 00:00:00+00',"
                    " 1)"
                ),
                {"c": b"\x01ciphertext", "i": b"\x00" * 32, "f": False, "t": True},
            )

        migrate.upgrade(engine)

        assert migrate.is_at_head(engine)
        with engine.connect() as connection:
            row = connection.execute(select(*RECORD_COLUMNS)).one()
        personal = borrower_of(row, []).personal
        assert (
            personal.primary_contact_phone,
            personal.registered_address_should_be_checked,
            personal.temporary_address_should_be_checked,
        ) == (None, False, False)
        # What the row held before stays as it was.
        assert (personal.work_phone, personal.email_should_be_checked) == (
            PhoneNumber("+4722334456"),
            True,
        )
        assert row.card_number == "N000000001"
    finally:
        engine.dispose()
