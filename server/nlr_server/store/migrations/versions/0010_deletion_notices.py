"""The outbox of deletion notices to borrowers, delivered by SMTP.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deletion_notices",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=True),
        sa.Column("given_name", sa.String(length=100), nullable=True),
        sa.Column("family_name", sa.String(length=100), nullable=True),
        sa.Column("libraries", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deletion_notices")),
    )
    with op.batch_alter_table("deletion_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deletion_notices_next_attempt_at"), ["next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deletion_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deletion_notices_next_attempt_at"))

    op.drop_table("deletion_notices")
