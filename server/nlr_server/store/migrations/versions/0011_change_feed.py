"""The change feed: entries per library and the sequence head; affiliations by library.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    head = op.create_table(
        "feed_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("compacted_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_head")),
    )
    op.bulk_insert(head, [{"id": 1, "last_sequence": 0, "compacted_through": 0}])
    op.create_table(
        "feed_entries",
        sa.Column("library_number", sa.String(7), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("borrower_id", sa.Integer(), nullable=True),
        sa.Column("card_number", sa.String(10), nullable=True),
        sa.Column("deletion_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("library_number", "sequence", name=op.f("pk_feed_entries")),
    )
    op.create_index(op.f("ix_feed_entries_sequence"), "feed_entries", ["sequence"])
    op.create_index(op.f("ix_feed_entries_occurred_at"), "feed_entries", ["occurred_at"])
    op.create_index(op.f("ix_feed_entries_borrower_id"), "feed_entries", ["borrower_id"])
    with op.batch_alter_table("affiliations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_affiliations_library_borrower", ["library_number", "borrower_id"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_affiliations_library_number"))


def downgrade() -> None:
    with op.batch_alter_table("affiliations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_affiliations_library_number"), ["library_number"], unique=False
        )
        batch_op.drop_index("ix_affiliations_library_borrower")
    op.drop_table("feed_entries")
    op.drop_table("feed_head")
