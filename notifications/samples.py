"""Sample contexts for every notice kind and definition, shaped exactly as the outbox writes them,
for `appeals notices check` and previews. They carry hostile text on purpose."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workflow.domain.appeal import AppealRecord
from workflow.domain.notices import NoticeKind
from workflow.domain.spec import AppealDefinition
from workflow.services.notify import LEVEL_TITLES, field_labels, snapshot
from workflow.services.walkthrough import sample_value

HOSTILE = "<script>alert(1)</script> {{7*7}} \r\nBcc: victim@example.com"
SAMPLE_TIME = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def sample_appeal(definition: AppealDefinition) -> AppealRecord:
    data = {f.name: sample_value(f, SAMPLE_TIME) for f in definition.fields}
    text_fields = [f.name for f in definition.fields if f.type.value in ("string", "text")]
    if text_fields:
        data[text_fields[0]] = HOSTILE
    return AppealRecord(
        id=1,
        number=f"{definition.prefix}-2026-000123",
        type=definition.name,
        definition_id=1,
        state=definition.initial,
        level="building",
        unit_id=1,
        enterprise_id=1,
        assignee_id=2,
        submitted_by_id=3,
        channel="online",
        data=data,
        version=3,
        is_open=True,
        created_at=SAMPLE_TIME,
        updated_at=SAMPLE_TIME,
        closed_at=None,
    )


def sample_context(kind: str, definition: AppealDefinition) -> dict[str, Any]:
    """The payload the outbox would hold for `kind`, plus what rendering adds (notice, recipient)."""
    appeal = sample_appeal(definition)
    view = snapshot(definition, appeal, due_at=SAMPLE_TIME, enterprise_name=f"长沙星辰科技有限公司 {HOSTILE}")
    actor = {"username": "specialist-b01", "display_name": "王芳"}
    transition = definition.transitions[0]
    for candidate in definition.transitions:
        if any(rule.kind == kind for rule in candidate.notify):
            transition = candidate
            break
    fields = {f.name: sample_value(f, SAMPLE_TIME) for f in transition.fields}
    payload: dict[str, Any]
    if kind in (NoticeKind.REMINDER, NoticeKind.BREACHED):
        payload = {
            "appeal": view,
            "clock": "state",
            "threshold": 80 if kind == NoticeKind.REMINDER else 100,
            "limit_due_at": SAMPLE_TIME.isoformat(),
        }
        if kind == NoticeKind.BREACHED:
            payload["reason"] = f"time limit breached {HOSTILE}"
    elif kind in (NoticeKind.ESCALATED, NoticeKind.ESCALATED_AWAY, NoticeKind.SENT_DOWN, NoticeKind.SENT_DOWN_AWAY):
        payload = {
            "appeal": {**view, "level": "community", "level_title": LEVEL_TITLES["community"]},  # type: ignore[index]
            "from_level": "building",
            "from_level_title": LEVEL_TITLES["building"],  # type: ignore[index]
            "reason": HOSTILE,
            "breach": kind == NoticeKind.ESCALATED,
        }
    elif kind == NoticeKind.DAILY_DIGEST:
        payload = sample_digest(view)
    else:
        payload = {
            "appeal": view,
            "actor": actor,
            "transition": {"trigger": transition.trigger, "title": dict(transition.title)},
            "fields": fields,
            "labels": field_labels(transition.fields, fields),
            "comment": HOSTILE,
        }
    return {
        **payload,
        **render_extras(kind, notice_id=42, created_at=SAMPLE_TIME, display_name="李娜", username="contact-0001"),
    }


def sample_digest(view: dict[str, Any]) -> dict[str, Any]:
    item = {
        "number": view["number"],
        "title": view["title"],
        "state_title": view["state_title"],
        "status": "breached",
        "due_at": SAMPLE_TIME.isoformat(),
        "assignee": "staff-b01",
        "enterprise": view["enterprise"],
        "link": view["link"],
    }
    return {
        "day": "2026-11-26",
        "counts": {"at_risk": 1, "breached": 1},
        "groups": [
            {
                "level": "building",
                "level_title": LEVEL_TITLES["building"],  # type: ignore[index]
                "unit": "长沙国金中心",
                "at_risk": [dict(item, status="at_risk")],
                "breached": [item],
            }
        ],
        "notices": [{"kind": "reminder", "number": view["number"], "created_at": SAMPLE_TIME.isoformat()}],
    }


def render_extras(
    kind: str,
    *,
    notice_id: int,
    created_at: datetime,
    display_name: str,
    username: str,
    base_url: str = "http://localhost:8000",
) -> dict[str, Any]:
    return {
        "notice": {"id": notice_id, "kind": kind, "created_at": created_at.isoformat()},
        "recipient": {"display_name": display_name, "username": username},
        "base_url": base_url,
    }
