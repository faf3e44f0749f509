"""Use cases that change appeals: submit, fire, assign, comment, escalate, send down.

Each reads what it needs, asks the domain, writes the appeal row with a compare-and-set on its
version together with the audit event, and commits once. Any error leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from workflow.clock import Clock
from workflow.domain.appeal import Actor, AppealRecord, EventKind, unit_at_level
from workflow.domain.audit_chain import ChainHead
from workflow.domain.authorization import (
    SUBMITTER_ROLES,
    assigners,
    escalation_target,
    holder_role,
    holding_path,
    holds_level,
    may_assign,
    may_fire,
    may_receive,
    may_submit_for,
    movers,
    roles_that_may_fire,
    send_down_target,
)
from workflow.domain.form_rules import check_rules
from workflow.domain.forms import clean_form
from workflow.domain.guards import GUARDS
from workflow.domain.notices import NoticeKind
from workflow.domain.org import LEAD_ROLE_OF_LEVEL, ROLES_OF_LEVEL, Level, Role
from workflow.domain.sla import ClockChange, SlaPlanner
from workflow.domain.spec import AppealDefinition, CommentRule
from workflow.errors import (
    AppealNotFound,
    CommentRequired,
    EnterpriseNotFound,
    EscalationNotPossible,
    FieldProblem,
    FormInvalid,
    GuardRejected,
    InvalidInput,
    OutsideJurisdiction,
    RoleNotAllowed,
    TransitionNotAllowed,
    UserNotFound,
    VersionConflict,
)
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.access import department_unit, sees
from workflow.services.checklist import require_files
from workflow.services.clocks import change_columns, clocks_of, timer_rows, unchanged_columns
from workflow.services.notify import LEVEL_TITLES, Notifier, snapshot
from workflow.services.registry import DefinitionRegistry, LoadedDefinition

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CHANNELS = ("online", "offline", "hotline", "onsite_session")
MAX_COMMENT = 4000


@dataclass(frozen=True)
class Context:
    """What every use case needs besides its unit of work."""

    registry: DefinitionRegistry
    clock: Clock
    planner: SlaPlanner


@dataclass(frozen=True)
class Outcome:
    number: str
    state: str
    version: int
    assignee_id: int | None
    level: str


def load_actor(uow: UnitOfWork, username: str) -> Actor:
    actor = uow.repo.actor(username)
    if actor is None:
        raise UserNotFound(username)
    return actor


def load_for_change(
    uow: UnitOfWork, registry: DefinitionRegistry, number: str, username: str
) -> tuple[Actor, AppealRecord]:
    """Actor and appeal in one round trip, checked as `load_actor` and `load_reachable` would."""
    actor, appeal = uow.repo.load_for_change(number, username)
    if actor is None:
        raise UserNotFound(username)
    if appeal is None:
        raise AppealNotFound(number)
    if not sees(uow, registry, actor, appeal):
        raise OutsideJurisdiction(actor.username, number)
    return actor, appeal


def load_reachable(uow: UnitOfWork, registry: DefinitionRegistry, number: str, actor: Actor) -> AppealRecord:
    """The appeal, if the actor may see it; otherwise the same answer as for a number that does not exist."""
    appeal = uow.repo.appeal(number)
    if appeal is None:
        raise AppealNotFound(number)
    if not sees(uow, registry, actor, appeal):
        raise OutsideJurisdiction(actor.username, number)
    return appeal


def submit(
    uow: UnitOfWork,
    ctx: Context,
    *,
    type: str,
    enterprise_id: int,
    username: str,
    data: Mapping[str, Any],
    channel: str = "online",
) -> Outcome:
    actor = load_actor(uow, username)
    loaded = ctx.registry.current(uow, type)
    definition = loaded.spec
    if actor.role not in SUBMITTER_ROLES:
        raise RoleNotAllowed(username, actor.role, f"submit {type}", SUBMITTER_ROLES)
    if channel not in CHANNELS:
        raise FormInvalid("the appeal", [FieldProblem("channel", f"{channel!r} is not one of: {', '.join(CHANNELS)}")])
    enterprise = uow.repo.enterprise(enterprise_id)
    if enterprise is None:
        raise EnterpriseNotFound(enterprise_id)
    if not may_submit_for(actor, enterprise_id, enterprise.building_path, enterprise.specialist_id):
        raise OutsideJurisdiction(username, f"for enterprise {enterprise_id}")
    now = ctx.clock.now()
    cleaned, problems = clean_form(definition.fields, data)
    problems += check_rules(definition.rules, {f.name: f.type for f in definition.fields}, cleaned, now)
    if problems:
        raise FormInvalid(f"the {type} form", problems)
    year = now.astimezone(SHANGHAI).year
    number = f"{definition.prefix}-{year}-{uow.repo.next_number(definition.prefix, year):06d}"
    level = definition.start_level
    unit_id = unit_at_level(enterprise.building_path, level)
    draft = AppealRecord(
        id=0,
        number=number,
        type=type,
        definition_id=loaded.id,
        state=definition.initial,
        level=level,
        unit_id=unit_id,
        enterprise_id=enterprise_id,
        assignee_id=None,
        submitted_by_id=actor.id,
        channel=channel,
        data=cleaned,
        version=1,
        is_open=True,
        created_at=now,
        updated_at=now,
        closed_at=None,
        building_path=enterprise.building_path,
        specialist_id=enterprise.specialist_id,
    )
    assignee_id = _assignee_for(uow, definition, draft, definition.initial)
    clocks = ctx.planner.submitted(definition, now)
    appeal_id = uow.repo.insert_appeal(
        {
            "number": number,
            "type": type,
            "definition_id": loaded.id,
            "state": definition.initial,
            "level": level.value,
            "unit_id": unit_id,
            "enterprise_id": enterprise_id,
            "assignee_id": assignee_id,
            "submitted_by_id": actor.id,
            "channel": channel,
            "data": cleaned,
            "version": 1,
            "is_open": True,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            **change_columns(clocks, now),
        }
    )
    uow.repo.insert_timers(appeal_id, now, timer_rows(clocks))
    uow.repo.append_event(
        {
            "appeal_id": appeal_id,
            "version": 1,
            "kind": EventKind.SUBMITTED,
            "actor_id": actor.id,
            "at": now,
            "trigger": "submit",
            "from_state": None,
            "to_state": definition.initial,
            "comment": None,
            "payload": {
                "data": cleaned,
                "level": level.value,
                "unit_id": unit_id,
                "assignee_id": assignee_id,
                "definition": {"name": type, "version": loaded.version},
                "channel": channel,
            },
        },
        ChainHead(number),
    )
    Notifier(uow, now).on_submit(definition, replace(draft, id=appeal_id), actor, assignee_id, clocks.clocks.due_at)
    uow.commit()
    log.info("appeal %s submitted by %s (%s)", number, username, type)
    return Outcome(number, definition.initial, 1, assignee_id, level.value)


def fire(
    uow: UnitOfWork,
    ctx: Context,
    *,
    number: str,
    trigger: str,
    username: str,
    comment: str | None = None,
    data: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
) -> Outcome:
    actor, appeal = load_for_change(uow, ctx.registry, number, username)
    if expected_version is not None and expected_version != appeal.version:
        raise VersionConflict(number, expected_version, appeal.version)
    loaded = ctx.registry.get(uow, appeal.definition_id)
    definition = loaded.spec
    spec = definition.transition(appeal.state, trigger)
    if spec is None:
        raise TransitionNotAllowed(number, appeal.state, trigger, _triggers_for(definition, appeal, actor))
    if not may_fire(actor.role, spec, appeal.level):
        raise RoleNotAllowed(username, actor.role, trigger, roles_that_may_fire(spec, appeal.level))
    comment = _clean_comment(comment)
    if spec.comment is CommentRule.REQUIRED and not comment:
        raise CommentRequired(number, trigger)
    supplied, problems = clean_form(spec.fields, data or {})
    if problems:
        raise FormInvalid(f"{trigger!r} on appeal {number}", problems)
    merged = {**appeal.data, **supplied} if supplied else appeal.data
    outcome = loaded.machine.fire(appeal.state, trigger, merged)
    if not outcome.moved:
        guard = outcome.failed_guard or "?"
        raise GuardRejected(number, trigger, guard, GUARDS[guard].explanation if guard in GUARDS else "")
    require_files(uow, definition, appeal, spec)  # checklist items marked requires_file need a file attached
    new_state = outcome.state
    assignee_id = _assignee_for(uow, definition, appeal, new_state)
    now = ctx.clock.now()
    terminal = definition.is_terminal(new_state)
    clocks = ctx.planner.entered(definition, clocks_of(appeal), new_state, now)
    values = {
        **unchanged_columns(appeal),
        **change_columns(clocks, now),
        "state": new_state,
        "assignee_id": assignee_id,
        "data": merged,
        "is_open": not terminal,
        "closed_at": now if terminal else None,
    }
    if appeal.first_response_at is None and actor.role != Role.ENTERPRISE_CONTACT:
        values["first_response_at"] = now
        values["first_response_s"] = int(ctx.planner.calendar.between(appeal.created_at, now).total_seconds())
    _write(
        uow,
        appeal,
        now,
        values,
        {
            "kind": EventKind.FIRED,
            "actor_id": actor.id,
            "trigger": trigger,
            "from_state": appeal.state,
            "to_state": new_state,
            "comment": comment,
            "payload": {"data": supplied, "assignee_id": assignee_id},
        },
        clocks,
    )
    Notifier(uow, now).on_transition(
        definition,
        appeal,
        spec,
        new_state=new_state,
        version=appeal.version + 1,
        actor=actor,
        assignee_id=assignee_id,
        supplied=supplied,
        comment=comment,
        due_at=clocks.clocks.due_at,
    )
    uow.commit()
    return Outcome(number, new_state, appeal.version + 1, assignee_id, appeal.level)


def assign(
    uow: UnitOfWork,
    ctx: Context,
    *,
    number: str,
    to_username: str,
    username: str,
    comment: str | None = None,
    expected_version: int | None = None,
) -> Outcome:
    actor = load_actor(uow, username)
    appeal = load_reachable(uow, ctx.registry, number, actor)
    if expected_version is not None and expected_version != appeal.version:
        raise VersionConflict(number, expected_version, appeal.version)
    if not appeal.is_open:
        raise TransitionNotAllowed(number, appeal.state, "assign", [])
    if not may_assign(actor, appeal):
        raise RoleNotAllowed(username, actor.role, "assign", assigners(appeal))
    target = load_actor(uow, to_username)
    department = department_unit(uow, ctx.registry, appeal)
    if not may_receive(target, appeal, department):
        holder = uow.repo.units_by_id([unit_at_level(appeal.building_path, Level(appeal.level))])
        code = next((str(u.code) for u in holder.values()), holding_path(appeal))
        if department is not None:
            unit = uow.repo.units_by_id([department]).get(department)
            raise InvalidInput(
                f"cannot assign appeal {number} to {to_username!r}: its current step is worked by the department "
                f"{unit.code if unit else department}; only that department's officers may be given it"
            )
        raise InvalidInput(
            f"cannot assign appeal {number} to {to_username!r}: only people of the {appeal.level} level holding it "
            f"(the unit {code}) may be given it"
        )
    now = ctx.clock.now()
    _write(
        uow,
        appeal,
        now,
        unchanged_columns(appeal) | {"assignee_id": target.id},
        {
            "kind": EventKind.ASSIGNED,
            "actor_id": actor.id,
            "trigger": "assign",
            "from_state": appeal.state,
            "to_state": appeal.state,
            "comment": _clean_comment(comment),
            "payload": {"assignee_id": target.id, "previous_assignee_id": appeal.assignee_id},
        },
    )
    if target.id != actor.id:
        definition = ctx.registry.get(uow, appeal.definition_id).spec
        notifier = Notifier(uow, now)
        notifier.send(
            NoticeKind.ASSIGNED,
            appeal,
            [target.id],
            f"v{appeal.version + 1}",
            {
                "appeal": snapshot(definition, appeal, enterprise_name=notifier.enterprise_name(appeal.enterprise_id)),
                "actor": {"username": actor.username, "display_name": actor.display_name},
                "transition": None,
                "fields": {},
                "comment": _clean_comment(comment),
            },
        )
    uow.commit()
    return Outcome(number, appeal.state, appeal.version + 1, target.id, appeal.level)


def comment(uow: UnitOfWork, ctx: Context, *, number: str, username: str, text: str) -> int:
    """Comments do not move the version: they never conflict with a state change."""
    actor = load_actor(uow, username)
    appeal = load_reachable(uow, ctx.registry, number, actor)
    body = _clean_comment(text)
    if not body:
        raise InvalidInput("a comment needs some text")
    uow.repo.append_event(
        {
            "appeal_id": appeal.id,
            "version": appeal.version,
            "kind": EventKind.COMMENTED,
            "actor_id": actor.id,
            "at": ctx.clock.now(),
            "trigger": None,
            "from_state": appeal.state,
            "to_state": None,
            "comment": body,
            "payload": {},
        },
        ChainHead(appeal.number, appeal.audit_seq, appeal.audit_head),
    )
    uow.commit()
    return appeal.version


def escalate(
    uow: UnitOfWork,
    ctx: Context,
    *,
    number: str,
    username: str,
    reason: str,
    expected_version: int | None = None,
    kind: str = EventKind.ESCALATED,
) -> Outcome:
    """Move the appeal one level up the chain ("beyond this level's power") or, with SENT_DOWN, one down."""
    actor = load_actor(uow, username)
    appeal = load_reachable(uow, ctx.registry, number, actor)
    if expected_version is not None and expected_version != appeal.version:
        raise VersionConflict(number, expected_version, appeal.version)
    going_up = kind == EventKind.ESCALATED
    action = "escalate" if going_up else "send_down"
    text = _clean_comment(reason)
    if not text:
        raise CommentRequired(number, action)
    if not appeal.is_open:
        raise EscalationNotPossible(number, f"it is finished (state {appeal.state!r})")
    level = Level(appeal.level)
    if actor.role != Role.SYSTEM and not holds_level(actor, appeal):
        raise RoleNotAllowed(username, actor.role, action, movers(appeal))
    definition = ctx.registry.get(uow, appeal.definition_id).spec
    target = escalation_target(actor, appeal) if going_up else send_down_target(actor, appeal, definition.start_level)
    if target is None:
        where = "the district is the top of the chain" if going_up else f"it is already at the {level} level"
        raise EscalationNotPossible(number, where)
    outcome = move_level(uow, ctx, appeal, target, actor_id=actor.id, reason=text, kind=kind)
    uow.commit()
    return outcome


def move_level(
    uow: UnitOfWork,
    ctx: Context,
    appeal: AppealRecord,
    target: Level,
    *,
    actor_id: int | None,
    reason: str,
    kind: str,
    breached: bool = False,
    at: datetime | None = None,
) -> Outcome:
    """Hand the appeal to `target`'s unit and its lead, restart the state clock there, tell the people.

    `at`: the instant the move takes effect, if earlier than now (a breach found by a catch-up sweep
    climbs as of its due instant: the new level's clock starts then, and its audit event says so).
    Does not commit: the caller's transaction holds the change, its event, timers and notices together.
    """
    definition = ctx.registry.get(uow, appeal.definition_id).spec
    now = ctx.clock.now()
    at = at or now
    unit_id = unit_at_level(appeal.building_path, target)
    # A breach climbs by turns among equally near leads, not by their load: the load depends on the order in
    # which a catch-up sweep reaches the appeals, the turn only on the appeal.
    spread = appeal.id - 1 if breached else None  # ids start at 1: the first appeal goes to the oldest account
    assignee_id = uow.repo.find_assignee(LEAD_ROLE_OF_LEVEL[target], appeal.building_path, spread=spread)
    if assignee_id is None:
        log.warning(
            "appeal %s reached the %s level, where nobody holds role %s",
            appeal.number,
            target,
            LEAD_ROLE_OF_LEVEL[target],
        )
    # Timers already due stay armed: the sweeper fires them in due order, each climbing from where the
    # appeal was at its own instant.
    clocks = ctx.planner.entered(definition, clocks_of(appeal), appeal.state, at)
    values = {
        **unchanged_columns(appeal),
        **change_columns(clocks, now),
        "level": target.value,
        "unit_id": unit_id,
        "assignee_id": assignee_id,
        "breached_at": appeal.breached_at or (at if breached else None),
    }
    action = "escalate" if kind == EventKind.ESCALATED else "send_down"
    _write(
        uow,
        appeal,
        now,
        values,
        {
            "kind": kind,
            "actor_id": actor_id,
            "at": at,
            "trigger": action,
            "from_state": appeal.state,
            "to_state": appeal.state,
            "comment": reason,
            "payload": {
                "from_level": appeal.level,
                "level": target.value,
                "unit_id": unit_id,
                "assignee_id": assignee_id,
                "breach": breached,
            },
        },
        clocks,
    )
    version = appeal.version + 1
    people = set(uow.repo.people_at(unit_id, ROLES_OF_LEVEL[target]))
    if assignee_id is not None:
        people.add(assignee_id)
    notifier = Notifier(uow, now)
    payload = {
        "appeal": snapshot(
            definition,
            appeal,
            level=target.value,
            due_at=clocks.clocks.due_at,
            enterprise_name=notifier.enterprise_name(appeal.enterprise_id),
        ),
        "from_level": appeal.level,
        "from_level_title": LEVEL_TITLES[Level(appeal.level)],
        "reason": reason,
        "breach": breached,
        "at": at.isoformat(),
    }
    going_up = kind == EventKind.ESCALATED
    arrived = NoticeKind.ESCALATED if going_up else NoticeKind.SENT_DOWN
    left = NoticeKind.ESCALATED_AWAY if going_up else NoticeKind.SENT_DOWN_AWAY
    notifier.send(arrived, appeal, people, f"v{version}", payload)
    if appeal.assignee_id is not None and appeal.assignee_id not in people:  # the level left behind
        notifier.send(left, appeal, [appeal.assignee_id], f"v{version}", payload)
    return Outcome(appeal.number, appeal.state, version, assignee_id, target.value)


def _write(
    uow: UnitOfWork,
    appeal: AppealRecord,
    now: datetime,
    values: dict[str, Any],
    event: dict[str, Any],
    clocks: ClockChange | None = None,
) -> None:
    """The appeal row (compare-and-set), its audit event and its timers, in the caller's transaction."""
    changed = {**values, "version": appeal.version + 1, "updated_at": now}
    cancel = (clocks.cancel_state_timers, clocks.cancel_overall_timers) if clocks else (False, False)
    timers = timer_rows(clocks) if clocks else []
    chain = ChainHead(appeal.number, appeal.audit_seq, appeal.audit_head)
    if not uow.repo.change_appeal(appeal.id, appeal.version, changed, event, chain, cancel, timers):
        raise VersionConflict(appeal.number, appeal.version, uow.repo.current_version(appeal.id))


def _clean_comment(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    if "\x00" in text:  # PostgreSQL text cannot hold NUL; refuse it the same way on every backend
        raise InvalidInput("a comment may not contain NUL characters")
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"a comment may be at most {MAX_COMMENT} characters; this one has {len(text)}")
    return text or None


def _triggers_for(definition: AppealDefinition, appeal: AppealRecord, actor: Actor) -> list[str]:
    """Triggers possible from the current state: the actor's own if any, else all, so the message helps."""
    possible = definition.transitions_from(appeal.state)
    mine = [t.trigger for t in possible if may_fire(actor.role, t, appeal.level)]
    return mine or [t.trigger for t in possible]


def _assignee_for(uow: UnitOfWork, definition: AppealDefinition, appeal: AppealRecord, state: str) -> int | None:
    """Who holds the appeal in `state`: kept when the acting role does not change, else found by role."""
    spec = definition.states[state]
    level = Level(appeal.level)
    holder = holder_role(spec, level)
    if holder is None:
        return None
    previous = definition.states.get(appeal.state)
    if appeal.assignee_id is not None and previous is not None and holder_role(previous, level) == holder:
        return appeal.assignee_id
    role = Role(holder)
    if role == Role.ENTERPRISE_CONTACT:
        return uow.repo.contact_of(appeal.enterprise_id, prefer=appeal.submitted_by_id)
    if role == Role.SPECIALIST and appeal.specialist_id is not None:
        return appeal.specialist_id
    found = uow.repo.find_assignee(role, appeal.building_path, spec.department)
    if found is None:
        log.warning("appeal %s: nobody with role %s reaches building %s", appeal.number, role, appeal.building_path)
    return found


def loaded_definition(uow: UnitOfWork, ctx: Context, appeal: AppealRecord) -> LoadedDefinition:
    return ctx.registry.get(uow, appeal.definition_id)
