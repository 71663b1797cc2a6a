"""The record's last legacy fields: a fourth phone, the primary contact's (prim_kontakt), and
whether the registered and the temporary address should be checked with the borrower (p_sjekk,
m_sjekk). Existing borrowers have no primary contact phone and neither address to check.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_FLAGS = ("registered_address_should_be_checked", "temporary_address_should_be_checked")


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("primary_contact_phone", sa.String(20), nullable=True))
        for name in _FLAGS:
            batch_op.add_column(
                sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        for name in reversed(_FLAGS):
            batch_op.drop_column(name)
        batch_op.drop_column("primary_contact_phone")
