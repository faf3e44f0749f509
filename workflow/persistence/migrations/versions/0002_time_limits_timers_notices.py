"""time limits timers notices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:08:11.308809
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import workflow.persistence.tables as tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "calendar_overrides",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("loaded_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_overrides")),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("appeal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_notices_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"], name=op.f("fk_notices_recipient_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notices_dedupe_key")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notices_pending",
            ["next_attempt_at"],
            unique=False,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index("ix_notices_recipient", ["recipient_id", "id"], unique=False)

    op.create_table(
        "timers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("appeal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("clock", sa.String(length=8), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("due_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_timers_appeal_id_appeals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
    )
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_timers_due",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('pending', 'claimed')"),
            sqlite_where=sa.text("status IN ('pending', 'claimed')"),
        )
        batch_op.create_index(
            "ix_timers_live_appeal",
            ["appeal_id"],
            unique=False,
            postgresql_where=sa.text("status IN ('pending', 'claimed')"),
            sqlite_where=sa.text("status IN ('pending', 'claimed')"),
        )

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock", sa.String(length=8), server_default="stopped", nullable=False))
        batch_op.add_column(sa.Column("state_entered_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("state_due_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("state_at_risk_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("overall_used_s", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("overall_running_since", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("overall_due_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("overall_at_risk_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("due_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("at_risk_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("breached_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("provisional", sa.Boolean(), server_default=sa.text("(false)"), nullable=False))
        batch_op.add_column(sa.Column("first_response_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("first_response_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decided_at", tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("decision_s", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_appeals_open_sla",
            ["level", "unit_id", "clock", "due_at", "at_risk_at", "breached_at"],
            unique=False,
            postgresql_where=sa.text("is_open"),
            sqlite_where=sa.text("is_open = 1"),
        )


def downgrade() -> None:

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_appeals_open_sla", postgresql_where=sa.text("is_open"), sqlite_where=sa.text("is_open = 1")
        )
        batch_op.drop_column("decision_s")
        batch_op.drop_column("decided_at")
        batch_op.drop_column("first_response_s")
        batch_op.drop_column("first_response_at")
        batch_op.drop_column("provisional")
        batch_op.drop_column("breached_at")
        batch_op.drop_column("at_risk_at")
        batch_op.drop_column("due_at")
        batch_op.drop_column("overall_at_risk_at")
        batch_op.drop_column("overall_due_at")
        batch_op.drop_column("overall_running_since")
        batch_op.drop_column("overall_used_s")
        batch_op.drop_column("state_at_risk_at")
        batch_op.drop_column("state_due_at")
        batch_op.drop_column("state_entered_at")
        batch_op.drop_column("clock")

    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_timers_live_appeal",
            postgresql_where=sa.text("status IN ('pending', 'claimed')"),
            sqlite_where=sa.text("status IN ('pending', 'claimed')"),
        )
        batch_op.drop_index(
            "ix_timers_due",
            postgresql_where=sa.text("status IN ('pending', 'claimed')"),
            sqlite_where=sa.text("status IN ('pending', 'claimed')"),
        )

    op.drop_table("timers")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_recipient")
        batch_op.drop_index(
            "ix_notices_pending",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )

    op.drop_table("notices")
    op.drop_table("calendar_overrides")
