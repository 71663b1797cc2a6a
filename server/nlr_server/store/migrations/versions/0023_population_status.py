"""The borrower's status in the population register when last checked (bosatt, utflyttet, doed,
...): an emigration is recorded, not acted on.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("population_register_status", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_column("population_register_status")
