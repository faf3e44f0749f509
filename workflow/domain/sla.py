"""Time-limit arithmetic: when an appeal's limits fall due, which reminders to arm, and its status.

Two clocks run on an appeal: the state clock (this state's limit, restarted when the appeal enters a
state or a new chain level) and the overall clock (submission to decision, paused while the appeal
waits on the enterprise). Both count working time on the calendar; both are stored on the appeal row
so that the sweeper and the dashboards read them without recomputing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from workflow.domain.calendar import WorkingCalendar
from workflow.domain.durations import WorkingDuration
from workflow.domain.spec import AppealDefinition, ClockMode

BREACH = 100


class SlaStatus(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"
    STOPPED = "stopped"  # decided: the clock no longer runs


class TimerClock(StrEnum):
    STATE = "state"
    OVERALL = "overall"


@dataclass(frozen=True)
class TimerPlan:
    clock: TimerClock
    threshold: int  # percent of the limit; 100 is the breach
    due_at: datetime


@dataclass(frozen=True)
class Clocks:
    """The time-limit columns of an appeal."""

    clock: ClockMode
    state_entered_at: datetime
    state_due_at: datetime | None = None
    overall_used: timedelta = timedelta(0)
    overall_running_since: datetime | None = None
    overall_due_at: datetime | None = None
    state_at_risk_at: datetime | None = None
    overall_at_risk_at: datetime | None = None
    provisional: bool = False

    @property
    def due_at(self) -> datetime | None:
        """The nearest deadline of the two clocks."""
        return _earliest(self.state_due_at, self.overall_due_at)

    @property
    def at_risk_at(self) -> datetime | None:
        return _earliest(self.state_at_risk_at, self.overall_at_risk_at)

    def used_at(self, calendar: WorkingCalendar, now: datetime) -> timedelta:
        """Overall working time used up to `now`, counting the running segment."""
        running = self.overall_running_since
        return self.overall_used + (calendar.between(running, now) if running is not None else timedelta(0))


@dataclass(frozen=True)
class ClockChange:
    clocks: Clocks
    timers: tuple[TimerPlan, ...]
    cancel_state_timers: bool
    cancel_overall_timers: bool
    decided: bool  # the overall clock stopped for good: the appeal has its decision


class SlaPlanner:
    """Works out the clocks and timers of an appeal as it moves; pure, calendar injected."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar

    def working(self, duration: WorkingDuration) -> timedelta:
        return duration.to_timedelta(self.calendar.hours.per_day)

    def submitted(self, definition: AppealDefinition, now: datetime) -> ClockChange:
        start = Clocks(clock=ClockMode.STOPPED, state_entered_at=now)
        return self._enter(definition, start, definition.initial, now, restart_state=True, first=True)

    def entered(self, definition: AppealDefinition, previous: Clocks, state: str, now: datetime) -> ClockChange:
        """The appeal moved to `state`, or to another chain level in it: the state clock restarts."""
        return self._enter(definition, previous, state, now, restart_state=True, first=False)

    def _enter(
        self,
        definition: AppealDefinition,
        previous: Clocks,
        state: str,
        now: datetime,
        *,
        restart_state: bool,
        first: bool,
    ) -> ClockChange:
        mode = definition.states[state].clock
        was_running = previous.clock is ClockMode.RUNNING
        timers: list[TimerPlan] = []

        # Overall clock: fold the running segment into `used` only when the clock changes mode,
        # so running-to-running moves keep their timers untouched.
        used, running_since = previous.overall_used, previous.overall_running_since
        overall_due, overall_at_risk = previous.overall_due_at, previous.overall_at_risk_at
        cancel_overall = False
        if was_running and mode is not ClockMode.RUNNING:
            used = previous.used_at(self.calendar, now)
            running_since, overall_due, overall_at_risk = None, None, None
            cancel_overall = True
        elif mode is ClockMode.RUNNING and (first or not was_running):
            running_since = now
            overall_due, overall_at_risk, overall_timers = self._overall(definition, used, now)
            timers.extend(overall_timers)

        state_due, state_at_risk, state_timers = self._state(definition, state, now)
        timers.extend(state_timers)
        clocks = self._clocks(
            mode, now, state_due, state_at_risk, used, running_since, overall_due, overall_at_risk, now
        )
        decided = mode is ClockMode.STOPPED and (was_running or previous.clock is ClockMode.PAUSED)
        return ClockChange(
            clocks, tuple(timers), cancel_state_timers=not first, cancel_overall_timers=cancel_overall, decided=decided
        )

    def recomputed(self, definition: AppealDefinition, previous: Clocks, state: str, now: datetime) -> ClockChange:
        """The same clocks worked out again on a changed calendar, from when each started."""
        if previous.clock is not ClockMode.RUNNING:
            return ClockChange(previous, (), False, False, False)
        state_due, state_at_risk, timers = self._state(definition, state, previous.state_entered_at)
        running_since = previous.overall_running_since
        overall_due = overall_at_risk = None
        if running_since is not None:
            overall_due, overall_at_risk, overall_timers = self._overall(
                definition, previous.overall_used, running_since
            )
            timers = [*timers, *overall_timers]
        clocks = self._clocks(
            previous.clock,
            previous.state_entered_at,
            state_due,
            state_at_risk,
            previous.overall_used,
            running_since,
            overall_due,
            overall_at_risk,
            now,
        )
        return ClockChange(clocks, tuple(timers), True, True, False)

    def _state(
        self, definition: AppealDefinition, state: str, anchor: datetime
    ) -> tuple[datetime | None, datetime | None, list[TimerPlan]]:
        spec = definition.states[state]
        if spec.clock is not ClockMode.RUNNING or spec.limit is None:
            return None, None, []
        limit = self.working(spec.limit)
        timers = [
            TimerPlan(TimerClock.STATE, pct, self.calendar.add(anchor, limit * pct / 100))
            for pct in (*definition.reminders, BREACH)
        ]
        return timers[-1].due_at, _at(timers, _at_risk_pct(definition)), timers

    def _overall(
        self, definition: AppealDefinition, used: timedelta, anchor: datetime
    ) -> tuple[datetime | None, datetime | None, list[TimerPlan]]:
        if definition.time_limit is None:
            return None, None, []
        total = self.working(definition.time_limit)

        def at(pct: int) -> datetime:
            return self.calendar.add(anchor, max(total * pct / 100 - used, timedelta(0)))

        # Thresholds passed before a pause stay passed: not reminded again, the breach not climbed again,
        # but the appeal is still at risk (or breached) from the moment it resumes.
        timers = [
            TimerPlan(TimerClock.OVERALL, pct, at(pct))
            for pct in (*definition.reminders, BREACH)
            if total * pct / 100 > used
        ]
        return at(BREACH), at(_at_risk_pct(definition)), timers

    def _clocks(
        self,
        mode: ClockMode,
        entered: datetime,
        state_due: datetime | None,
        state_at_risk: datetime | None,
        used: timedelta,
        running_since: datetime | None,
        overall_due: datetime | None,
        overall_at_risk: datetime | None,
        now: datetime,
    ) -> Clocks:
        dues = [d for d in (state_due, overall_due) if d is not None]
        return Clocks(
            clock=mode,
            state_entered_at=entered,
            state_due_at=state_due,
            overall_used=used,
            overall_running_since=running_since,
            overall_due_at=overall_due,
            state_at_risk_at=state_at_risk,
            overall_at_risk_at=overall_at_risk,
            provisional=self.calendar.is_provisional(now, max(dues)) if dues else False,
        )


