"""The limits every worker and server shares: token buckets of the vendors' call rates, and
the failed attempts (wrong library codes) counted in a window.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_buckets",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_limit_buckets"),
    )
    op.create_table(
        "limit_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_limit_failures"),
    )
    op.create_index("ix_limit_failures_failed_at", "limit_failures", ["failed_at"])
    op.create_index("ix_limit_failures_key_failed_at", "limit_failures", ["key", "failed_at"])


def downgrade() -> None:
    op.drop_table("limit_failures")
    op.drop_table("limit_buckets")
