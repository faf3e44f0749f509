"""Bridges the SLA planner and appeal rows: the clock columns a change writes, and its timers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from workflow.domain.appeal import AppealRecord
from workflow.domain.sla import ClockChange, Clocks
from workflow.domain.spec import ClockMode


def clocks_of(appeal: AppealRecord) -> Clocks:
    return Clocks(
        clock=ClockMode(appeal.clock),
        state_entered_at=appeal.state_entered_at or appeal.created_at,
        state_due_at=appeal.state_due_at,
        overall_used=timedelta(seconds=appeal.overall_used_s),
        overall_running_since=appeal.overall_running_since,
        overall_due_at=appeal.overall_due_at,
        state_at_risk_at=appeal.state_at_risk_at,
        overall_at_risk_at=appeal.overall_at_risk_at,
        provisional=appeal.provisional,
    )


def clock_columns(clocks: Clocks) -> dict[str, Any]:
    return {
        "clock": clocks.clock.value,
        "state_entered_at": clocks.state_entered_at,
        "state_due_at": clocks.state_due_at,
        "state_at_risk_at": clocks.state_at_risk_at,
        "overall_used_s": int(clocks.overall_used.total_seconds()),
        "overall_running_since": clocks.overall_running_since,
        "overall_due_at": clocks.overall_due_at,
        "overall_at_risk_at": clocks.overall_at_risk_at,
        "due_at": clocks.due_at,
        "at_risk_at": clocks.at_risk_at,
        "provisional": clocks.provisional,
    }


def unchanged_columns(appeal: AppealRecord) -> dict[str, Any]:
    """Everything the hot-path UPDATE writes, as the appeal has it now."""
    return {
        "state": appeal.state,
        "level": appeal.level,
        "unit_id": appeal.unit_id,
        "assignee_id": appeal.assignee_id,
        "data": appeal.data,
        "is_open": appeal.is_open,
        "closed_at": appeal.closed_at,
        **clock_columns(clocks_of(appeal)),
        "breached_at": appeal.breached_at,
        "first_response_at": appeal.first_response_at,
        "first_response_s": None,
        "decided_at": appeal.decided_at,
        "decision_s": None,
    }


def change_columns(change: ClockChange, now: datetime) -> dict[str, Any]:
    columns = clock_columns(change.clocks)
    if change.decided:
        columns.update(decided_at=now, decision_s=int(change.clocks.overall_used.total_seconds()))
    return columns


def timer_rows(change: ClockChange) -> list[dict[str, Any]]:
    return [{"clock": t.clock.value, "threshold": t.threshold, "due_at": t.due_at} for t in change.timers]
