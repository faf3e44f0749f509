"""The schema as typed SQLAlchemy 2 mappings; Alembic migrations create it, never `create_all`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stored in UTC on every backend; always handed back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store naive datetime {value.isoformat()!r}; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


def table_of(model: type[Base]) -> Table:
    """The Core table behind a mapped class, typed as such (for Core statements)."""
    return cast(Table, model.__table__)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSONDocument}


class Unit(Base):
    """A node of the chain: district, sub-district, community, building, or a district department."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    # Materialised path of ids ("/1/4/9/"): a subtree is one indexed prefix match.
    path: Mapped[str] = mapped_column(String(255), index=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id", use_alter=True), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Enterprise(Base):
    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    building_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    specialist_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    industry: Mapped[str] = mapped_column(String(64), default="")
    floor: Mapped[int | None] = mapped_column(Integer)
    party_members: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class DefinitionVersion(Base):
    """A stored, immutable version of an appeal type; appeals point here, never at a file."""

    __tablename__ = "definition_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        UniqueConstraint("name", "digest"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    declared_version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime]


class NumberSequence(Base):
    __tablename__ = "number_sequences"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Appeal(Base):
    __tablename__ = "appeals"
    __table_args__ = (
        # Supervisors ask about open appeals only; partial indexes keep those queries small at 1M rows.
        # SQLite uses a partial index only when the query repeats its predicate: queries say `is_open = 1`.
        Index(
            "ix_appeals_open_unit",
            "unit_id",
            "state",
            postgresql_where=text("is_open"),
            sqlite_where=text("is_open = 1"),
        ),
        # The supervisors' summary (services/sla_report.py): open appeals per level, unit and clock from
        # the narrow index, then within each group only the appeals past their at-risk instant and those
        # ever breached, as index ranges.
        Index(
            "ix_appeals_open_groups",
            "level",
            "unit_id",
            "clock",
            postgresql_where=text("is_open"),
            sqlite_where=text("is_open = 1"),
        ),
        Index(
            "ix_appeals_open_sla",
            "level",
            "unit_id",
            "clock",
            "at_risk_at",
            "due_at",
            "breached_at",
            postgresql_where=text("is_open"),
            sqlite_where=text("is_open = 1"),
        ),
        Index(
            "ix_appeals_open_breached",
            "level",
            "unit_id",
            "clock",
            "breached_at",
            "at_risk_at",
            postgresql_where=text("is_open AND breached_at IS NOT NULL"),
            sqlite_where=text("is_open = 1 AND breached_at IS NOT NULL"),
        ),
        Index(
            "ix_appeals_open_assignee",
            "assignee_id",
            postgresql_where=text("is_open"),
            sqlite_where=text("is_open = 1"),
        ),
        Index("ix_appeals_enterprise", "enterprise_id", "id"),
        Index("ix_appeals_type_state", "type", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    definition_id: Mapped[int] = mapped_column(ForeignKey("definition_versions.id"))
    state: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(String(16), default="online")
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)
    is_open: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # Time limits (workflow.domain.sla): two clocks, their due and at-risk instants, and the history
    # that rates are computed from. due_at and at_risk_at are the nearer of the two clocks' values.
    clock: Mapped[str] = mapped_column(String(8), default="stopped", server_default="stopped")
    state_entered_at: Mapped[datetime | None]
    state_due_at: Mapped[datetime | None]
    state_at_risk_at: Mapped[datetime | None]
    overall_used_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    overall_running_since: Mapped[datetime | None]
    overall_due_at: Mapped[datetime | None]
    overall_at_risk_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    at_risk_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    first_response_at: Mapped[datetime | None]
    first_response_s: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None]
    decision_s: Mapped[int | None] = mapped_column(Integer)
    # The head of the appeal's audit chain (workflow.domain.audit_chain), moved by the same compare-and-set
    # that writes each event: writing an event needs no read of the trail.
    audit_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    audit_head: Mapped[str | None] = mapped_column(String(64))


class Timer(Base):
    """A durable deadline or reminder; the sweeper claims due ones, APScheduler only wakes it."""

    __tablename__ = "timers"
    __table_args__ = (
        Index(
            "ix_timers_due",
            "due_at",
            postgresql_where=text("status IN ('pending', 'claimed')"),
            sqlite_where=text("status IN ('pending', 'claimed')"),
        ),
        Index(
            "ix_timers_live_appeal",
            "appeal_id",
            postgresql_where=text("status IN ('pending', 'claimed')"),
            sqlite_where=text("status IN ('pending', 'claimed')"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    clock: Mapped[str] = mapped_column(String(8))
    threshold: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10), default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]


class Notice(Base):
    """The outbox: one row per notice to one person, written with the change that causes it."""

    __tablename__ = "notices"
    __table_args__ = (
        Index(
            "ix_notices_pending",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
        Index("ix_notices_recipient", "recipient_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"))
    kind: Mapped[str] = mapped_column(String(32))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # One notice per cause and person, whoever writes it and however often: a unique key, not luck.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    # Email delivery: pending -> sending (claimed with a lease) -> sent | failed | skipped.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class NoticePreference(Base):
    """Per person and notice kind: email (default), off, or digest only."""

    __tablename__ = "notice_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))


class DigestRun(Base):
    """One row per day on which the daily digests were written: the key that makes it once a day."""

    __tablename__ = "digest_runs"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    created_at: Mapped[datetime]
    node: Mapped[str] = mapped_column(String(64))


class CalendarOverride(Base):
    """A year's official holiday notice loaded at run time; shared by every node."""

    __tablename__ = "calendar_overrides"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(String(255))
    loaded_at: Mapped[datetime]


class AuthToken(Base):
    """A bearer token or a browser session; only its SHA-256 is stored."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # api | session
    csrf: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class PageFlash(Base):
    """A page form the engine refused, kept for the page the browser is redirected to (so that a refresh
    does not post again); only its user may read it, and only for a while."""

    __tablename__ = "page_flashes"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, in the redirect's URL
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    page: Mapped[str] = mapped_column(String(300))  # the path it belongs to, e.g. /appeals/OE-2026-000001
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(index=True)


class LoginAttempt(Base):
    """Failed sign-ins per (account, address) and per address, kept in the database so every node counts them."""

    __tablename__ = "login_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(index=True)  # quiet long enough, the count is forgotten
    locked_until: Mapped[datetime | None]


class SignInEvent(Base):
    """Each sign-in to an existing account, good or failed, with its address: what the account's owner is shown."""

    __tablename__ = "sign_in_events"
    __table_args__ = (Index("ix_sign_in_events_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime]
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)


class AppealEvent(Base):
    """Append-only audit trail; database triggers refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL).

    Each event is a link of its appeal's hash chain: `seq` numbers the appeal's events from 1, `hash`
    covers the event and `prev_hash` (workflow.domain.audit_chain)."""

    __tablename__ = "appeal_events"
    __table_args__ = (
        Index("ix_appeal_events_appeal", "appeal_id", "id"),
        # One event per place in a chain: two writers racing on one appeal cannot fork it.
        Index("ix_appeal_events_chain", "appeal_id", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    version: Mapped[int] = mapped_column(Integer)  # the appeal's version after this event
    kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime]
    trigger: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]]
    seq: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    # `at` is when the fact took effect (a breach: its due instant), this is when the row was written:
    # they differ when a sweep catches up after downtime. Always written; NULL never since 0007.
    recorded_at: Mapped[datetime | None]


class AuditSeal(Base):
    """A record of every chain's head at one moment (`appeals audit seal`); append-only like the trail."""

    __tablename__ = "audit_seals"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    sealed_at: Mapped[datetime]
    appeal_count: Mapped[int] = mapped_column(Integer)
    event_count: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64), unique=True)


class Attachment(Base):
    """A file on an appeal: its metadata here, its bytes in the blob store under `sha256`.

    Removing one sets `removed_at`; the row and the blob stay, so the audit can still show what was there."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_appeal", "appeal_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    name: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    item: Mapped[str | None] = mapped_column(String(64))  # the materials checklist item it satisfies
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Breach(Base):
    """A time limit that ran out, as a fact about the level that held the appeal when it did."""

    __tablename__ = "breaches"
    __table_args__ = (Index("ix_breaches_appeal", "appeal_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    level: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    clock: Mapped[str] = mapped_column(String(8))  # state | overall
    due_at: Mapped[datetime]
    detected_at: Mapped[datetime]  # when a sweep found it
    late_s: Mapped[int] = mapped_column(Integer)  # detected_at - due_at, in seconds: how late it was seen
