"""catch up: audit events say when they were written beside when they took effect; breaches per level

Revision ID: 0007_catch_up
Revises: 0006_audit_chain
Create Date: 2026-12-03 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.persistence.tables as tables

revision = "0007_catch_up"
down_revision = "0006_audit_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appeal_events", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("recorded_at", tables.UTCDateTime(timezone=True), nullable=True))
    # Events written before this revision keep recorded_at NULL (they took effect when written): the trail
    # is append-only and hash-chained (0006), so they are not rewritten; readers take `at` for them.

    op.create_table(
        "breaches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("appeal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("clock", sa.String(length=8), nullable=False),
        sa.Column("due_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detected_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("late_s", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_breaches_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_breaches_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breaches")),
    )
    with op.batch_alter_table("breaches", schema=None) as batch_op:
        batch_op.create_index("ix_breaches_appeal", ["appeal_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("breaches", schema=None) as batch_op:
        batch_op.drop_index("ix_breaches_appeal")
    op.drop_table("breaches")
    with op.batch_alter_table("appeal_events", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("recorded_at")
