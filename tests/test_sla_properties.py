"""Properties of the time-limit arithmetic: random holiday notices, random walks through outdoor_event_permit.

Pure domain, no database. Each example builds a 2026 calendar from the shipped notice plus random extra
days off and make-up working days, then walks an appeal through the definition (pauses, decisions,
withdrawals and level changes included) with random gaps between the moves. Working time used is checked
against an oracle written here from the office hours and the example's own list of days, not against
WorkingCalendar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from workflow.definitions import load_definitions
from workflow.domain.calendar import WorkingCalendar, YearOverride, load_override
from workflow.domain.sla import Clocks, SlaPlanner, SlaStatus, status_at
from workflow.domain.spec import ClockMode

SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[1] / "definitions"
(DEFINITION,) = load_definitions([ROOT / "outdoor_event_permit.yaml"])
NOTICE_2026 = load_override(ROOT / "calendar" / "cn-2026.yaml")
OFFICE = ((time(9), time(12)), (time(14), time(17, 30)))
TOTAL = timedelta(days=0, hours=32, minutes=30)  # outdoor_event_permit's 5 d at 6.5 h a day
RANK = {SlaStatus.ON_TRACK: 0, SlaStatus.AT_RISK: 1, SlaStatus.BREACHED: 2}
ESCALATE = "escalate"  # a move to another chain level: the same state entered again
WITHDRAW_CHOICE = 19  # one choice in twenty withdraws, so that most walks get somewhere first

# Random extra days live in the last quarter of 2026, where the walks start and (almost always) end.
QUARTER = [date(2026, 10, 1) + timedelta(days=n) for n in range(92)]
FREE_WEEKDAYS = [d for d in QUARTER if d.weekday() < 5 and d not in NOTICE_2026.holidays]
FREE_WEEKENDS = [d for d in QUARTER if d.weekday() >= 5 and d not in NOTICE_2026.holidays | NOTICE_2026.workdays]

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible, never flaky
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Year:
    """The example's calendar and, separately, the days it says are off and on."""

    calendar: WorkingCalendar
    holidays: frozenset[date]
    workdays: frozenset[date]

    def is_working_day(self, day: date) -> bool:
        if day.year != 2026:  # a long walk may end in 2027, which only the holidays package estimates
            return self.calendar.is_working_day(day)
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)

    def working_time(self, a: datetime, b: datetime) -> timedelta:
        """The oracle: office hours of working days in [a, b), counted day by day."""
        total = timedelta(0)
        day = a.astimezone(SH).date()
        while day <= b.astimezone(SH).date():
            if self.is_working_day(day):
                for start, end in OFFICE:
                    lo = max(a, datetime.combine(day, start, SH))
                    hi = min(b, datetime.combine(day, end, SH))
                    total += max(hi - lo, timedelta(0))
            day += timedelta(days=1)
        return total


def year_of(extra_off: Sequence[date], extra_on: Sequence[date]) -> Year:
    holidays = {**NOTICE_2026.holidays, **{d: "随机假日" for d in extra_off}}
    workdays = {**NOTICE_2026.workdays, **{d: "随机调休" for d in extra_on}}
    override = YearOverride(2026, holidays, workdays, source="hypothesis")
    return Year(WorkingCalendar([override]), frozenset(holidays), frozenset(workdays))


extra_days_off = st.lists(st.sampled_from(FREE_WEEKDAYS), max_size=12, unique=True)
extra_days_on = st.lists(st.sampled_from(FREE_WEEKENDS), max_size=8, unique=True)
starts = st.builds(
    lambda day, minute: (
        datetime.combine(date(2026, 10, 8) + timedelta(days=day), time(0), SH) + timedelta(minutes=minute)
    ),
    st.integers(0, 23),
    st.integers(0, 24 * 60 - 1),
)
# (which move, seconds of wall time before it): minutes, hours or a few days between moves.
gaps = st.one_of(st.integers(0, 4 * 3600), st.integers(0, 2 * 86400), st.integers(86400, 3 * 86400))
moves = st.lists(st.tuples(st.integers(0, WITHDRAW_CHOICE), gaps), max_size=10)


