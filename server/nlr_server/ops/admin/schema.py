"""`nlr-admin migrate`: creates or upgrades the database schema through the Alembic migrations."""

from __future__ import annotations

import argparse

from nlr_server.ops.admin import Commands, add_command, database_name, database_url
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine


def add_commands(commands: Commands) -> None:
    add_command(
        commands,
        "migrate",
        _migrate,
        "create or upgrade the database schema at NLR_DATABASE_URL",
        "Runs the Alembic migrations only; safe to run again. With a SQLite URL it creates the "
        "file if there is none (only this command and dev-setup do).",
    )


def _migrate(args: argparse.Namespace) -> None:
    url = database_url()
    engine = create_store_engine(url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    # Named, so that a migration of the wrong database (NLR_DATABASE_URL unset) shows at once.
    change = f"schema {before or 'empty'} -> {after}" if before != after else f"schema at {after}"
    print(f"database {database_name(url)}: {change}")
