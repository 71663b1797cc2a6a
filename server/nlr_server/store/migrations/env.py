"""Alembic environment: runs the register's migrations on the connection the caller passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from nlr_server.store.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through nlr_server.store.migrate, which passes a connection")
_run(connection)
