"""PIN and password verifiers, security level, last active day, login attempts and key versions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("borrower_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_login_attempts_borrower_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("borrower_id", "method", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("national_id_key_version", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("pin_verifier", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("pin_key_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("password_verifier", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("security_level", sa.String(length=16), nullable=False, server_default="pin")
        )
        batch_op.add_column(sa.Column("last_active_on", sa.Date(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_borrowers_national_id_key_version"),
            ["national_id_key_version"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_borrowers_pin_key_version"), ["pin_key_version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_borrowers_pin_key_version"))
        batch_op.drop_index(batch_op.f("ix_borrowers_national_id_key_version"))
        batch_op.drop_column("last_active_on")
        batch_op.drop_column("security_level")
        batch_op.drop_column("password_verifier")
        batch_op.drop_column("pin_key_version")
        batch_op.drop_column("pin_verifier")
        batch_op.drop_column("national_id_key_version")

    op.drop_table("login_attempts")
