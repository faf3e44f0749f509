"""The sign-in history of each account: every good and failed sign-in with its address and time, so that the
owner is told of failed attempts since their previous sign-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select

from workflow.persistence.tables import SignInEvent, table_of
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.views import local_time

events = table_of(SignInEvent)

KEPT_FOR = timedelta(days=90)
SHOWN_FAILURES = 20


def record(uow: UnitOfWork, user_id: int, address: str, now: datetime, *, succeeded: bool) -> None:
    uow.connection.execute(insert(events).values(user_id=user_id, at=now, address=address[:64], succeeded=succeeded))
    if succeeded:
        uow.connection.execute(delete(events).where(events.c.user_id == user_id, events.c.at < now - KEPT_FOR))


def failures_since_previous(uow: UnitOfWork, user_id: int) -> dict[str, Any]:
    """Failed attempts since the sign-in before the latest one (the one the caller is in), newest first.

    Ordered by id, not time: two sign-ins in the same instant are still one after the other."""
    latest_two = uow.connection.execute(
        select(events.c.id, events.c.at, events.c.address)
        .where(events.c.user_id == user_id, events.c.succeeded == True)  # noqa: E712
        .order_by(events.c.id.desc())
        .limit(2)
    ).all()
    previous = latest_two[1] if len(latest_two) == 2 else None
    failed = and_(events.c.user_id == user_id, events.c.succeeded == False)  # noqa: E712
    if previous is not None:
        failed = and_(failed, events.c.id > previous.id)
    count = uow.connection.execute(select(func.count()).select_from(events).where(failed)).scalar_one()
    recent = uow.connection.execute(
        select(events.c.at, events.c.address).where(failed).order_by(events.c.id.desc()).limit(SHOWN_FAILURES)
    ).all()
    return {
        "previous_at": local_time(previous.at) if previous else None,
        "previous_address": previous.address if previous else None,
        "failed_attempts_since_previous": int(count),
        "recent_failures": [{"at": local_time(row.at), "address": row.address} for row in recent],
    }
