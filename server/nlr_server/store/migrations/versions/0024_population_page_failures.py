"""How often the population register sync has failed on the page at its place in the feed:
after a few tries it applies that page one event at a time and sets aside the events that fail.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("population_sync", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_sequence", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("page_failures", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("population_sync", schema=None) as batch_op:
        batch_op.drop_column("page_failures")
        batch_op.drop_column("failed_sequence")
