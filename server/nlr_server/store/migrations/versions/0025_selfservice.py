"""SelfService: TOTP second factors with their recovery codes, and borrowers' sessions.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "totp_credentials",
        sa.Column("borrower_id", sa.Integer(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_totp_credentials_borrower_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("borrower_id", name=op.f("pk_totp_credentials")),
    )
    op.create_index(op.f("ix_totp_credentials_key_version"), "totp_credentials", ["key_version"])
    op.create_table(
        "recovery_codes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("borrower_id", sa.Integer(), nullable=False),
        sa.Column("verifier", sa.LargeBinary(length=48), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_recovery_codes_borrower_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_borrower_id"), "recovery_codes", ["borrower_id"])
    op.create_table(
        "selfservice_sessions",
        sa.Column("token_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("borrower_id", sa.Integer(), nullable=False),
        sa.Column("certificate_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("strength", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_selfservice_sessions_borrower_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_selfservice_sessions")),
    )
    op.create_index(
        op.f("ix_selfservice_sessions_borrower_id"), "selfservice_sessions", ["borrower_id"]
    )
    op.create_index(
        op.f("ix_selfservice_sessions_expires_at"), "selfservice_sessions", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_table("selfservice_sessions")
    op.drop_table("recovery_codes")
    op.drop_table("totp_credentials")
