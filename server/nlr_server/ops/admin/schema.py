"""`nlr-admin migrate`: creates or upgrades the database schema through the Alembic migrations."""

from __future__ import annotations

import argparse

from nlr_server.ops.admin import Commands, add_command, environment
from nlr_server.store import migrate
from nlr_server.store.database import create_store_engine


def add_commands(commands: Commands) -> None:
    add_command(
        commands,
        "migrate",
        _migrate,
        "create or upgrade the database schema at NLR_DATABASE_URL",
        "Runs the Alembic migrations only; safe to run again.",
    )


def _migrate(args: argparse.Namespace) -> None:
    engine = create_store_engine(environment().database_url("NLR_DATABASE_URL"))
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    print(f"schema {before or 'empty'} -> {after}" if before != after else f"schema at {after}")
