"""Which working-time calendar the engine uses: the holidays package, shipped notices, loaded notices.

Notices loaded with `appeals calendar load` live in the database so that every node sees them; a
loaded year replaces the estimate, and open appeals' deadlines are worked out again.
"""

from __future__ import annotations

import functools
import logging
import os
from importlib import resources
from pathlib import Path

from sqlalchemy import delete, insert, select

from workflow.clock import Clock
from workflow.domain.calendar import (
    WorkingCalendar,
    WorkingHours,
    YearOverride,
    load_override,
    load_override_text,
    load_overrides,
)
from workflow.persistence.tables import CalendarOverride
from workflow.persistence.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
HOURS_VARIABLE = "APPEALS_WORKING_HOURS"
overrides_table = CalendarOverride.__table__


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
