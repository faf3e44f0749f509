"""The daily digest at 08:30 Asia/Shanghai on working days: each supervisor's at-risk and breached
appeals grouped by level and unit, plus notices people chose to receive only in the digest.

Written once per day however many nodes run: the day's row in `digest_runs` is inserted first, and
only the transaction that inserted it writes the digests (a unique key, not luck)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from notifications.outbox import Outbox
from workflow.domain.appeal import AppealRecord
from workflow.domain.notices import NoticeKind
from workflow.domain.org import SUPERVISOR_ROLES, Level
from workflow.persistence.repository import IS_OPEN
from workflow.persistence.tables import DigestRun, table_of
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.notify import LEVEL_TITLES
from workflow.services.sla_report import at_risk_by, breached_by
from workflow.services.views import local_time
from workflow.services.workflow import Workflow

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
DIGEST_TIME = time(8, 30)
MAX_ITEMS = 5000
digest_runs = table_of(DigestRun)


def digest_due(wf: Workflow, now: datetime) -> bool:
    local = now.astimezone(SHANGHAI)
    return local.time() >= DIGEST_TIME and wf.planner.calendar.is_working_day(local.date())


def write_daily_digests(wf: Workflow, node: str) -> int:
    """Write today's digests if it is time and no node has yet; returns how many were written."""
    now = wf.clock.now()
    if not digest_due(wf, now):
        return 0
    day = now.astimezone(SHANGHAI).date()
    with UnitOfWork(wf.engine) as uow:
        builder = pg_insert if uow.repo.dialect == "postgresql" else sqlite_insert
        claimed = uow.connection.execute(
            builder(digest_runs)
            .values(day=day.isoformat(), created_at=now, node=node)
            .on_conflict_do_nothing()
            .returning(digest_runs.c.day)  # PostgreSQL reports no rowcount for ON CONFLICT DO NOTHING
        ).first()
        if claimed is None:
            return 0
        written = _write(wf, uow, now, day.isoformat())
        uow.commit()
    log.info("daily digests for %s: %d written by %s", day, written, node)
    return written


def _write(wf: Workflow, uow: UnitOfWork, now: datetime, day: str) -> int:
    outbox = Outbox(uow.connection)
    records, _ = uow.repo.list_appeals(extra=[IS_OPEN, or_(breached_by(now), at_risk_by(now))], limit=MAX_ITEMS)
    names = uow.repo.usernames([r.assignee_id for r in records if r.assignee_id])
    units = uow.repo.units_by_id(list({r.unit_id for r in records}))
    enterprises = uow.repo.enterprise_names([r.enterprise_id for r in records])
    # Held notices since the last digest, so a Friday afternoon's reach Monday's.
    previous = uow.connection.execute(
        select(digest_runs.c.created_at).where(digest_runs.c.day < day).order_by(digest_runs.c.day.desc()).limit(1)
    ).scalar()
    since = previous if previous is not None else now - timedelta(days=1)
    written = 0
    for person in _recipients(uow):
        mine = [
            r for r in records if person["role"] in SUPERVISOR_ROLES and r.building_path.startswith(person["scope"])
        ]
        held = outbox.held_for_digest(person["id"], since, now)
        if not mine and not held:
            continue
        payload = {
            "day": day,
            "counts": {
                "at_risk": sum(1 for r in mine if not _breached(r, now)),
                "breached": sum(1 for r in mine if _breached(r, now)),
            },
            "groups": _groups(wf, uow, mine, now, names, units, enterprises),
            "notices": [
                {
                    "kind": n.kind,
                    "number": (n.payload.get("appeal") or {}).get("number"),
                    "created_at": n.created_at.isoformat(),
                }
                for n in held
            ],
        }
        uow.repo.add_notices(
            None, NoticeKind.DAILY_DIGEST.value, [person["id"]], f"{NoticeKind.DAILY_DIGEST.value}:{day}", payload, now
        )
        written += 1
    return written


def _recipients(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Supervisors, and anyone who asked for some notices in the digest only."""
    from notifications.outbox import preferences

    digest_users = select(preferences.c.user_id).where(preferences.c.mode == "digest")
    people = []
    for role in sorted(SUPERVISOR_ROLES):
        for row in uow.repo.users(role=role):
            if row.active:
                actor = uow.repo.actor(row.username)
                people.append({"id": row.id, "role": role, "scope": actor.scope_path if actor else "~"})
    seen = {p["id"] for p in people}
    for user_id in uow.connection.execute(digest_users.distinct()).scalars():
        if user_id not in seen:
            people.append({"id": user_id, "role": "", "scope": "~"})
    return people


def _breached(record: AppealRecord, now: datetime) -> bool:
    due = (
        record.state_due_at
        if record.overall_due_at is None
        else min(d for d in (record.state_due_at, record.overall_due_at) if d is not None)
    )
    return due is not None and due <= now  # the current level's clocks: an earlier breach is not a status


def _groups(
    wf: Workflow,
    uow: UnitOfWork,
    records: list[AppealRecord],
    now: datetime,
    names: dict[int, str],
    units: dict[int, Any],
    enterprises: dict[int, str],
) -> list[dict[str, Any]]:
    grouped: dict[tuple[int, int], dict[str, Any]] = {}
    buckets: dict[tuple[int, int], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"at_risk": [], "breached": []}
    )
    for record in records:
        level = Level(record.level)
        key = (level.rank, record.unit_id)
        unit = units.get(record.unit_id)
        grouped.setdefault(
            key,
            {
                "level": level.value,
                "level_title": LEVEL_TITLES[level],
                "unit": unit.name if unit else str(record.unit_id),
            },
        )
        spec = wf.registry.get(uow, record.definition_id).spec
        status = "breached" if _breached(record, now) else "at_risk"
        due = [d for d in (record.state_due_at, record.overall_due_at) if d is not None]
        buckets[key][status].append(
            {
                "number": record.number,
                "title": dict(spec.title),
                "state_title": dict(spec.states[record.state].title),
                "status": status,
                "due_at": local_time(min(due)) if due else None,
                "assignee": names.get(record.assignee_id or 0),
                "enterprise": enterprises.get(record.enterprise_id, ""),
                "link": f"/appeals/{record.number}",
            }
        )
    return [{**grouped[key], **buckets[key]} for key in sorted(grouped, key=lambda k: (-k[0], k[1]))]
