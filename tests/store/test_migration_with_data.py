"""Upgrading a database that already holds borrowers keeps every row, on both stores."""

from __future__ import annotations

from sqlalchemy import text

from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine


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