def _at_risk_pct(definition: AppealDefinition) -> int:
    """An appeal is at risk once its last reminder before the breach has fallen due."""
    return max(definition.reminders, default=BREACH)


def _at(timers: list[TimerPlan], threshold: int) -> datetime | None:
    return next((t.due_at for t in timers if t.threshold == threshold), None)


def status_at(clocks: Clocks, breached_at: datetime | None, now: datetime, is_open: bool = True) -> SlaStatus:
    if not is_open or clocks.clock is ClockMode.STOPPED:
        return SlaStatus.STOPPED
    if clocks.clock is ClockMode.PAUSED:
        return SlaStatus.PAUSED
    if (breached_at is not None and breached_at <= now) or (clocks.due_at is not None and clocks.due_at <= now):
        return SlaStatus.BREACHED
    if clocks.at_risk_at is not None and clocks.at_risk_at <= now:
        return SlaStatus.AT_RISK
    return SlaStatus.ON_TRACK


def working_time_left(calendar: WorkingCalendar, clocks: Clocks, now: datetime) -> timedelta | None:
    """Working time until the nearest due instant; negative once it has passed."""
    if clocks.due_at is None or clocks.clock is not ClockMode.RUNNING:
        return None
    if clocks.due_at >= now:
        return calendar.between(now, clocks.due_at)
    return -calendar.between(clocks.due_at, now)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)
