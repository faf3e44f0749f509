"""An appeal as the engine sees it, the people who act on it, and replaying its events (who may do what:
workflow.domain.authorization)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from workflow.domain.org import Level


class EventKind:
    SUBMITTED = "submitted"
    FIRED = "fired"
    ASSIGNED = "assigned"
    COMMENTED = "commented"
    ESCALATED = "escalated"
    SENT_DOWN = "sent_down"
    BREACHED = "breached"  # over the limit at the top of the chain: recorded, nothing moves
    RECOMPUTED = "recomputed"  # deadlines worked out again on a new holiday notice
    FILE_ADDED = "file_added"  # an attachment uploaded (workflow.services.attachments)
    FILE_REMOVED = "file_removed"  # an attachment taken off; its blob and row stay for the audit


@dataclass(frozen=True)
class Actor:
    """A signed-in person, with the subtree of the chain they answer for."""

    id: int
    username: str
    display_name: str
    role: str
    unit_id: int
    scope_path: str  # a department's people answer for the whole district above it
    enterprise_id: int | None = None
    locale: str = "zh-CN"


@dataclass(frozen=True)
class AppealRecord:
    id: int
    number: str
    type: str
    definition_id: int
    state: str
    level: str
    unit_id: int
    enterprise_id: int
    assignee_id: int | None
    submitted_by_id: int
    channel: str
    data: Mapping[str, Any]
    version: int
    is_open: bool
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    building_path: str = ""
    specialist_id: int | None = None
    # Time limits, see workflow.domain.sla.
    clock: str = "stopped"
    state_entered_at: datetime | None = None
    state_due_at: datetime | None = None
    state_at_risk_at: datetime | None = None
    overall_used_s: int = 0
    overall_running_since: datetime | None = None
    overall_due_at: datetime | None = None
    overall_at_risk_at: datetime | None = None
    breached_at: datetime | None = None
    provisional: bool = False
    first_response_at: datetime | None = None
    decided_at: datetime | None = None
    # The head of its audit chain (workflow.domain.audit_chain): the last event's place and hash.
    audit_seq: int = 0
    audit_head: str | None = None


def unit_at_level(building_path: str, level: Level) -> int:
    """The unit holding an appeal at `level`: paths run district/sub-district/community/building."""
    ids = [int(part) for part in building_path.strip("/").split("/")]
    depth = {Level.DISTRICT: 0, Level.SUBDISTRICT: 1, Level.COMMUNITY: 2, Level.BUILDING: 3}[level]
    return ids[depth]


@dataclass(frozen=True)
class EventRecord:
    id: int
    appeal_id: int
    version: int
    kind: str
    actor_id: int | None
    at: datetime
    trigger: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    payload: Mapping[str, Any]
    seq: int = 0
    prev_hash: str | None = None
    hash: str = ""
    recorded_at: datetime | None = None  # when written; `at` is when it took effect


@dataclass
class Snapshot:
    """What replaying the audit trail says the appeal should be."""

    state: str = ""
    level: str = ""
    unit_id: int = 0
    assignee_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    is_open: bool = True


def replay(events: Iterable[EventRecord], terminal_states: Iterable[str]) -> Snapshot:
    terminal = set(terminal_states)
    snapshot = Snapshot()
    for event in events:
        if event.kind == EventKind.COMMENTED:
            continue
        payload = event.payload
        if event.kind == EventKind.SUBMITTED:
            snapshot = Snapshot(data=dict(payload.get("data", {})))
        else:
            snapshot.data.update(payload.get("data", {}))
        if event.to_state:
            snapshot.state = event.to_state
        for key in ("level", "unit_id", "assignee_id"):
            if key in payload:
                setattr(snapshot, key, payload[key])
        snapshot.version = event.version
        snapshot.is_open = snapshot.state not in terminal
    return snapshot


def with_changes(appeal: AppealRecord, **changes: Any) -> AppealRecord:
    return replace(appeal, **changes)
