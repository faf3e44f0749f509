"""sign-in hardening: throttling counts keep their last failure; every sign-in to an account is recorded

Revision ID: 0008_sign_in_hardening
Revises: 0005
Create Date: 2026-12-03 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.persistence.tables as tables

revision = "0008_sign_in_hardening"
down_revision = "0007_catch_up"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # The counts are short-lived and their meaning changes (a growing delay, not a fixed window): start afresh.
    op.drop_table("login_attempts")
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_attempts_last_failed_at"), ["last_failed_at"], unique=False)
    op.create_table(
        "sign_in_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sign_in_events_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_events")),
    )
    with op.batch_alter_table("sign_in_events", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_events_user_at", ["user_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_events", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_events_user_at")
    op.drop_table("sign_in_events")
    op.drop_table("login_attempts")
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", tables.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_attempts")),
    )
