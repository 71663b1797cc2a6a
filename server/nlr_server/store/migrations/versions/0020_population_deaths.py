"""A death the population register notified: when the borrower is deleted as DECEASED, a grace
period after it (cancelled if the person is reactivated before then).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delete_as_deceased_after", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_borrowers_delete_as_deceased_after"),
            ["delete_as_deceased_after"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_borrowers_delete_as_deceased_after"))
        batch_op.drop_column("delete_as_deceased_after")
