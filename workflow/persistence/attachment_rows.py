"""The attachments table: insert, list, find, mark removed; in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from workflow.persistence.tables import Attachment, User, table_of

attachments = table_of(Attachment)
users = table_of(User)


@dataclass(frozen=True)
class AttachmentRow:
    id: int
    appeal_id: int
    name: str
    size: int
    content_type: str
    sha256: str
    item: str | None
    uploaded_by_id: int
    uploaded_at: datetime
    removed_at: datetime | None
    removed_by_id: int | None
    uploaded_by: str = ""


def insert_row(connection: Connection, values: Mapping[str, Any]) -> int:
    result = connection.execute(insert(attachments).values(**values).returning(attachments.c.id))
    return int(result.scalar_one())


def rows_of(connection: Connection, appeal_id: int, *, include_removed: bool = False) -> list[AttachmentRow]:
    query = (
        select(attachments, users.c.username.label("uploaded_by"))
        .join(users, users.c.id == attachments.c.uploaded_by_id)
        .where(attachments.c.appeal_id == appeal_id)
        .order_by(attachments.c.id)
    )
    if not include_removed:
        query = query.where(attachments.c.removed_at.is_(None))
    return [AttachmentRow(**row._mapping) for row in connection.execute(query)]


def row(connection: Connection, appeal_id: int, attachment_id: int) -> AttachmentRow | None:
    query = (
        select(attachments, users.c.username.label("uploaded_by"))
        .join(users, users.c.id == attachments.c.uploaded_by_id)
        .where(attachments.c.appeal_id == appeal_id, attachments.c.id == attachment_id)
    )
    found = connection.execute(query).first()
    return AttachmentRow(**found._mapping) if found else None


def mark_removed(connection: Connection, attachment_id: int, at: datetime, by_id: int) -> bool:
    """False when it was already removed (someone else got there first)."""
    result = connection.execute(
        update(attachments)
        .where(attachments.c.id == attachment_id, attachments.c.removed_at.is_(None))
        .values(removed_at=at, removed_by_id=by_id)
    )
    return result.rowcount == 1


def items_with_files(connection: Connection, appeal_id: int) -> set[str]:
    query = select(attachments.c.item).where(
        attachments.c.appeal_id == appeal_id, attachments.c.removed_at.is_(None), attachments.c.item.is_not(None)
    )
    return {str(item) for item in connection.execute(query).scalars()}