@dataclass(frozen=True)
class Step:
    at: datetime
    state: str
    clocks: Clocks


def walk(year: Year, start: datetime, plan: Sequence[tuple[int, int]]) -> list[Step]:
    """Submit at `start`, then make each planned move after its gap, as the services would."""
    planner = SlaPlanner(year.calendar)
    steps = [Step(start, DEFINITION.initial, planner.submitted(DEFINITION, start).clocks)]
    for choice, gap in plan:
        current = steps[-1]
        if DEFINITION.is_terminal(current.state):
            break
        possible = [t.trigger for t in DEFINITION.transitions_from(current.state) if t.trigger != "withdraw"]
        if DEFINITION.states[current.state].clock is not ClockMode.STOPPED:
            possible.append(ESCALATE)
        withdraw = DEFINITION.transition(current.state, "withdraw")
        trigger = "withdraw" if choice == WITHDRAW_CHOICE and withdraw else possible[choice % len(possible)]
        state = current.state if trigger == ESCALATE else DEFINITION.transition(current.state, trigger).dest
        now = current.at + timedelta(seconds=gap)
        steps.append(Step(now, state, planner.entered(DEFINITION, current.clocks, state, now).clocks))
    return steps


def probes(steps: list[Step]) -> list[tuple[datetime, Step]]:
    """Instants to look at, each with the step in force then: inside every segment and long after the last."""
    found: list[tuple[datetime, Step]] = []
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        if following is None:
            ends = [step.at + timedelta(hours=h) for h in (0, 1, 5, 24, 72, 21 * 24)]
            found.extend((t, step) for t in ends)
        elif following.at > step.at:
            span = following.at - step.at
            inside = {
                step.at,
                step.at + timedelta(seconds=1),
                step.at + span / 3,
                step.at + span / 2,
                following.at - timedelta(seconds=1),
            }
            found.extend((t, step) for t in sorted(inside) if step.at <= t < following.at)
    return found


def running(state: str) -> bool:
    return DEFINITION.states[state].clock is ClockMode.RUNNING


def used_by_oracle(year: Year, steps: list[Step], until: datetime) -> timedelta:
    total = timedelta(0)
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        if running(step.state) and step.at < until:
            end = until if following is None else min(following.at, until)
            total += year.working_time(step.at, end)
    return total


@SETTINGS
@given(extra_days_off, extra_days_on, starts, moves)
def test_overall_time_used_grows_only_in_office_hours_of_working_days_while_the_clock_runs(
    extra_off: list[date], extra_on: list[date], start: datetime, plan: list[tuple[int, int]]
) -> None:
    year = year_of(extra_off, extra_on)
    steps = walk(year, start, plan)
    previous: tuple[datetime, timedelta] | None = None
    for at, step in probes(steps):
        used = step.clocks.used_at(year.calendar, at)
        assert used == used_by_oracle(year, steps, at), f"{step.state} at {at}: {used}"
        if previous is not None:
            before_at, before = previous
            assert used >= before, f"used time fell from {before} at {before_at} to {used} at {at}"
            if year.working_time(before_at, at) == timedelta(0):
                assert used == before, f"{used - before} counted between {before_at} and {at}, outside working time"
        if not year.is_working_day(at.astimezone(SH).date()):
            day_start = datetime.combine(at.astimezone(SH).date(), time(0), SH)
            assert step.clocks.used_at(year.calendar, max(day_start, step.at)) == used, f"{at} is a day off"
        previous = (at, used)


