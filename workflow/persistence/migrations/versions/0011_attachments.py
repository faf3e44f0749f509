"""attachments: files on appeals (metadata; the bytes live in the content-addressed blob store)

Revision ID: 0011_attachments
Revises: 0006_audit_chain
Create Date: 2026-12-03 19:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.persistence.tables as tables

revision = "0011_attachments"
down_revision = "0010_enterprise_uscc"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", Id, nullable=False),
        sa.Column("appeal_id", Id, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=True),
        sa.Column("uploaded_by_id", Id, nullable=False),
        sa.Column("uploaded_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_by_id", Id, nullable=True),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_attachments_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"], name=op.f("fk_attachments_uploaded_by_id_users")),
        sa.ForeignKeyConstraint(["removed_by_id"], ["users.id"], name=op.f("fk_attachments_removed_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index("ix_attachments_appeal", "attachments", ["appeal_id", "id"], unique=False)
    op.create_index(op.f("ix_attachments_sha256"), "attachments", ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_attachments_sha256"), table_name="attachments")
    op.drop_index("ix_attachments_appeal", table_name="attachments")
    op.drop_table("attachments")
