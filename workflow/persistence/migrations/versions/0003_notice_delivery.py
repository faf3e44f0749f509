"""notice delivery

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:23:44.282557
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.persistence.tables as tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_runs",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_digest_runs")),
    )
    op.create_table(
        "notice_preferences",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notice_preferences_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_notice_preferences")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_until", tables.UTCDateTime(timezone=True), nullable=True))
    # Claimed notices whose lease ran out are taken again: the index covers them too.
    _pending_index("status IN ('pending', 'sending')")


def downgrade() -> None:
    _pending_index("status = 'pending'")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")

    op.drop_table("notice_preferences")
    op.drop_table("digest_runs")


def _pending_index(predicate: str) -> None:
    op.drop_index("ix_notices_pending", table_name="notices")
    op.create_index(
        "ix_notices_pending",
        "notices",
        ["next_attempt_at"],
        postgresql_where=sa.text(predicate),
        sqlite_where=sa.text(predicate),
    )
