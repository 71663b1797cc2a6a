"""Initial schema: libraries, borrowers, affiliations and every card number ever issued.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "libraries",
        sa.Column("library_number", sa.String(length=7), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("library_number", name=op.f("pk_libraries")),
    )
    op.create_table(
        "borrowers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("card_number", sa.String(length=10), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("national_id_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("national_id_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=16), nullable=False),
        sa.Column("address_line1", sa.String(length=100), nullable=True),
        sa.Column("address_line2", sa.String(length=100), nullable=True),
        sa.Column("address_line3", sa.String(length=100), nullable=True),
        sa.Column("postal_code", sa.String(length=10), nullable=True),
        sa.Column("city", sa.String(length=60), nullable=True),
        sa.Column("country_code", sa.String(length=2), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("mobile_phone", sa.String(length=20), nullable=True),
        sa.Column("home_phone", sa.String(length=20), nullable=True),
        sa.Column("work_phone", sa.String(length=20), nullable=True),
        sa.Column("home_library", sa.String(length=7), nullable=False),
        sa.Column("created_by", sa.String(length=7), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_changed_by", sa.String(length=7), nullable=False),
        sa.Column("last_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["libraries.library_number"],
            name=op.f("fk_borrowers_created_by_libraries"),
        ),
        sa.ForeignKeyConstraint(
            ["home_library"],
            ["libraries.library_number"],
            name=op.f("fk_borrowers_home_library_libraries"),
        ),
        sa.ForeignKeyConstraint(
            ["last_changed_by"],
            ["libraries.library_number"],
            name=op.f("fk_borrowers_last_changed_by_libraries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrowers")),
        sa.UniqueConstraint("card_number", name=op.f("uq_borrowers_card_number")),
        sa.UniqueConstraint("national_id_index", name=op.f("uq_borrowers_national_id_index")),
    )
    op.create_table(
        "affiliations",
        sa.Column("borrower_id", sa.Integer(), nullable=False),
        sa.Column("library_number", sa.String(length=7), nullable=False),
        sa.Column("affiliated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_affiliations_borrower_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["library_number"],
            ["libraries.library_number"],
            name=op.f("fk_affiliations_library_number_libraries"),
        ),
        sa.PrimaryKeyConstraint("borrower_id", "library_number", name=op.f("pk_affiliations")),
    )
    with op.batch_alter_table("affiliations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_affiliations_library_number"), ["library_number"], unique=False
        )

    op.create_table(
        "card_numbers",
        sa.Column("card_number", sa.String(length=10), nullable=False),
        sa.Column("borrower_id", sa.Integer(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_card_numbers_borrower_id_borrowers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("card_number", name=op.f("pk_card_numbers")),
    )
    with op.batch_alter_table("card_numbers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_card_numbers_borrower_id"), ["borrower_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("card_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_numbers_borrower_id"))

    op.drop_table("card_numbers")
    with op.batch_alter_table("affiliations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_affiliations_library_number"))

    op.drop_table("affiliations")
    op.drop_table("borrowers")
    op.drop_table("libraries")
