"""The address protection the population register gave a borrower (fortrolig,
strengtFortrolig), apart from an operator's: lifted only by the population register, and at the
strictest level keeping every address out of the record.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_protection", sa.String(24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_column("address_protection")
