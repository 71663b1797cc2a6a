"""Guardian links between borrowers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guardian_links",
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("guardian_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.String(length=7), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["borrowers.id"],
            name=op.f("fk_guardian_links_child_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["borrowers.id"],
            name=op.f("fk_guardian_links_guardian_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["linked_by"],
            ["libraries.library_number"],
            name=op.f("fk_guardian_links_linked_by_libraries"),
        ),
        sa.PrimaryKeyConstraint("child_id", "guardian_id", name=op.f("pk_guardian_links")),
    )
    with op.batch_alter_table("guardian_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_guardian_links_guardian_id"), ["guardian_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("guardian_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardian_links_guardian_id"))

    op.drop_table("guardian_links")
