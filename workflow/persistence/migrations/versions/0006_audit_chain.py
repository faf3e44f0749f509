"""audit chain: every event hashed into its appeal's chain, chain heads on appeals, seals, no TRUNCATE

Revision ID: 0006_audit_chain
Revises: 0005
Create Date: 2026-12-03 18:00:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import workflow.persistence.tables as tables
from workflow.domain.audit_chain import event_hash

revision = "0006_audit_chain"
down_revision = "0005"
branch_labels = None
depends_on = None

# The fields hashed when this migration ran; frozen here so that a later field added to
# workflow.domain.audit_chain.CHAINED_FIELDS (and its column) does not change what this step computes.
FIELDS_AT_0006 = (
    "appeal", "seq", "version", "kind", "actor_id", "at", "trigger", "from_state", "to_state", "comment", "payload",
)  # fmt: skip
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_events = sa.table(
    "appeal_events",
    sa.column("id", Id),
    sa.column("appeal_id", Id),
    sa.column("version", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("actor_id", Id),
    sa.column("at", tables.UTCDateTime(timezone=True)),
    sa.column("trigger", sa.String()),
    sa.column("from_state", sa.String()),
    sa.column("to_state", sa.String()),
    sa.column("comment", sa.Text()),
    sa.column("payload", tables.JSONDocument),
    sa.column("seq", sa.Integer()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)
_appeals = sa.table(
    "appeals", sa.column("id", Id), sa.column("number", sa.String()), sa.column("audit_seq", sa.Integer()),
    sa.column("audit_head", sa.String()),
)  # fmt: skip


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_seq", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("audit_head", sa.String(length=64), nullable=True))
    with op.batch_alter_table("appeal_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _backfill_chains(sqlite)
    # On SQLite this recreates the table, which drops its triggers: they are made again below.
    with op.batch_alter_table("appeal_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index("ix_appeal_events_chain", ["appeal_id", "seq"], unique=True)
    op.create_table(
        "audit_seals",
        sa.Column("id", Id, nullable=False),
        sa.Column("sealed_at", tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("appeal_count", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_seals")),
        sa.UniqueConstraint("digest", name=op.f("uq_audit_seals_digest")),
    )
    if sqlite:
        _sqlite_append_only("appeal_events")
        _sqlite_append_only("audit_seals")
    else:
        # Row triggers never see TRUNCATE: a statement trigger refuses it, as UPDATE and DELETE are refused.
        op.execute(
            "CREATE TRIGGER appeal_events_no_truncate BEFORE TRUNCATE ON appeal_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION appeal_events_append_only()"
        )
        op.execute(
            "CREATE FUNCTION audit_seals_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_seals is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_seals_append_only BEFORE UPDATE OR DELETE ON audit_seals "
            "FOR EACH ROW EXECUTE FUNCTION audit_seals_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_seals_append_only()"
        )


def _sqlite_append_only(table: str) -> None:
    for action in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action.lower()}")
        op.execute(
            f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def _backfill_chains(sqlite: bool) -> None:
    """Hash the events already written, per appeal in the order they were written, so that an upgraded
    database verifies clean; the append-only triggers stand aside for this one transaction."""
    bind = op.get_bind()
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS appeal_events_no_update")
    else:
        op.execute("ALTER TABLE appeal_events DISABLE TRIGGER appeal_events_append_only")
    query = (
        sa.select(_events, _appeals.c.number)
        .join(_appeals, _appeals.c.id == _events.c.appeal_id)
        .order_by(_events.c.appeal_id, _events.c.id)
    )
    links: list[dict[str, Any]] = []
    heads: dict[int, tuple[int, str]] = {}
    for row in bind.execute(query).mappings():
        seq, prev = heads.get(row["appeal_id"], (0, None))
        content = {**row, "appeal": row["number"], "seq": seq + 1}
        digest = event_hash(prev, content, FIELDS_AT_0006)
        heads[row["appeal_id"]] = (seq + 1, digest)
        links.append({"event_id": row["id"], "seq_value": seq + 1, "prev_value": prev, "hash_value": digest})
    if links:
        bind.execute(
            _events.update()
            .where(_events.c.id == sa.bindparam("event_id"))
            .values(
                seq=sa.bindparam("seq_value"), prev_hash=sa.bindparam("prev_value"), hash=sa.bindparam("hash_value")
            ),
            links,
        )
    if heads:
        bind.execute(
            _appeals.update()
            .where(_appeals.c.id == sa.bindparam("appeal_key"))
            .values(audit_seq=sa.bindparam("seq_value"), audit_head=sa.bindparam("head_value")),
            [{"appeal_key": a, "seq_value": s, "head_value": h} for a, (s, h) in heads.items()],
        )
    if not sqlite:
        op.execute("ALTER TABLE appeal_events ENABLE TRIGGER appeal_events_append_only")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_seals_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_seals_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_seals_no_truncate ON audit_seals")
        op.execute("DROP TRIGGER IF EXISTS audit_seals_append_only ON audit_seals")
        op.execute("DROP FUNCTION IF EXISTS audit_seals_append_only()")
        op.execute("DROP TRIGGER IF EXISTS appeal_events_no_truncate ON appeal_events")
    op.drop_table("audit_seals")
    op.drop_index("ix_appeal_events_chain", table_name="appeal_events")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of appeals would have to drop a table others refer to.
    for table, column in (("appeal_events", "hash"), ("appeal_events", "prev_hash"), ("appeal_events", "seq")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for column in ("audit_head", "audit_seq"):
        op.execute(f"ALTER TABLE appeals DROP COLUMN {column}")
