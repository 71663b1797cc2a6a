"""The population register: whether each borrower was found in it (then it owns their name, sex
and registered address), and the sync's place in its event feed, with the lease one worker
across all servers holds while it reads.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "in_population_register", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "population_sync",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("next_sequence", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(200), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events_read", sa.BigInteger(), nullable=False),
        sa.Column("events_applied", sa.BigInteger(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("population_sync")
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_column("in_population_register")
