"""The supervisors' view of time limits: open, at risk, breached and paused appeals per level and unit,
and how fast the chain responds and resolves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal_column, or_, select

from workflow.domain.org import Level
from workflow.errors import UnitNotFound
from workflow.persistence.repository import IS_OPEN, appeals, breaches, units
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.views import duration_view, local_time


# Breached and at risk read the current level's clocks: a breach at an earlier level is a fact about that
# level (the `breaches` table, counted per level and unit below), not a lasting status of the appeal.
def breached_by(now: datetime) -> ColumnElement[bool]:
    return and_(appeals.c.clock == "running", appeals.c.due_at <= now)


def at_risk_by(now: datetime) -> ColumnElement[bool]:
    return and_(
        appeals.c.clock == "running",
        appeals.c.at_risk_at <= now,
        or_(appeals.c.due_at.is_(None), appeals.c.due_at > now),
    )


# Appeals that ended without being resolved by anyone: counted on their own, out of the resolution rates'
# denominators (a withdrawn appeal's decided_at says its clock stopped, not that it was solved). `merged`
# is reserved for duplicates merged into another appeal.
UNRESOLVED_ENDINGS = ("withdrawn", "merged")


# Two counts of one index range in one integer (SCALE x all + some): a scalar subquery returns one
# value, SQLite has no LATERAL, and reading the at-risk range twice cost a third of the summary.
SCALE = 1 << 32


def _counts_now(conditions: list[ColumnElement[bool]], now: datetime) -> Any:
    """Per level, unit and clock: open, then `risky` (SCALE x past the at-risk instant + those of them
    past their due instant), without reading every open appeal's instants.

    Open appeals are counted per group on the narrow ix_appeals_open_groups; within each group's running
    appeals, those past their at-risk instant are an index range of ix_appeals_open_sla, so only they are
    read again. This relies on the planner's invariant (tests/test_sla_properties.py): an appeal with a due
    instant has an at-risk instant no later, so one past its due instant is in the at-risk range."""
    groups = (
        select(appeals.c.level, appeals.c.unit_id, appeals.c.clock, func.count().label("open"))
        .where(*conditions)
        .group_by(appeals.c.level, appeals.c.unit_id, appeals.c.clock)
        .subquery("g")
    )
    a = appeals.alias("a")

    def running_in_group(counted: Any, *terms: ColumnElement[bool]) -> Any:
        count = (
            select(counted)
            .select_from(a)
            .where(
                a.c.is_open == True,  # noqa: E712 - as the partial indexes are declared on SQLite
                a.c.level == groups.c.level,
                a.c.unit_id == groups.c.unit_id,
                a.c.clock == groups.c.clock,
                *terms,
            )
            .scalar_subquery()
        )
        return case((groups.c.clock == "running", count), else_=0)

    risky = func.count() * literal_column(str(SCALE)) + func.count().filter(a.c.due_at <= now)
    return select(
        groups.c.level,
        groups.c.unit_id,
        groups.c.clock,
        groups.c.open,
        running_in_group(risky, a.c.at_risk_at <= now).label("risky"),
    )


def _at_risk_and_breached(row: Any) -> tuple[int, int]:
    """From a row of either query: at risk is past the at-risk instant and not breached."""
    if "risky" not in row._fields:
        return int(row.at_risk or 0), int(row.breached or 0)
    risky, risky_breached = divmod(int(row.risky), SCALE)
    return risky - risky_breached, risky_breached


def _counts_as_of(conditions: list[ColumnElement[bool]], now: datetime) -> Any:
    """Per level, unit and clock: open, at_risk, breached, in one pass: an earlier moment also asks for
    created_at, which no index covers."""
    return (
        select(
            appeals.c.level,
            appeals.c.unit_id,
            appeals.c.clock,
            func.count().label("open"),
            func.count().filter(at_risk_by(now)).label("at_risk"),
            func.count().filter(breached_by(now)).label("breached"),
        )
        .where(*conditions, appeals.c.created_at <= now)
        .group_by(appeals.c.level, appeals.c.unit_id, appeals.c.clock)
    )


def _breaches_by_level_and_unit(uow: UnitOfWork, subtree: Any | None, now: datetime) -> dict[tuple[str, int], int]:
    """Breaches of open appeals by the level and unit that let them happen (in scope: that unit), up to `now`."""
    query = (
        select(breaches.c.level, breaches.c.unit_id, func.count().label("n"))
        .join(appeals, appeals.c.id == breaches.c.appeal_id)
        .where(IS_OPEN, breaches.c.due_at <= now)
        .group_by(breaches.c.level, breaches.c.unit_id)
    )
    if subtree is not None:
        query = query.where(breaches.c.unit_id.in_(subtree.scalar_subquery()))
    return {(row.level, row.unit_id): int(row.n) for row in uow.connection.execute(query)}


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def sla_summary(
    uow: UnitOfWork,
    now: datetime,
    unit_code: str | None = None,
    *,
    past: bool = False,
    extra: Sequence[ColumnElement[bool]] = (),
) -> dict[str, Any]:
    """Counts over open appeals per chain level and holding unit.

    `past` (an as-of moment was asked for) leaves out appeals submitted later; `extra` narrows the appeals
    counted (a department officer's)."""
    conditions: list[ColumnElement[bool]] = [IS_OPEN, *extra]
    scope = subtree = None
    if unit_code is not None:
        scope = uow.repo.unit_by_code(unit_code)
        if scope is None:
            raise UnitNotFound(unit_code)
        subtree = select(units.c.id).where(units.c.path.startswith(scope.path, autoescape=True))
        conditions.append(appeals.c.unit_id.in_(subtree.scalar_subquery()))
    query = _counts_as_of(conditions, now) if past else _counts_now(conditions, now)
    groups: dict[tuple[str, int], dict[str, int]] = {}
    for row in uow.connection.execute(query):
        counts = groups.setdefault((row.level, row.unit_id), {"open": 0, "at_risk": 0, "breached": 0, "paused": 0})
        counts["open"] += int(row.open)
        at_risk, breached = _at_risk_and_breached(row)
        counts["at_risk"] += at_risk
        counts["breached"] += breached
        if row.clock == "paused":
            counts["paused"] += int(row.open)
    recorded = _breaches_by_level_and_unit(uow, subtree, now)
    for place in recorded:  # a level that let a limit run out is listed even once the appeal has left it
        groups.setdefault(place, {"open": 0, "at_risk": 0, "breached": 0, "paused": 0})
    names = uow.repo.units_by_id([unit_id for _, unit_id in groups])
    levels: dict[str, list[dict[str, Any]]] = {level.value: [] for level in Level}
    totals = {"open": 0, "at_risk": 0, "breached": 0, "paused": 0, "on_track": 0}
    for (level, unit_id), counts in groups.items():
        unit = names.get(unit_id)
        where = {"id": unit_id, "code": unit.code if unit else None, "name": unit.name if unit else None}
        counts["on_track"] = counts["open"] - counts["at_risk"] - counts["breached"] - counts["paused"]
        for key, value in counts.items():
            totals[key] += value
        levels.setdefault(level, []).append({"unit": where, **counts, "breaches": recorded.get((level, unit_id), 0)})
    for entries in levels.values():
        entries.sort(key=lambda e: (-e["breached"], -e["at_risk"], e["unit"]["code"] or ""))
    return {
        "as_of": local_time(now),
        "unit": {"code": scope.code, "name": scope.name} if scope is not None else None,
        "levels": [{"level": level, "totals": _sum(entries), "units": entries} for level, entries in levels.items()],
        "totals": totals,
    }


def sla_rates(
    uow: UnitOfWork,
    unit_code: str | None = None,
    since: datetime | None = None,
    extra: Sequence[ColumnElement[bool]] = (),
) -> dict[str, Any]:
    """Response and resolution over appeals submitted since `since` (all if None); withdrawn (and merged)
    appeals are counted on their own and left out of the resolution rates."""
    conditions: list[ColumnElement[bool]] = [*extra]
    if since is not None:
        conditions.append(appeals.c.created_at >= since)
    if unit_code is not None:
        scope = uow.repo.unit_by_code(unit_code)
        if scope is None:
            raise UnitNotFound(unit_code)
        subtree = select(units.c.id).where(units.c.path.startswith(scope.path, autoescape=True))
        conditions.append(appeals.c.unit_id.in_(subtree.scalar_subquery()))
    resolvable = appeals.c.state.not_in(UNRESOLVED_ENDINGS)
    decided_here = and_(appeals.c.decided_at.is_not(None), resolvable)
    row = uow.connection.execute(
        select(
            func.count().label("submitted"),
            func.count(appeals.c.first_response_at).label("responded"),
            func.avg(appeals.c.first_response_s).label("avg_response_s"),
            _count(decided_here).label("decided"),
            func.avg(case((decided_here, appeals.c.decision_s))).label("avg_decision_s"),
            _count(and_(decided_here, appeals.c.breached_at.is_(None))).label("on_time"),
            *(_count(appeals.c.state == state).label(state) for state in UNRESOLVED_ENDINGS),
        ).where(*conditions)
    ).one()
    submitted, decided = int(row.submitted), int(row.decided or 0)
    unresolved = {state: int(getattr(row, state) or 0) for state in UNRESOLVED_ENDINGS}

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
        **unresolved,
        "resolution_rate": rate(decided, submitted - sum(unresolved.values())),
        "avg_working_time_to_resolution": mean(row.avg_decision_s),
        "resolved_within_limit_rate": rate(int(row.on_time or 0), decided),
    }


def _sum(entries: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("open", "at_risk", "breached", "paused", "on_track")
    return {key: sum(int(e[key]) for e in entries) for key in keys}
