"""Keeps a refused page form across a redirect: the POST answers 303 to a GET page (a refresh then reloads
that page instead of posting again) and the GET page shows the refusal with what was typed.

Kept in the database, since the redirected GET may reach another node or worker; a flash is read only by
the user it belongs to, on the page it belongs to, for FLASH_TTL, and old ones are dropped as new ones come.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from workflow.clock import Clock
from workflow.persistence.tables import PageFlash, table_of
from workflow.persistence.unit_of_work import UnitOfWork

FLASH_TTL = timedelta(hours=1)
LONGEST_TEXT = 20_000  # more than any field takes; what was typed beyond it is not shown again
page_flashes = table_of(PageFlash)


def _storable(value: Any) -> Any:
    """What was typed, as every backend's JSON column takes it: PostgreSQL refuses NUL in JSON text."""
    if isinstance(value, str):
        return value[:LONGEST_TEXT].replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {str(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def keep_flash(engine: Engine, clock: Clock, *, user_id: int, page: str, payload: dict[str, Any]) -> str:
    """Store `payload` for `page` and return the key the redirect carries."""
    key = secrets.token_urlsafe(24)
    now = clock.now()
    with UnitOfWork(engine) as uow:
        uow.connection.execute(delete(page_flashes).where(page_flashes.c.created_at < now - FLASH_TTL))
        uow.connection.execute(
            insert(page_flashes).values(
                key=key, user_id=user_id, page=page[:300], payload=_storable(payload), created_at=now
            )
        )
        uow.commit()
    return key


def flash_for(engine: Engine, clock: Clock, *, key: str, user_id: int, page: str) -> dict[str, Any] | None:
    """The payload kept under `key` for this user and page, or None (unknown, someone else's, or too old)."""
    if not key or len(key) > 64:
        return None
    query = select(page_flashes.c.payload).where(
        page_flashes.c.key == key,
        page_flashes.c.user_id == user_id,
        page_flashes.c.page == page[:300],
        page_flashes.c.created_at >= clock.now() - FLASH_TTL,
    )
    with UnitOfWork(engine, read_only=True) as uow:
        payload = uow.connection.execute(query).scalar_one_or_none()
    return dict(payload) if payload is not None else None
