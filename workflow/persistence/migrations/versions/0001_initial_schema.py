"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 06:50:58.114199
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import workflow.persistence.tables as tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "definition_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("declared_version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("registered_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_definition_versions")),
        sa.UniqueConstraint("name", "digest", name=op.f("uq_definition_versions_name_digest")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_definition_versions_name_version")),
    )
    op.create_table(
        "number_sequences",
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name=op.f("pk_number_sequences")),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["units.id"], name=op.f("fk_units_parent_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("code", name=op.f("uq_units_code")),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_units_path"), ["path"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_users_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_enterprise_id"), ["enterprise_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_users_role"), ["role"], unique=False)
        batch_op.create_index(batch_op.f("ix_users_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "enterprises",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("building_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("specialist_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("industry", sa.String(length=64), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=True),
        sa.Column("party_members", sa.Integer(), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["building_id"], ["units.id"], name=op.f("fk_enterprises_building_id_units")),
        sa.ForeignKeyConstraint(["specialist_id"], ["users.id"], name=op.f("fk_enterprises_specialist_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprises")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_enterprises_credit_code")),
    )
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enterprises_building_id"), ["building_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enterprises_specialist_id"), ["specialist_id"], unique=False)

    # users and enterprises point at each other: the second foreign key comes once both exist.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_foreign_key(
            op.f("fk_users_enterprise_id_enterprises"), "enterprises", ["enterprise_id"], ["id"]
        )

    op.create_table(
        "appeals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("definition_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("assignee_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("submitted_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column(
            "data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_appeals_assignee_id_users")),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["definition_versions.id"],
            name=op.f("fk_appeals_definition_id_definition_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprises.id"], name=op.f("fk_appeals_enterprise_id_enterprises")
        ),
        sa.ForeignKeyConstraint(["submitted_by_id"], ["users.id"], name=op.f("fk_appeals_submitted_by_id_users")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_appeals_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("number", name=op.f("uq_appeals_number")),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index("ix_appeals_enterprise", ["enterprise_id", "id"], unique=False)
        batch_op.create_index(
            "ix_appeals_open_assignee",
            ["assignee_id"],
            unique=False,
            postgresql_where=sa.text("is_open"),
            sqlite_where=sa.text("is_open = 1"),
        )
        batch_op.create_index(
            "ix_appeals_open_unit",
            ["unit_id", "state"],
            unique=False,
            postgresql_where=sa.text("is_open"),
            sqlite_where=sa.text("is_open = 1"),
        )
        batch_op.create_index("ix_appeals_type_state", ["type", "state"], unique=False)

    op.create_table(
        "appeal_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("appeal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=True),
        sa.Column("from_state", sa.String(length=64), nullable=True),
        sa.Column("to_state", sa.String(length=64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_appeal_events_actor_id_users")),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_appeal_events_appeal_id_appeals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal_events")),
    )
    with op.batch_alter_table("appeal_events", schema=None) as batch_op:
        batch_op.create_index("ix_appeal_events_appeal", ["appeal_id", "id"], unique=False)
    _forbid_changes_to_audit_events()


def downgrade() -> None:
    _allow_changes_to_audit_events()
    with op.batch_alter_table("appeal_events", schema=None) as batch_op:
        batch_op.drop_index("ix_appeal_events_appeal")

    op.drop_table("appeal_events")
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_appeals_type_state")
        batch_op.drop_index(
            "ix_appeals_open_unit", postgresql_where=sa.text("is_open"), sqlite_where=sa.text("is_open = 1")
        )
        batch_op.drop_index(
            "ix_appeals_open_assignee", postgresql_where=sa.text("is_open"), sqlite_where=sa.text("is_open = 1")
        )
        batch_op.drop_index("ix_appeals_enterprise")

    op.drop_table("appeals")
    with op.batch_alter_table("users", schema=None) as batch_op:  # users <-> enterprises point at each other
        batch_op.drop_constraint(op.f("fk_users_enterprise_id_enterprises"), type_="foreignkey")
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enterprises_specialist_id"))
        batch_op.drop_index(batch_op.f("ix_enterprises_building_id"))

    op.drop_table("enterprises")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_unit_id"))
        batch_op.drop_index(batch_op.f("ix_users_role"))
        batch_op.drop_index(batch_op.f("ix_users_enterprise_id"))

    op.drop_table("users")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_units_path"))

    op.drop_table("units")
    op.drop_table("number_sequences")
    op.drop_table("definition_versions")


def _forbid_changes_to_audit_events() -> None:
    """The audit trail is append-only: the database itself refuses UPDATE and DELETE."""
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER appeal_events_no_{action.lower()} BEFORE {action} ON appeal_events "
                f"BEGIN SELECT RAISE(ABORT, 'appeal_events is append-only'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION appeal_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'appeal_events is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER appeal_events_append_only BEFORE UPDATE OR DELETE ON appeal_events "
        "FOR EACH ROW EXECUTE FUNCTION appeal_events_append_only()"
    )


def _allow_changes_to_audit_events() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS appeal_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS appeal_events_no_delete")
        return
    op.execute("DROP TRIGGER IF EXISTS appeal_events_append_only ON appeal_events")
    op.execute("DROP FUNCTION IF EXISTS appeal_events_append_only()")
