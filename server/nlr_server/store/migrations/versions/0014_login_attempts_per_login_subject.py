"""Login attempts per login subject (a borrower, or a login key no borrower holds), with the
time of the last failure and the password checks under way.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _old_table() -> sa.TableClause:
    return sa.table(
        "login_attempts",
        sa.column("borrower_id", sa.Integer()),
        sa.column("method", sa.String()),
        sa.column("consecutive_failures", sa.Integer()),
        sa.column("lockouts", sa.Integer()),
        sa.column("locked_until", sa.DateTime(timezone=True)),
    )


def _create_new_table() -> sa.Table:
    return op.create_table(
        "login_attempts",
        sa.Column("login_key", sa.LargeBinary(length=40), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("borrower_id", sa.Integer(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checks_in_flight", sa.Integer(), nullable=False),
        sa.Column("in_flight_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["borrower_id"],
            ["borrowers.id"],
            name=op.f("fk_login_attempts_borrower_id_borrowers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("login_key", "method", name=op.f("pk_login_attempts")),
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives the stored UTC time back without its zone.
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def upgrade() -> None:
    bind = op.get_bind()
    kept = bind.execute(sa.select(_old_table())).all()
    op.drop_table("login_attempts")
    table = _create_new_table()
    op.create_index(
        op.f("ix_login_attempts_borrower_id"), "login_attempts", ["borrower_id"], unique=False
    )
    op.create_index(
        op.f("ix_login_attempts_last_event_at"), "login_attempts", ["last_event_at"], unique=False
    )
    # The old rows had no time of their last failure: counted from now, so nothing kept is
    # forgotten sooner than it would have been.
    now = dt.datetime.now(dt.UTC)
    rows = []
    for row in kept:
        locked_until = _utc(row.locked_until)
        rows.append(
            {
                "login_key": b"borrower/%d" % row.borrower_id,
                "method": row.method,
                "borrower_id": row.borrower_id,
                "consecutive_failures": row.consecutive_failures,
                "lockouts": row.lockouts,
                "locked_until": locked_until,
                "last_failure_at": now,
                "checks_in_flight": 0,
                "in_flight_until": None,
                "last_event_at": max(now, locked_until or now),
            }
        )
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    bind = op.get_bind()
    kept = bind.execute(
        sa.text(
            "SELECT borrower_id, method, consecutive_failures, lockouts, locked_until"
            " FROM login_attempts WHERE borrower_id IS NOT NULL"
        )
    ).all()
    op.drop_index(op.f("ix_login_attempts_last_event_at"), table_name="login_attempts")
    op.drop_index(op.f("ix_login_attempts_borrower_id"), table_name="login_attempts")
    op.drop_table("login_attempts")
    table = op.create_table(
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
    if kept:
        op.bulk_insert(table, [dict(row._mapping) for row in kept])
