"""Who acts is an actor, not always a library: the record's creator and last changer, and the
audit trail's events, name an actor's kind and id (domain/actor.py).

Every existing creator, changer and audited caller was a library, so existing rows become
library actors. The creator and changer are no longer keys to the libraries table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrowers") as batch:
        batch.drop_constraint("fk_borrowers_created_by_libraries", type_="foreignkey")
        batch.drop_constraint("fk_borrowers_last_changed_by_libraries", type_="foreignkey")
        for column in ("created_by", "last_changed_by"):
            # A constant default: PostgreSQL adds the column without rewriting the table.
            batch.add_column(
                sa.Column(f"{column}_kind", sa.String(24), nullable=False, server_default="library")
            )
            batch.alter_column(
                column,
                type_=sa.String(64),
                existing_type=sa.String(7),
                existing_nullable=False,
            )
    with op.batch_alter_table("borrowers") as batch:
        for column in ("created_by_kind", "last_changed_by_kind"):
            batch.alter_column(column, server_default=None, existing_type=sa.String(24))
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("actor_kind", sa.String(24), nullable=True))
        batch.add_column(sa.Column("actor_id", sa.String(64), nullable=True))
    audit = sa.table(
        "audit_events",
        sa.column("library_number", sa.String()),
        sa.column("actor_kind", sa.String()),
        sa.column("actor_id", sa.String()),
    )
    op.execute(
        audit.update()
        .where(audit.c.library_number.is_not(None))
        .values(actor_kind="library", actor_id=audit.c.library_number)
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("actor_id")
        batch.drop_column("actor_kind")
    with op.batch_alter_table("borrowers") as batch:
        for column in ("created_by", "last_changed_by"):
            batch.drop_column(f"{column}_kind")
            batch.alter_column(
                column, type_=sa.String(7), existing_type=sa.String(64), existing_nullable=False
            )
        batch.create_foreign_key(
            "fk_borrowers_created_by_libraries", "libraries", ["created_by"], ["library_number"]
        )
        batch.create_foreign_key(
            "fk_borrowers_last_changed_by_libraries",
            "libraries",
            ["last_changed_by"],
            ["library_number"],
        )
