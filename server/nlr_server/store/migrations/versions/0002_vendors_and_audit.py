"""Vendors, their certificates, library access (vendor and code verifier) and the audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=True),
        sa.Column("library_number", sa.String(length=7), nullable=True),
        sa.Column("rpc", sa.String(length=64), nullable=False),
        sa.Column("card_number", sa.String(length=10), nullable=True),
        sa.Column("borrower_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_events_card_number"), ["card_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_events_occurred_at"), ["occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_audit_events_vendor_time", ["vendor_id", "occurred_at"], unique=False
        )

    op.create_table(
        "vendors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vendors")),
        sa.UniqueConstraint("name", name=op.f("uq_vendors_name")),
    )
    op.create_table(
        "vendor_certificates",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("serial_number", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_vendor_certificates_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_vendor_certificates")),
    )
    with op.batch_alter_table("vendor_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vendor_certificates_vendor_id"), ["vendor_id"], unique=False
        )

    with op.batch_alter_table("libraries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("municipality_number", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("vendor_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("code_verifier", sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_libraries_vendor_id"), ["vendor_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_libraries_vendor_id_vendors"), "vendors", ["vendor_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("libraries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_libraries_vendor_id_vendors"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_libraries_vendor_id"))
        batch_op.drop_column("code_verifier")
        batch_op.drop_column("vendor_id")
        batch_op.drop_column("municipality_number")

    with op.batch_alter_table("vendor_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vendor_certificates_vendor_id"))

    op.drop_table("vendor_certificates")
    op.drop_table("vendors")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_vendor_time")
        batch_op.drop_index(batch_op.f("ix_audit_events_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_card_number"))

    op.drop_table("audit_events")