@SETTINGS
@given(extra_days_off, extra_days_on, starts, moves)
def test_a_paused_appeal_is_never_breached_however_long_it_waits(
    extra_off: list[date], extra_on: list[date], start: datetime, plan: list[tuple[int, int]]
) -> None:
    year = year_of(extra_off, extra_on)
    for at, step in probes(walk(year, start, plan)):
        if step.clocks.clock is ClockMode.PAUSED:
            assert status_at(step.clocks, None, at) is SlaStatus.PAUSED, f"{step.state} at {at}"
            assert (step.clocks.due_at, step.clocks.overall_running_since) == (None, None)
            assert step.clocks.used_at(year.calendar, at) == step.clocks.overall_used


@SETTINGS
@given(extra_days_off, extra_days_on, starts, moves, st.lists(st.integers(0, 10 * 86400), min_size=2, max_size=12))
def test_with_a_running_clock_the_status_only_moves_on_track_at_risk_breached(
    extra_off: list[date], extra_on: list[date], start: datetime, plan: list[tuple[int, int]], offsets: list[int]
) -> None:
    year = year_of(extra_off, extra_on)
    last = walk(year, start, plan)[-1]
    if last.clocks.clock is not ClockMode.RUNNING:
        return
    clocks = last.clocks
    seen = [status_at(clocks, None, last.at + timedelta(seconds=s)) for s in sorted(offsets)]
    assert all(s in RANK for s in seen), seen
    assert [RANK[s] for s in seen] == sorted(RANK[s] for s in seen), f"{last.state}: {seen}"
    assert clocks.due_at is not None, f"a running clock in {last.state} has no deadline"
    assert status_at(clocks, None, clocks.due_at) is SlaStatus.BREACHED
    assert status_at(clocks, None, clocks.due_at - timedelta(microseconds=1)) is not SlaStatus.BREACHED
    if clocks.at_risk_at is not None and clocks.at_risk_at < clocks.due_at:
        assert status_at(clocks, None, clocks.at_risk_at) is SlaStatus.AT_RISK
    if clocks.overall_due_at is not None and clocks.overall_used < TOTAL:
        running_since = clocks.overall_running_since
        assert running_since is not None
        spent = clocks.overall_used + year.working_time(running_since, clocks.overall_due_at)
        assert spent == TOTAL, f"the overall deadline falls after {spent} of working time, not {TOTAL}"


@settings(SETTINGS, phases=[Phase.explicit, Phase.generate])  # no shrinking: the first finding is enough
@given(extra_days_off, extra_days_on, starts, moves)
# Thursday 15 October 10:00: pre-check at once, back to the enterprise on Wednesday 21 October 11:00 with
# 27 h of the 32.5 h used, materials in on Thursday 22 October 10:00.
@example([], [], datetime(2026, 10, 15, 10, tzinfo=SH), [(0, 0), (0, 6 * 86400 + 3600), (0, 23 * 3600)])
def test_an_appeal_past_its_last_overall_reminder_is_never_on_track(
    extra_off: list[date], extra_on: list[date], start: datetime, plan: list[tuple[int, int]]
) -> None:
    year = year_of(extra_off, extra_on)
    for at, step in probes(walk(year, start, plan)):
        clocks = step.clocks
        if clocks.clock is not ClockMode.RUNNING or clocks.used_at(year.calendar, at) < TOTAL * 80 / 100:
            continue
        status = status_at(clocks, None, at)
        assert status in (SlaStatus.AT_RISK, SlaStatus.BREACHED), f"{step.state} at {at}: {status}"


@SETTINGS
@given(extra_days_off, extra_days_on, starts, moves)
def test_an_appeal_with_a_due_instant_has_an_at_risk_instant_no_later(
    extra_off: list[date], extra_on: list[date], start: datetime, plan: list[tuple[int, int]]
) -> None:
    """The SLA summary counts "past its due instant" inside the "past its at-risk instant" index range
    (services/sla_report.py); that is right only while this holds for every clock the planner writes."""
    for step in walk(year_of(extra_off, extra_on), start, plan):
        clocks = step.clocks
        if clocks.due_at is None:
            continue
        assert clocks.at_risk_at is not None and clocks.at_risk_at <= clocks.due_at, (step.state, clocks)
