"""The Alembic migrations build exactly the schema the models describe, on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine
from nlr_server.store.models import Base


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    created = create_store_engine(database_url)
    yield created
    created.dispose()


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences: list[object] = compare_metadata(context, Base.metadata)
        return differences


def test_empty_database_has_no_tables_and_differs_from_the_models(engine: Engine) -> None:
    assert inspect(engine).get_table_names() == []
    assert schema_differences(engine) != []


def test_upgrading_an_empty_database_gives_exactly_the_models_schema(engine: Engine) -> None:
    migrate.upgrade(engine)

    assert schema_differences(engine) == []


def test_database_is_at_head_only_after_upgrading(engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    assert not migrate.is_at_head(engine)

    migrate.upgrade(engine)

    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.is_at_head(engine)


def test_upgrading_twice_changes_nothing(engine: Engine) -> None:
    migrate.upgrade(engine)
    tables = sorted(inspect(engine).get_table_names())

    migrate.upgrade(engine)

    assert sorted(inspect(engine).get_table_names()) == tables
    assert migrate.is_at_head(engine)
    assert schema_differences(engine) == []
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    assert [row.version_num for row in versions] == [migrate.head_revision()]


SAFETY_PRAGMAS = ("journal_mode", "foreign_keys", "secure_delete")


def sqlite_pragmas(engine: Engine) -> dict[str, object]:
    with engine.connect() as connection:
        return {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
            for name in SAFETY_PRAGMAS
        }


def test_sqlite_store_connections_use_wal_foreign_keys_and_secure_delete(tmp_path: Path) -> None:
    plain = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    store = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        # SQLite's own defaults differ, so the store engine is what turns the pragmas on (some
        # builds, Debian's among them, have secure_delete on by default; ours must not rely on it).
        defaults = sqlite_pragmas(plain)
        assert (defaults["journal_mode"], defaults["foreign_keys"]) == ("delete", 0)
        assert sqlite_pragmas(store) == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "secure_delete": 1,
        }
    finally:
        plain.dispose()
        store.dispose()
