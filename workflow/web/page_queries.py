"""Read-only queries the pages need beyond the Workflow facade: weekly trends, workload, buildings.

Every query is limited to one subtree of the chain: appeals whose enterprise sits in a building under
`scope_path` (a user's `Actor.scope_path`, or a unit within it), narrowed by `extra` conditions for a department
officer (services.access.department_filter). Core statements, counted in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select

from workflow.domain.appeal import Actor
from workflow.domain.org import Role, UnitKind
from workflow.persistence.repository import IS_OPEN, appeals, enterprises, units, users
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.sla_report import UNRESOLVED_ENDINGS, at_risk_by, breached_by

SHANGHAI = ZoneInfo("Asia/Shanghai")
building = units.alias("page_building")
_appeals_in_buildings = appeals.join(enterprises, enterprises.c.id == appeals.c.enterprise_id).join(
    building, building.c.id == enterprises.c.building_id
)


def within(scope_path: str) -> ColumnElement[bool]:
    return building.c.path.startswith(scope_path, autoescape=True)


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def week_starts(now: datetime, weeks: int) -> list[datetime]:
    """Mondays 00:00 in Shanghai, oldest first, the last one starting the current week."""
    local = now.astimezone(SHANGHAI)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def weekly_trend(
    uow: UnitOfWork, scope_path: str, now: datetime, weeks: int = 8, extra: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """Per week of submission: submitted, responded to, resolved and withdrawn so far, and the two rates
    (withdrawn and merged appeals are out of the resolution rate, as in `sla_rates`)."""
    starts = week_starts(now, weeks)
    bounds = [*starts, starts[-1] + timedelta(weeks=1)]
    columns = []
    resolvable = appeals.c.state.not_in(UNRESOLVED_ENDINGS)
    for i in range(weeks):
        week = and_(appeals.c.created_at >= bounds[i], appeals.c.created_at < bounds[i + 1])
        columns += [
            _count(week).label(f"s{i}"),
            _count(and_(week, appeals.c.first_response_at.is_not(None))).label(f"r{i}"),
            _count(and_(week, appeals.c.decided_at.is_not(None), resolvable)).label(f"d{i}"),
            _count(and_(week, appeals.c.state.in_(UNRESOLVED_ENDINGS))).label(f"w{i}"),
        ]
    row = uow.connection.execute(
        select(*columns)
        .select_from(_appeals_in_buildings)
        .where(within(scope_path), appeals.c.created_at >= bounds[0], appeals.c.created_at < bounds[-1], *extra)
    ).one()
    trend = []
    for i, start in enumerate(starts):
        submitted = int(getattr(row, f"s{i}") or 0)
        responded = int(getattr(row, f"r{i}") or 0)
        decided = int(getattr(row, f"d{i}") or 0)
        withdrawn = int(getattr(row, f"w{i}") or 0)
        trend.append(
            {
                "week": start.date().isoformat(),
                "label": f"{start.month}/{start.day}",
                "submitted": submitted,
                "responded": responded,
                "decided": decided,
                "withdrawn": withdrawn,
                "response_rate": responded / submitted if submitted else None,
                "resolution_rate": decided / (submitted - withdrawn) if submitted > withdrawn else None,
            }
        )
    return trend


def workload(
    uow: UnitOfWork, scope_path: str, now: datetime, limit: int = 30, extra: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """Open appeals per handler (enterprise contacts left out), the most loaded first."""
    rows = uow.connection.execute(
        select(
            users.c.username,
            users.c.display_name,
            users.c.role,
            func.count().label("open"),
            _count(breached_by(now)).label("breached"),
            _count(at_risk_by(now)).label("at_risk"),
        )
        .select_from(_appeals_in_buildings.join(users, users.c.id == appeals.c.assignee_id))
        .where(IS_OPEN, within(scope_path), users.c.role != Role.ENTERPRISE_CONTACT.value, *extra)
        .group_by(users.c.id, users.c.username, users.c.display_name, users.c.role)
        .order_by(func.count().desc(), users.c.username)
        .limit(limit)
    ).all()
    return [
        {
            "username": r.username,
            "display_name": r.display_name,
            "role": r.role,
            "open": int(r.open),
            "breached": int(r.breached or 0),
            "at_risk": int(r.at_risk or 0),
            "other": int(r.open) - int(r.breached or 0) - int(r.at_risk or 0),
        }
        for r in rows
    ]


def per_building(uow: UnitOfWork, scope_path: str, now: datetime, extra: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """All appeals ever raised by each building's enterprises, with the open ones split by their clocks."""
    rows = uow.connection.execute(
        select(
            building.c.code,
            building.c.name,
            building.c.name_en,
            func.count().label("total"),
            _count(IS_OPEN).label("open"),
            _count(and_(IS_OPEN, breached_by(now))).label("breached"),
            _count(and_(IS_OPEN, at_risk_by(now))).label("at_risk"),
        )
        .select_from(_appeals_in_buildings)
        .where(within(scope_path), *extra)
        .group_by(building.c.id, building.c.code, building.c.name, building.c.name_en)
        .order_by(building.c.code)
    ).all()
    result = []
    for r in rows:
        total, open_, breached, at_risk = int(r.total), int(r.open or 0), int(r.breached or 0), int(r.at_risk or 0)
        result.append(
            {
                "code": r.code,
                "name": r.name,
                "name_en": r.name_en,
                "total": total,
                "open": open_,
                "breached": breached,
                "at_risk": at_risk,
                "other_open": open_ - breached - at_risk,
                "closed": total - open_,
            }
        )
    return result


def unit_in_scope(uow: UnitOfWork, code: str, scope_path: str) -> Any | None:
    """The unit with `code` if it lies in the subtree at `scope_path`, else None."""
    unit = uow.repo.unit_by_code(code)
    if unit is None or not str(unit.path).startswith(scope_path):
        return None
    return unit


def unit_names(uow: UnitOfWork) -> dict[str, tuple[str, str]]:
    """Unit code -> (Chinese name, English name)."""
    return {str(u.code): (str(u.name), str(u.name_en or u.name)) for u in uow.repo.all_units()}


def child_units(uow: UnitOfWork, parent_id: int) -> list[Any]:
    """The chain units right below one (departments hold no buildings, so they are left out)."""
    query = select(units).where(units.c.parent_id == parent_id, units.c.kind != UnitKind.DEPARTMENT.value)
    return list(uow.connection.execute(query.order_by(units.c.code)))


def enterprises_for(uow: UnitOfWork, actor: Actor, limit: int = 500) -> list[tuple[int, str]]:
    """Enterprises a member of staff may submit for: in their subtree, or looked after by them."""
    rows = uow.connection.execute(
        select(enterprises.c.id, enterprises.c.name)
        .select_from(enterprises.join(building, building.c.id == enterprises.c.building_id))
        .where(or_(within(actor.scope_path), enterprises.c.specialist_id == actor.id))
        .order_by(enterprises.c.id)
        .limit(limit)
    ).all()
    return [(int(r.id), str(r.name)) for r in rows]
