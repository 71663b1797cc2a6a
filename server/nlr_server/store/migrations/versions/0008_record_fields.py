"""The rest of the record: temporary address, contact preferences, card expiry, consent time and
the last check against the population register.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("temporary_address_line1", sa.String(100)),
    ("temporary_address_line2", sa.String(100)),
    ("temporary_address_line3", sa.String(100)),
    ("temporary_postal_code", sa.String(10)),
    ("temporary_city", sa.String(60)),
    ("temporary_country_code", sa.String(2)),
    ("temporary_address_valid_until", sa.Date()),
    ("primary_phone", sa.String(8)),
    ("preferred_contact_method", sa.String(8)),
    ("preferred_language", sa.String(3)),
    ("card_expiry_date", sa.Date()),
    ("consent_time", sa.DateTime(timezone=True)),
    ("population_register_checked_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        for name, type_ in _COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.add_column(
            sa.Column(
                "email_should_be_checked", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.create_index(
            "ix_borrowers_temporary_address_valid_until", ["temporary_address_valid_until"]
        )


def downgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_index("ix_borrowers_temporary_address_valid_until")
        batch_op.drop_column("email_should_be_checked")
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
