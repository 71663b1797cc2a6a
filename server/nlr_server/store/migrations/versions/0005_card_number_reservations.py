"""Card number reservations, and the series they are taken from.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_number_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("next_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_number_series")),
    )
    op.bulk_insert(
        sa.table(
            "card_number_series",
            sa.column("id", sa.Integer),
            sa.column("next_number", sa.BigInteger),
        ),
        [{"id": 1, "next_number": 1}],
    )
    op.create_table(
        "card_number_reservations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("library_number", sa.String(length=7), nullable=False),
        sa.Column("first_number", sa.BigInteger(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["library_number"],
            ["libraries.library_number"],
            name=op.f("fk_card_number_reservations_library_number_libraries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_number_reservations")),
    )
    with op.batch_alter_table("card_number_reservations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_card_number_reservations_first_number"), ["first_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_card_number_reservations_library_number"),
            ["library_number"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("card_number_reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_number_reservations_library_number"))
        batch_op.drop_index(batch_op.f("ix_card_number_reservations_first_number"))

    op.drop_table("card_number_reservations")
    op.drop_table("card_number_series")
