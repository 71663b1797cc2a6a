"""Where a reconcile with the population register stands (the last borrower id looked up), so
that an interrupted one goes on from there.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("population_sync", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reconciled_through", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("population_sync", schema=None) as batch_op:
        batch_op.drop_column("reconciled_through")
