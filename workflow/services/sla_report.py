"""The supervisors' view of time limits: open, at risk, breached and paused appeals per level and unit,
and how fast the chain responds and resolves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select

from workflow.domain.org import Level
from workflow.errors import UnitNotFound
from workflow.persistence.repository import IS_OPEN, appeals, units
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.views import duration_view, local_time


def breached_by(now: datetime) -> ColumnElement[bool]:
    return and_(appeals.c.clock == "running", or_(appeals.c.breached_at <= now, appeals.c.due_at <= now))


def at_risk_by(now: datetime) -> ColumnElement[bool]:
    return and_(
        appeals.c.clock == "running",
        appeals.c.at_risk_at <= now,
        or_(appeals.c.breached_at.is_(None), appeals.c.breached_at > now),
        or_(appeals.c.due_at.is_(None), appeals.c.due_at > now),
    )


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def sla_summary(
    uow: UnitOfWork, now: datetime, unit_code: str | None = None, *, past: bool = False
) -> dict[str, Any]:
    """Counts over open appeals per chain level and holding unit; one grouped query on a partial index.

    `past` (an as-of moment was asked for) leaves out appeals submitted later; that term is outside the
    covering index, so the usual "now" report goes without it."""
    conditions: list[ColumnElement[bool]] = [IS_OPEN]
    if past:
        conditions.append(appeals.c.created_at <= now)
    scope = None
    if unit_code is not None:
        scope = uow.repo.unit_by_code(unit_code)
        if scope is None:
            raise UnitNotFound(unit_code)
        subtree = select(units.c.id).where(units.c.path.startswith(scope.path, autoescape=True))
        conditions.append(appeals.c.unit_id.in_(subtree.scalar_subquery()))
    query = (
        select(
            appeals.c.level,
            appeals.c.unit_id,
            func.count().label("open"),
            _count(breached_by(now)).label("breached"),
            _count(at_risk_by(now)).label("at_risk"),
            _count(appeals.c.clock == "paused").label("paused"),
        )
        .where(*conditions)
        .group_by(appeals.c.level, appeals.c.unit_id)
    )
    rows = uow.connection.execute(query).all()
    names = uow.repo.units_by_id([r.unit_id for r in rows])
    levels: dict[str, list[dict[str, Any]]] = {level.value: [] for level in Level}
    totals = {"open": 0, "at_risk": 0, "breached": 0, "paused": 0, "on_track": 0}
    for row in rows:
        unit = names.get(row.unit_id)
        counts = {
            "open": int(row.open),
            "at_risk": int(row.at_risk or 0),
            "breached": int(row.breached or 0),
            "paused": int(row.paused or 0),
        }
        counts["on_track"] = counts["open"] - counts["at_risk"] - counts["breached"] - counts["paused"]
        for key, value in counts.items():
            totals[key] += value
        levels.setdefault(row.level, []).append(
            {
                "unit": {"id": row.unit_id, "code": unit.code if unit else None, "name": unit.name if unit else None},
                **counts,
            }
        )
    for entries in levels.values():
        entries.sort(key=lambda e: (-e["breached"], -e["at_risk"], e["unit"]["code"] or ""))
    return {
        "as_of": local_time(now),
        "unit": {"code": scope.code, "name": scope.name} if scope is not None else None,
        "levels": [{"level": level, "totals": _sum(entries), "units": entries} for level, entries in levels.items()],
        "totals": totals,
    }


def sla_rates(uow: UnitOfWork, unit_code: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """Response and resolution over appeals submitted since `since` (all if None)."""
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(appeals.c.created_at >= since)
    if unit_code is not None:
        scope = uow.repo.unit_by_code(unit_code)
        if scope is None:
            raise UnitNotFound(unit_code)
        subtree = select(units.c.id).where(units.c.path.startswith(scope.path, autoescape=True))
        conditions.append(appeals.c.unit_id.in_(subtree.scalar_subquery()))
    row = uow.connection.execute(
        select(
            func.count().label("submitted"),
            func.count(appeals.c.first_response_at).label("responded"),
            func.avg(appeals.c.first_response_s).label("avg_response_s"),
            func.count(appeals.c.decided_at).label("decided"),
            func.avg(appeals.c.decision_s).label("avg_decision_s"),
            _count(and_(appeals.c.decided_at.is_not(None), appeals.c.breached_at.is_(None))).label("on_time"),
        ).where(*conditions)
    ).one()
    submitted, decided = int(row.submitted), int(row.decided)

    def rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    def mean(seconds: Any) -> dict[str, Any] | None:
        return duration_view(timedelta(seconds=float(seconds))) if seconds is not None else None

    return {
        "since": local_time(since),
        "submitted": submitted,
        "responded": int(row.responded),
        "response_rate": rate(int(row.responded), submitted),
        "avg_working_time_to_first_response": mean(row.avg_response_s),
        "decided": decided,
        "resolution_rate": rate(decided, submitted),
        "avg_working_time_to_resolution": mean(row.avg_decision_s),
        "resolved_within_limit_rate": rate(int(row.on_time or 0), decided),
    }


def _sum(entries: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("open", "at_risk", "breached", "paused", "on_track")
    return {key: sum(int(e[key]) for e in entries) for key in keys}
