"""Reads and writes of the notices outbox: claims with a lease, delivery outcomes, the in-app inbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, func, or_, select, update

from workflow.persistence.tables import Notice, NoticePreference, User, table_of

notices = table_of(Notice)
users = table_of(User)
preferences = table_of(NoticePreference)

EMAIL, OFF, DIGEST = "email", "off", "digest"
MODES = (EMAIL, OFF, DIGEST)


class Outbox:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name

    def claim(self, node: str, now: datetime, lease_until: datetime, batch: int) -> list[Row[Any]]:
        """Pending notices due for an attempt, and claims whose lease ran out, oldest first."""
        due = (
            select(notices.c.id)
            .where(
                notices.c.status.in_(["pending", "sending"]),
                notices.c.next_attempt_at <= now,
                or_(notices.c.status == "pending", notices.c.lease_until < now),
            )
            .order_by(notices.c.next_attempt_at, notices.c.id)
            .limit(batch)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        # Not UPDATE ... WHERE id IN (that SELECT): PostgreSQL may run the subquery again for each row it updates,
        # skip the rows it has just locked, and so claim everything due whatever the batch size.
        ids = list(self.connection.execute(due).scalars())
        if not ids:
            return []
        claimed = (
            update(notices)
            .where(notices.c.id.in_(ids))
            .where(or_(notices.c.status == "pending", and_(notices.c.status == "sending", notices.c.lease_until < now)))
            .values(status="sending", claimed_by=node, lease_until=lease_until, attempts=notices.c.attempts + 1)
            .returning(
                notices.c.id,
                notices.c.kind,
                notices.c.recipient_id,
                notices.c.payload,
                notices.c.attempts,
                notices.c.created_at,
            )
        )
        return sorted(self.connection.execute(claimed).all(), key=lambda r: r.id)

    def recipients(self, notice_ids: Sequence[int]) -> dict[int, Any]:
        """Who each notice goes to, with that person's wish for its kind: one query for a claimed batch."""
        if not notice_ids:
            return {}
        query = (
            select(
                notices.c.id.label("notice_id"),
                users.c.id,
                users.c.username,
                users.c.display_name,
                users.c.email,
                users.c.locale,
                users.c.active,
                func.coalesce(preferences.c.mode, EMAIL).label("mode"),
            )
            .join(users, users.c.id == notices.c.recipient_id)
            .outerjoin(
                preferences, and_(preferences.c.user_id == notices.c.recipient_id, preferences.c.kind == notices.c.kind)
            )
            .where(notices.c.id.in_(list(notice_ids)))
        )
        return {row.notice_id: row for row in self.connection.execute(query)}

    def finish(self, notice_id: int, node: str, **values: Any) -> bool:
        """Record an outcome, only while this node still holds the claim."""
        result = self.connection.execute(
            update(notices)
            .where(notices.c.id == notice_id, notices.c.status == "sending", notices.c.claimed_by == node)
            .values(**values)
        )
        return result.rowcount == 1

    def failed(self, limit: int | None = 100, offset: int = 0) -> list[Row[Any]]:
        """Notices given up on, newest first; `limit=None` for all of them."""
        query = select(notices).where(notices.c.status == "failed").order_by(notices.c.id.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return list(self.connection.execute(query).all())

    def failed_count(self) -> int:
        return int(self.connection.execute(select(func.count()).where(notices.c.status == "failed")).scalar_one())

    def retry(self, notice_id: int, now: datetime) -> bool:
        result = self.connection.execute(
            update(notices)
            .where(notices.c.id == notice_id, notices.c.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now, last_error=None, claimed_by=None)
        )
        return result.rowcount == 1

    def get(self, notice_id: int) -> Row[Any] | None:
        return self.connection.execute(select(notices).where(notices.c.id == notice_id)).first()

    # --- the in-app inbox -------------------------------------------------------------
    def inbox(self, user_id: int, *, unread_only: bool = False, limit: int = 50, offset: int = 0) -> list[Row[Any]]:
        query = select(notices).where(notices.c.recipient_id == user_id)
        if unread_only:
            query = query.where(notices.c.read_at.is_(None))
        return list(self.connection.execute(query.order_by(notices.c.id.desc()).limit(limit).offset(offset)).all())

    def unread_count(self, user_id: int) -> int:
        query = select(func.count()).where(notices.c.recipient_id == user_id, notices.c.read_at.is_(None))
        return int(self.connection.execute(query).scalar_one())

    def mark_read(self, user_id: int, notice_ids: Sequence[int], now: datetime) -> int:
        result = self.connection.execute(
            update(notices)
            .where(notices.c.recipient_id == user_id, notices.c.id.in_(list(notice_ids)), notices.c.read_at.is_(None))
            .values(read_at=now)
        )
        return int(result.rowcount)

    def held_for_digest(self, user_id: int, since: datetime, until: datetime) -> list[Any]:
        query = (
            select(notices.c.id, notices.c.kind, notices.c.payload, notices.c.created_at)
            .where(
                notices.c.recipient_id == user_id,
                notices.c.status == "skipped",
                notices.c.last_error == "digest",
                notices.c.created_at >= since,
                notices.c.created_at < until,
            )
            .order_by(notices.c.id)
        )
        return list(self.connection.execute(query).all())

    # --- preferences ------------------------------------------------------------------
    def preferences(self, user_id: int) -> dict[str, str]:
        rows = self.connection.execute(select(preferences).where(preferences.c.user_id == user_id))
        return {row.kind: row.mode for row in rows}

    def set_preference(self, user_id: int, kind: str, mode: str) -> None:
        self.connection.execute(
            preferences.delete().where(preferences.c.user_id == user_id, preferences.c.kind == kind)
        )
        if mode != EMAIL:  # email is the default: no row needed
            self.connection.execute(preferences.insert().values(user_id=user_id, kind=kind, mode=mode))
