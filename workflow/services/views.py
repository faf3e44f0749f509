"""Plain JSON-ready views of appeals, events and definitions, shared by the CLI, the API and pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from workflow.domain.appeal import AppealRecord, EventRecord
from workflow.domain.authorization import Action, ActionKind
from workflow.domain.sla import SlaPlanner, status_at, working_time_left
from workflow.domain.spec import AppealDefinition, FieldSpec, TransitionSpec, pick_title
from workflow.local_time import SHANGHAI as SHANGHAI  # re-exported: pages import the zone from here
from workflow.local_time import shanghai_iso
from workflow.services.clocks import clocks_of


def local_time(moment: datetime | None) -> str | None:
    """ISO 8601 in Asia/Shanghai: what people read; the offset keeps it exact."""
    return shanghai_iso(moment) if moment is not None else None


def field_view(spec: FieldSpec, locale: str = "zh-CN") -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": spec.name,
        "type": spec.type.value,
        "required": spec.required,
        "title": pick_title(spec.title, locale),
        "choices": list(spec.choices),
    }
    if spec.choice_titles:
        view["choice_titles"] = {c: pick_title(spec.choice_titles[c], locale) for c in spec.choices}
    for key, value in (
        ("min_length", spec.min_length),
        ("max_length", spec.max_length),
        ("min", spec.minimum),
        ("max", spec.maximum),
    ):
        if value is not None:
            view[key] = value
    return view


def transition_view(spec: TransitionSpec, locale: str = "zh-CN") -> dict[str, Any]:
    return {
        "trigger": spec.trigger,
        "title": pick_title(spec.title, locale),
        "sources": list(spec.sources),
        "dest": spec.dest,
        "roles": sorted(spec.roles),
        "guards": list(spec.guards),
        "required_fields": [f.name for f in spec.fields if f.required],
        "fields": [field_view(f, locale) for f in spec.fields],
        "comment_required": spec.comment.value == "required",
    }


# The engine's own moves, titled as pages show them.
MOVE_TITLES = {
    "escalate": {"zh-CN": "上报上一级", "en": "Escalate one level up"},
    "send_down": {"zh-CN": "交下一级办理", "en": "Send down one level"},
    "assign": {"zh-CN": "转交他人", "en": "Assign to someone else"},
    "comment": {"zh-CN": "添加备注", "en": "Add a comment"},
}
LEVEL_NAMES = {
    "building": {"zh-CN": "楼宇", "en": "building"},
    "community": {"zh-CN": "社区", "en": "community"},
    "subdistrict": {"zh-CN": "街道", "en": "sub-district"},
    "district": {"zh-CN": "区级", "en": "district"},
}


def action_view(action: Action, state: str, locale: str = "zh-CN") -> dict[str, Any]:
    """One thing the caller may do now, in one shape for every kind: a definition's trigger (`kind`
    "transition", the keys of `transition_view`), a chain move ("chain": escalate and send_down take a required
    reason and name the `level` they lead to, assign a required `username` out of `targets`) or "comment"."""
    if action.transition is not None:
        return {"action": action.name, "kind": action.kind, **transition_view(action.transition, locale)}
    fields: list[dict[str, Any]] = []
    if action.name == "assign":
        fields.append(
            {
                "name": "username",
                "type": "choice",
                "required": True,
                "title": "交给" if locale != "en" else "Give it to",
                "choices": [t.username for t in action.targets],
                "choice_titles": {t.username: f"{t.display_name} · {t.username}" for t in action.targets},
            }
        )
    elif action.kind == ActionKind.COMMENT:
        fields.append(
            {
                "name": "text",
                "type": "text",
                "required": True,
                "title": pick_title(MOVE_TITLES["comment"], locale),
                "choices": [],
                "max_length": 4000,
            }
        )
    view: dict[str, Any] = {
        "action": action.name,
        "kind": action.kind,
        "trigger": action.name,
        "title": pick_title(MOVE_TITLES[action.name], locale),
        "sources": [state],
        "dest": state,  # the state stays; the holder changes
        "roles": sorted(action.roles),
        "guards": [],
        "required_fields": [f["name"] for f in fields],
        "fields": fields,
        "comment_required": action.comment_required,
    }
    if action.level is not None:
        view["level"] = action.level.value
        view["level_title"] = pick_title(LEVEL_NAMES[action.level.value], locale)
    if action.name == "assign":
        view["targets"] = [
            {"username": t.username, "display_name": t.display_name, "role": t.role} for t in action.targets
        ]
    return view


def definition_view(definition: AppealDefinition, version: int | None = None, locale: str = "zh-CN") -> dict[str, Any]:
    return {
        "name": definition.name,
        "version": version if version is not None else definition.version,
        "declared_version": definition.version,
        "title": dict(definition.title),
        "prefix": definition.prefix,
        "start_level": definition.start_level.value,
        "initial": definition.initial,
        "time_limit": str(definition.time_limit) if definition.time_limit else None,
        "reminders": list(definition.reminders),
        "fields": [field_view(f, locale) for f in definition.fields],
        "rules": [
            {"field": r.field, "op": r.op.value, "other": r.other, "message": pick_title(r.message, locale)}
            for r in definition.rules
        ],
        "materials": [{"name": m.name, "title": pick_title(m.title, locale)} for m in definition.materials],
        "states": [
            {
                "name": s.name,
                "title": pick_title(s.title, locale),
                "role": s.role,
                "terminal": s.terminal,
                "clock": s.clock.value,
                "limit": str(s.limit) if s.limit else None,
            }
            for s in definition.states.values()
        ],
        "transitions": [transition_view(t, locale) for t in definition.transitions],
    }


def appeal_view(
    appeal: AppealRecord,
    definition: AppealDefinition,
    *,
    definition_version: int,
    names: dict[int, str],
    units: dict[int, Any],
    enterprise_name: str,
    enterprise_credit_code: str | None = None,
    locale: str = "zh-CN",
    sla: dict[str, Any] | None = None,
) -> dict[str, Any]:
    unit = units.get(appeal.unit_id)
    return {
        "number": appeal.number,
        "type": appeal.type,
        "type_title": pick_title(definition.title, locale),
        "definition": {"name": definition.name, "version": definition_version},
        "state": appeal.state,
        "state_title": pick_title(definition.states[appeal.state].title, locale),
        "is_open": appeal.is_open,
        "level": appeal.level,
        "unit": {"id": appeal.unit_id, "code": unit.code if unit else None, "name": unit.name if unit else None},
        "enterprise": {"id": appeal.enterprise_id, "name": enterprise_name, "credit_code": enterprise_credit_code},
        "assignee": names.get(appeal.assignee_id) if appeal.assignee_id else None,
        "submitted_by": names.get(appeal.submitted_by_id),
        "channel": appeal.channel,
        "data": dict(appeal.data),
        "version": appeal.version,
        "created_at": local_time(appeal.created_at),
        "updated_at": local_time(appeal.updated_at),
        "closed_at": local_time(appeal.closed_at),
        "sla": sla,
    }


def duration_view(span: timedelta | None) -> dict[str, Any] | None:
    """Working time as seconds for scripts and as text for people ("-1h30m" once overdue)."""
    if span is None:
        return None
    seconds = int(span.total_seconds())
    sign, rest = ("-" if seconds < 0 else ""), abs(seconds)
    hours, minutes = rest // 3600, rest % 3600 // 60
    return {"seconds": seconds, "text": f"{sign}{hours}h{minutes:02d}m"}


def sla_view(
    appeal: AppealRecord, planner: SlaPlanner, now: datetime, breaches: Sequence[Any] = ()
) -> dict[str, Any]:
    """The status is the current level's clocks; breaches are facts about the levels that let them happen:
    listed with their due instants, and the latest one before this level's clock started is the mark
    `breached_earlier_at`."""
    clocks = clocks_of(appeal)
    entered = clocks.state_entered_at
    earlier = [b for b in breaches if b.due_at <= entered and b.due_at <= now]
    return {
        "status": status_at(clocks, None, now, appeal.is_open).value,
        "clock": appeal.clock,
        "due_at": local_time(clocks.due_at),
        "at_risk_at": local_time(clocks.at_risk_at),
        "state_due_at": local_time(appeal.state_due_at),
        "overall_due_at": local_time(appeal.overall_due_at),
        "working_time_left": duration_view(working_time_left(planner.calendar, clocks, now)),
        "overall_used": duration_view(clocks.used_at(planner.calendar, now)),
        "breached_at": local_time(appeal.breached_at),  # the first breach's due instant
        "breaches": [breach_view(b) for b in breaches if b.due_at <= now],
        "breached_earlier_at": earlier[-1].level if earlier else None,
        "provisional": appeal.provisional,
        "first_response_at": local_time(appeal.first_response_at),
        "decided_at": local_time(appeal.decided_at),
    }


def event_view(event: EventRecord, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": event.id,
        "version": event.version,
        "at": local_time(event.at),
        "recorded_at": local_time(event.recorded_at or event.at),
        "actor": names.get(event.actor_id) if event.actor_id else None,
        "kind": event.kind,
        "trigger": event.trigger,
        "from": event.from_state,
        "to": event.to_state,
        "comment": event.comment,
        "payload": dict(event.payload),
    }


def breach_view(breach: Any) -> dict[str, Any]:
    """One limit that ran out: where, which clock, its due instant, and how late a sweep found it."""
    return {
        "level": breach.level,
        "unit_id": breach.unit_id,
        "clock": breach.clock,
        "due_at": local_time(breach.due_at),
        "detected_at": local_time(breach.detected_at),
        "late": duration_view(timedelta(seconds=breach.late_s)),
    }
