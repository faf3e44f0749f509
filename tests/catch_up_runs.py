"""Run one history of appeals on a fresh database, swept every 30 minutes or caught up after downtime.

A history is a list of submissions and actions at instants on a 30-minute grid. Three ways to sweep it:
- "steady": a sweeper runs every 30 minutes from the first submission to the end (a sweep that would find
  nothing due is not run: it would change nothing);
- "catch_up": every node is down except at the history's own instants: one sweep just before each action and
  one at the end;
- "four": as catch_up, but four sweepers, each with its own engine, sweep at once.
Actions always come right after a sweep at their instant, so every mode shows them the same appeal.
The outcome is read back as facts that do not depend on when the sweep ran: levels, audit events by the
instant they took effect, notices by the instant they are about.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from tests.conftest import OUTDOOR_EVENT
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.errors import WorkflowError
from workflow.persistence.database import create_database_engine
from workflow.persistence.repository import appeals, events, notices, timers, users
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.calendars import load_notice
from workflow.services.demo_data import load_demo
from workflow.services.sweeper import Sweeper, SweepReport
from workflow.services.workflow import Workflow

log = logging.getLogger(__name__)
STEP = timedelta(minutes=30)
MODES = ("steady", "catch_up", "four")
SWEEPERS = 4
NOTICE_2026 = Path(__file__).resolve().parents[1] / "definitions" / "calendar" / "cn-2026.yaml"


@dataclass(frozen=True)
class Submission:
    at: datetime
    enterprise: int


@dataclass(frozen=True)
class Action:
    at: datetime
    appeal: int  # index into the history's submissions
    choice: int  # which of the actions open to the appeal's holder


@dataclass(frozen=True)
class History:
    submissions: Sequence[Submission]
    actions: Sequence[Action] = ()
    days_off: Sequence[date] = ()  # extra holidays on top of the 2026 notice
    until: datetime | None = None


@dataclass
class Outcome:
    levels: dict[str, str]
    events: Counter[tuple[Any, ...]]
    notices: Counter[tuple[Any, ...]]
    reports: list[SweepReport] = field(default_factory=list)

    @property
    def same_facts(self) -> tuple[Any, ...]:
        return self.levels, self.events, self.notices


def notice_file(folder: Path, days_off: Sequence[date]) -> Path:
    """The 2026 notice with extra days off, as a loadable notice file."""
    text = NOTICE_2026.read_text(encoding="utf-8")
    extra = "".join(f"  - {{name: 随机假日, from: {d.isoformat()}, to: {d.isoformat()}}}\n" for d in days_off)
    path = folder / "cn-2026.yaml"
    path.write_text(text.replace("workdays:\n", extra + "workdays:\n", 1), encoding="utf-8")
    return path


def run(history: History, mode: str, url: str, engine: Engine, start: datetime, folder: Path) -> Outcome:
    """Play the history on the (empty, migrated) database behind `engine` and read the outcome back."""
    clock = FrozenClock(start)
    wf = connect(engine=engine, clock=clock)
    with UnitOfWork(engine) as uow:
        load_demo(uow, clock)
        uow.commit()
    if history.days_off:
        load_notice(wf, notice_file(folder, history.days_off))
    moments: dict[datetime, list[Submission | Action]] = {}
    for item in [*history.submissions, *history.actions]:
        moments.setdefault(item.at, []).append(item)
    until = history.until or max(moments)
    numbers: dict[int, str] = {}
    reports: list[SweepReport] = []
    nodes = FourNodes(wf, url, reports) if mode == "four" else None
    sweeper = Sweeper(wf, node=mode)
    sweep: Callable[[], None] = nodes or (lambda: reports.append(sweeper.sweep()))
    try:
        swept_to: datetime | None = None
        for at in sorted(moments):
            swept_to = _sweep_until(mode, wf, clock, sweep, swept_to, at)
            for item in moments[at]:
                if isinstance(item, Submission):
                    numbers[history.submissions.index(item)] = _submit(wf, item.enterprise)
                elif item.appeal in numbers:
                    _act(wf, numbers[item.appeal], item.choice)
        _sweep_until(mode, wf, clock, sweep, swept_to, until)
    finally:
        if nodes is not None:
            nodes.close()
    return Outcome(*_read(engine, set(numbers.values())), reports=reports)


def _sweep_until(
    mode: str,
    wf: Workflow,
    clock: FrozenClock,
    sweep: Callable[[], None],
    swept_to: datetime | None,
    until: datetime,
) -> datetime:
    """Sweep as the mode does up to and including `until`; the last instant swept."""
    if mode == "steady" and swept_to is not None:
        moment = swept_to + STEP
        while moment < until:
            due = _earliest_due(wf.engine)
            if due is None or due > until:
                break
            if due > moment:  # nothing falls due before the grid point after `due`: those sweeps find nothing
                moment += STEP * -(-(due - moment) // STEP)
                if moment >= until:
                    break
            clock.set(moment)
            sweep()
            moment += STEP
    clock.set(until)
    sweep()
    return until


def _earliest_due(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        query = select(func.min(timers.c.due_at)).where(timers.c.status.in_(["pending", "claimed"]))
        return conn.execute(query).scalar()


class FourNodes:
    """Four sweepers, each with its own engine, that sweep at once when called."""

    def __init__(self, wf: Workflow, url: str, reports: list[SweepReport]) -> None:
        self.engines = [create_database_engine(url) for _ in range(SWEEPERS)]
        # Each node its own engine, Workflow and sweeper; the loaded definitions are shared to save the time.
        self.sweepers = [
            Sweeper(Workflow(engine, wf.registry, wf.clock, wf.planner), node=f"node{n}", batch=3)  # they take turns
            for n, engine in enumerate(self.engines)
        ]
        self.reports = reports

    def __call__(self) -> None:
        barrier = threading.Barrier(SWEEPERS)
        found: list[SweepReport | BaseException] = []

        def node(sweeper: Sweeper) -> None:
            try:
                barrier.wait(timeout=30)
                found.append(sweeper.sweep())
            except BaseException as exc:  # the test asserts on it
                found.append(exc)

        threads = [threading.Thread(target=node, args=(sweeper,)) for sweeper in self.sweepers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        failures = [f for f in found if isinstance(f, BaseException)]
        if failures:
            raise failures[0]
        assert len(found) == SWEEPERS, "a sweeper thread did not finish"
        self.reports.extend(f for f in found if isinstance(f, SweepReport))

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()


def _submit(wf: Workflow, enterprise: int) -> str:
    appeal = wf.submit(
        "outdoor_event_permit", enterprise_id=enterprise, as_user=f"contact-{enterprise:04d}", data=OUTDOOR_EVENT
    )
    return str(appeal["number"])


FIELDS = {"materials_complete": True, "inspection_time": "2026-12-01T10:00+08:00", "inspection_findings": "场地安全"}


def _act(wf: Workflow, number: str, choice: int) -> None:
    """The appeal's holder does one of the things open to them (or escalates by hand, if that is all)."""
    shown = wf.show(number)
    holder = shown["assignee"]
    if holder is None or not shown["is_open"]:
        return
    open_to = {a["trigger"]: a for a in wf.actions(number, as_user=holder)}
    options = [*sorted(open_to), "escalate"]
    pick = options[choice % len(options)]
    try:
        if pick == "escalate":
            wf.escalate(number, as_user=holder, reason="超出本级权限")
        else:
            wanted = {f["name"] for f in open_to[pick]["fields"]}
            data = {name: value for name, value in FIELDS.items() if name in wanted}
            wf.fire(number, pick, as_user=holder, comment="按规定办理", data=data or None)
    except WorkflowError as refused:  # e.g. the top of the chain: the same refusal in every mode
        log.info("history action %s on %s refused: %s", pick, number, refused)


def _read(engine: Engine, numbers: set[str]) -> tuple[dict[str, str], Counter[Any], Counter[Any]]:
    with engine.connect() as conn:
        levels = {r.number: r.level for r in conn.execute(select(appeals.c.number, appeals.c.level))}
        found_events = Counter(
            (r.number, r.kind, r.at.isoformat(), r.from_state, r.to_state, (r.payload or {}).get("level"))
            for r in conn.execute(
                select(
                    appeals.c.number,
                    events.c.kind,
                    events.c.at,
                    events.c.from_state,
                    events.c.to_state,
                    events.c.payload,
                ).join(appeals, appeals.c.id == events.c.appeal_id)
            )
        )
        found_notices = Counter(
            (r.username, r.kind, r.number, (r.payload or {}).get("at") or r.created_at.isoformat())
            for r in conn.execute(
                select(users.c.username, notices.c.kind, appeals.c.number, notices.c.payload, notices.c.created_at)
                .join(users, users.c.id == notices.c.recipient_id)
                .join(appeals, appeals.c.id == notices.c.appeal_id)
            )
        )
    assert set(levels) == numbers
    return levels, found_events, found_notices
