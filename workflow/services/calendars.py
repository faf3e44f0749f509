"""Which working-time calendar the engine uses: the holidays package, shipped notices, loaded notices.

Notices loaded with `appeals calendar load` live in the database so that every node sees them; a
loaded year replaces the estimate, and open appeals' deadlines are worked out again.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select

from workflow.clock import Clock
from workflow.domain.appeal import EventKind
from workflow.domain.calendar import (
    WorkingCalendar,
    WorkingHours,
    YearOverride,
    load_override,
    load_override_text,
    load_overrides,
)
from workflow.domain.sla import BREACH
from workflow.persistence.tables import CalendarOverride, table_of
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.clocks import change_columns, clocks_of, unchanged_columns
from workflow.services.commands import _write
from workflow.services.views import local_time

if TYPE_CHECKING:
    from workflow.services.workflow import Workflow

log = logging.getLogger(__name__)
HOURS_VARIABLE = "APPEALS_WORKING_HOURS"
overrides_table = table_of(CalendarOverride)


@functools.cache
def shipped_overrides() -> tuple[YearOverride, ...]:
    """The notices shipped in definitions/calendar/, read once per process."""
    return tuple(load_overrides(Path(str(resources.files("definitions") / "calendar"))))


def working_hours() -> WorkingHours:
    text = os.environ.get(HOURS_VARIABLE)
    return WorkingHours.parse(text) if text else WorkingHours.default()


def stored_overrides(uow: UnitOfWork) -> list[YearOverride]:
    rows = uow.connection.execute(select(overrides_table).order_by(overrides_table.c.year)).all()
    return [load_override_text(row.source, row.file_name) for row in rows]


def build_calendar(uow: UnitOfWork) -> WorkingCalendar:
    """Package estimate < shipped notice files < notices loaded into this database."""
    return WorkingCalendar([*shipped_overrides(), *stored_overrides(uow)], working_hours())


def store_override(uow: UnitOfWork, path: Path, clock: Clock) -> YearOverride:
    """Validate a notice file and keep it in the database (replacing that year's earlier one)."""
    override = load_override(path)
    source = path.read_text(encoding="utf-8")
    uow.connection.execute(delete(overrides_table).where(overrides_table.c.year == override.year))
    uow.connection.execute(
        insert(overrides_table),
        {"year": override.year, "source": source, "file_name": path.name, "loaded_at": clock.now()},
    )
    return override


def recompute_open_deadlines(wf: Workflow, batch: int = 500) -> int:
    """Work out again the deadlines of every appeal whose clock runs, one transaction per appeal.

    Reminders whose new instant has already passed are dropped (they would only be noise); a breach
    is always re-armed, so a deadline that moved into the past fires on the next sweep."""
    ctx = wf.context
    recomputed = 0
    last_id = 0
    while True:
        with UnitOfWork(wf.engine, read_only=True) as uow:
            ids = uow.repo.running_appeal_ids(after=last_id, limit=batch)
        if not ids:
            return recomputed
        last_id = ids[-1]
        for appeal_id in ids:
            with UnitOfWork(wf.engine) as uow:
                appeal = uow.repo.appeal_by_id(appeal_id, lock=True)
                if appeal is None or not appeal.is_open or appeal.clock != "running":
                    continue
                definition = ctx.registry.get(uow, appeal.definition_id).spec
                now = ctx.clock.now()
                change = ctx.planner.recomputed(definition, clocks_of(appeal), appeal.state, now)
                change = replace(
                    change,
                    timers=tuple(
                        t
                        for t in change.timers
                        if t.due_at > now or (t.threshold == BREACH and appeal.breached_at is None)
                    ),
                )
                values = {**unchanged_columns(appeal), **change_columns(change, now)}
                _write(
                    uow,
                    appeal,
                    now,
                    values,
                    {
                        "kind": EventKind.RECOMPUTED,
                        "actor_id": None,
                        "trigger": "recompute",
                        "from_state": appeal.state,
                        "to_state": appeal.state,
                        "comment": None,
                        "payload": {
                            "due_at": local_time(change.clocks.due_at),
                            "provisional": change.clocks.provisional,
                        },
                    },
                    change,
                )
                uow.commit()
                recomputed += 1


def load_notice(wf: Workflow, path: Path) -> tuple[YearOverride, int]:
    """`appeals calendar load`: store the notice, switch this process to it, recompute open deadlines."""
    with UnitOfWork(wf.engine) as uow:
        override = store_override(uow, path, wf.clock)
        calendar = build_calendar(uow)
        uow.commit()
    wf.use_calendar(calendar)
    log.info("holiday notice for %d loaded from %s", override.year, path)
    return override, recompute_open_deadlines(wf)


def calendar_stamp(uow: UnitOfWork) -> tuple[int, str]:
    """Changes whenever a notice is loaded anywhere: how many, and the latest load time."""
    row = uow.connection.execute(
        select(func.count(), func.max(overrides_table.c.loaded_at)).select_from(overrides_table)
    ).one()
    return int(row[0]), str(row[1])


def refresh_calendar(wf: Workflow, known: tuple[int, str] | None) -> tuple[int, str]:
    """Pick up notices another node loaded (the sweeper calls this each pass); returns the new stamp."""
    with UnitOfWork(wf.engine, read_only=True) as uow:
        stamp = calendar_stamp(uow)
        if stamp != known:  # also on a sweeper's first pass: this node's calendar may predate the stamp
            wf.use_calendar(build_calendar(uow))
            log.info("holiday notices changed in the database; calendar reloaded")
    return stamp
