"""page flashes: a refused page form is kept for the GET page the browser is sent to

The revision id was assigned for the enterprise's unified social credit code; that needed no schema
change (enterprises.credit_code, NOT NULL UNIQUE since 0001, is the code), so this revision holds the
one table the same piece of work needed.

Revision ID: 0010_enterprise_uscc
Revises: 0005
Create Date: 2026-12-03 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.persistence.tables as tables

revision = "0010_enterprise_uscc"
down_revision = "0008_sign_in_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "page_flashes",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("page", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_page_flashes_user_id_users")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_page_flashes")),
    )
    with op.batch_alter_table("page_flashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_page_flashes_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("page_flashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_page_flashes_created_at"))
    op.drop_table("page_flashes")
