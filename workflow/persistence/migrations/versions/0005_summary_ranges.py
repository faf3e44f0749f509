"""summary ranges: the SLA summary counts groups on a narrow index and reads only at-risk and breached ranges

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN = {"postgresql_where": sa.text("is_open"), "sqlite_where": sa.text("is_open = 1")}
OPEN_BREACHED = {
    "postgresql_where": sa.text("is_open AND breached_at IS NOT NULL"),
    "sqlite_where": sa.text("is_open = 1 AND breached_at IS NOT NULL"),
}


def upgrade() -> None:
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_appeals_open_sla", **OPEN)
        batch_op.create_index("ix_appeals_open_groups", ["level", "unit_id", "clock"], unique=False, **OPEN)
        # at_risk_at now follows the group columns: "past the at-risk instant" is a range within a group.
        batch_op.create_index(
            "ix_appeals_open_sla",
            ["level", "unit_id", "clock", "at_risk_at", "due_at", "breached_at"],
            unique=False,
            **OPEN,
        )
        batch_op.create_index(
            "ix_appeals_open_breached",
            ["level", "unit_id", "clock", "breached_at", "at_risk_at"],
            unique=False,
            **OPEN_BREACHED,
        )


def downgrade() -> None:
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_appeals_open_breached", **OPEN_BREACHED)
        batch_op.drop_index("ix_appeals_open_sla", **OPEN)
        batch_op.drop_index("ix_appeals_open_groups", **OPEN)
        batch_op.create_index(
            "ix_appeals_open_sla",
            ["level", "unit_id", "clock", "due_at", "at_risk_at", "breached_at"],
            unique=False,
            **OPEN,
        )
