"""The in-app inbox: every notice addressed to a person, newest first, with its subject in their language."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from notifications.outbox import Outbox
from notifications.rendering import Renderer, RenderError
from notifications.samples import render_extras
from workflow.clock import Clock
from workflow.domain.appeal import Actor
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.views import local_time

_renderer: Renderer | None = None


def _subjects() -> Renderer:
    global _renderer
    if _renderer is None:
        _renderer = Renderer()
    return _renderer


def inbox_view(engine: Engine, actor: Actor, *, unread_only: bool = False, limit: int = 50) -> dict[str, Any]:
    with UnitOfWork(engine, read_only=True) as uow:
        outbox = Outbox(uow.connection)
        rows = outbox.inbox(actor.id, unread_only=unread_only, limit=limit)
        unread = outbox.unread_count(actor.id)
    items = []
    for row in rows:
        extras = render_extras(
            row.kind,
            notice_id=row.id,
            created_at=row.created_at,
            display_name=actor.display_name,
            username=actor.username,
        )
        try:
            rendered = _subjects().render(row.kind, actor.locale, {**row.payload, **extras})
            subject, text = rendered.subject, rendered.text
        except RenderError:
            subject, text = row.kind, ""
        items.append(
            {
                "id": row.id,
                "kind": row.kind,
                "subject": subject,
                "text": text,
                "created_at": local_time(row.created_at),
                "read": row.read_at is not None,
                "email": row.status,
                "number": (row.payload.get("appeal") or {}).get("number"),
            }
        )
    return {"unread": unread, "notices": items}


def unread_count(engine: Engine, actor: Actor) -> int:
    with UnitOfWork(engine, read_only=True) as uow:
        return Outbox(uow.connection).unread_count(actor.id)


def mark_read(engine: Engine, clock: Clock, actor: Actor, ids: Sequence[int]) -> dict[str, int]:
    with UnitOfWork(engine) as uow:
        outbox = Outbox(uow.connection)
        marked = outbox.mark_read(actor.id, ids, clock.now())
        unread = outbox.unread_count(actor.id)
        uow.commit()
    return {"marked": marked, "unread": unread}
