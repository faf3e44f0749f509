"""Who may do what: see an appeal, fire a trigger, escalate, send down, assign and to whom, and the one list of
everything a person may do on an appeal now. Services, pages, the API, the CLI and the SQL that lists appeals
all follow these rules; nothing else decides them.

The rules, in words (README "Who may do what"):
- Seeing: an enterprise's contacts see its appeals; the assignee and the enterprise's specialist see it; chain
  people see the appeals of the enterprises in their subtree (a district supervisor: the whole district); a
  district department's officers see what their department holds, has held or was routed to (a state naming it).
- Firing: a role a transition names may fire it, unless the appeal has been escalated above that role's own
  level (the level holding it works it now); `chain` stands for the people of the level holding the appeal.
- Escalating and sending down: only the people of the holding level, one level from their own; a district
  department is at the top and does not move appeals along the chain.
- Assigning: the holding level or a level above it (building staff and supervisors), or the current assignee,
  and only to people of the holding level; in a step a department works, only to that department's officers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workflow.domain.appeal import Actor, AppealRecord, EventRecord
from workflow.domain.guards import GUARDS
from workflow.domain.org import CHAIN, LEAD_ROLE_OF_LEVEL, ROLES_OF_LEVEL, SUPERVISOR_ROLES, Level, Role
from workflow.domain.spec import AppealDefinition, CommentRule, StateSpec, TransitionSpec

# The level each chain role belongs to; a district department sits at the district.
HOME_LEVEL: dict[str, Level] = {
    Role.BUILDING_STAFF: Level.BUILDING,
    Role.SPECIALIST: Level.BUILDING,
    Role.COMMUNITY_SUPERVISOR: Level.COMMUNITY,
    Role.SUBDISTRICT_SUPERVISOR: Level.SUBDISTRICT,
    Role.DISTRICT_SUPERVISOR: Level.DISTRICT,
    Role.BUREAU_OFFICER: Level.DISTRICT,
}
# Who moves appeals along the chain: the people of the chain's levels, not the district departments.
MOVER_ROLES = frozenset(HOME_LEVEL) - {Role.BUREAU_OFFICER}
ASSIGNER_ROLES = frozenset({Role.BUILDING_STAFF, *SUPERVISOR_ROLES})
# Who submits appeals: the enterprise itself, or a civil servant on its behalf (代办).
SUBMITTER_ROLES = frozenset({Role.ENTERPRISE_CONTACT, Role.SPECIALIST, Role.BUILDING_STAFF})
# Who reads the supervision figures (SLA summary, dashboard), each over what they see.
SUMMARY_ROLES = frozenset({*SUPERVISOR_ROLES, Role.BUILDING_STAFF, Role.BUREAU_OFFICER})
_DEPTH = {Level.DISTRICT: 1, Level.SUBDISTRICT: 2, Level.COMMUNITY: 3, Level.BUILDING: 4}


class ActionKind:
    TRANSITION = "transition"  # a trigger of the appeal's definition
    CHAIN = "chain"  # escalate, send_down, assign: the engine's own moves
    COMMENT = "comment"


def holding_path(appeal: AppealRecord) -> str:
    """The path of the unit holding the appeal at its level, e.g. "/1/2/" at the sub-district."""
    ids = appeal.building_path.strip("/").split("/")
    return "/" + "/".join(ids[: _DEPTH[Level(appeal.level)]]) + "/"


def may_submit_for(actor: Actor, enterprise_id: int, building_path: str, specialist_id: int | None) -> bool:
    """An enterprise's own contact; staff for an enterprise in their subtree or looked after by them."""
    if actor.role == Role.ENTERPRISE_CONTACT:
        return actor.enterprise_id == enterprise_id
    return building_path.startswith(actor.scope_path) or specialist_id == actor.id


# --- seeing ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trail:
    """Who has had the appeal, from its audit trail: what a department officer's view depends on."""

    holder_units: frozenset[int] = frozenset()  # the units of everyone it has been assigned to
    department_units: frozenset[int] = frozenset()  # the departments named by states it has been in


def trail_of(
    events: Iterable[EventRecord], unit_of_user: Mapping[int, int], department_of_state: Mapping[str, int]
) -> Trail:
    """`department_of_state`: state name -> unit id of the department it names, for the appeal's definition."""
    holders: set[int] = set()
    departments: set[int] = set()
    for event in events:
        assignee = event.payload.get("assignee_id")
        if isinstance(assignee, int) and assignee in unit_of_user:
            holders.add(unit_of_user[assignee])
        if event.to_state is not None and event.to_state in department_of_state:
            departments.add(department_of_state[event.to_state])
    return Trail(frozenset(holders), frozenset(departments))


def needs_trail(actor: Actor, appeal: AppealRecord) -> bool:
    """Only a department officer's view of an appeal they do not hold depends on its history."""
    return actor.role == Role.BUREAU_OFFICER and appeal.assignee_id != actor.id


def can_see(actor: Actor, appeal: AppealRecord, trail: Trail | None = None) -> bool:
    """Jurisdiction. `trail` is needed when `needs_trail` says so; without it a department officer sees only
    what they hold."""
    if actor.role == Role.SYSTEM:
        return True
    if actor.role == Role.ENTERPRISE_CONTACT:
        return actor.enterprise_id == appeal.enterprise_id
    if appeal.assignee_id == actor.id:
        return True
    if actor.role == Role.SPECIALIST and appeal.specialist_id == actor.id:
        return True
    if actor.role == Role.BUREAU_OFFICER:
        return trail is not None and actor.unit_id in trail.holder_units | trail.department_units
    return appeal.building_path.startswith(actor.scope_path)


# --- firing ------------------------------------------------------------------------------------------------
def escalated_past(role: str, level: Level) -> bool:
    """True when the appeal sits above the role's own level: the level holding it works it now."""
    home = HOME_LEVEL.get(role)
    return home is not None and role != Role.BUREAU_OFFICER and home.rank < level.rank


def may_fire(role: str, transition: TransitionSpec, level: str) -> bool:
    at = Level(level)
    if CHAIN in transition.roles and role in ROLES_OF_LEVEL[at]:
        return True
    return role in transition.roles and not escalated_past(role, at)


def roles_that_may_fire(transition: TransitionSpec, level: str) -> set[str]:
    """For refusals: every role that may fire `transition` at `level`."""
    at = Level(level)
    roles = {r for r in transition.roles if r != CHAIN and not escalated_past(r, at)}
    if CHAIN in transition.roles:
        roles |= set(ROLES_OF_LEVEL[at])
    return roles


def guards_could_pass(transition: TransitionSpec, data: Mapping[str, object]) -> bool:
    """Guards reading fields the actor has yet to supply cannot be judged now; the rest can."""
    supplied = frozenset(f.name for f in transition.fields)
    return all(GUARDS[g].check(data) for g in transition.guards if GUARDS[g].judgeable_without(supplied))


# --- who works a state -------------------------------------------------------------------------------------
def acting_roles(state: StateSpec, level: Level) -> frozenset[str]:
    """Who is expected to act in `state` while the appeal sits at `level`: the state's role, but the people of
    `level` where the state names `chain` or a chain role the appeal has been escalated past."""
    if state.role is None:
        return frozenset()
    if state.role == CHAIN or escalated_past(state.role, level):
        return frozenset(ROLES_OF_LEVEL[level])
    return frozenset({state.role})


def holder_role(state: StateSpec, level: Level) -> str | None:
    """The role of whoever is assigned an appeal entering `state` at `level`."""
    if state.terminal or state.role is None:
        return None
    if state.role == CHAIN or escalated_past(state.role, level):
        return LEAD_ROLE_OF_LEVEL[level]
    return state.role


def levels_reached(start: Level) -> list[Level]:
    """Escalation is possible from every open state, so an appeal can be in any of them at any of these."""
    return [level for level in Level if level.rank >= start.rank]


def nobody_acts(
    states: Iterable[StateSpec], transitions: Sequence[TransitionSpec], start: Level
) -> list[tuple[StateSpec, Level, frozenset[str]]]:
    """(state, level, who should act) wherever those expected to act there could fire nothing."""
    gaps = []
    for state in states:
        if state.terminal:
            continue
        leaving = [t for t in transitions if state.name in t.sources]
        for level in levels_reached(start):
            actors = acting_roles(state, level)
            if not any(may_fire(role, t, level) for t in leaving for role in actors):
                gaps.append((state, level, actors))
    return gaps


# --- moving along the chain ----------------------------------------------------------------------------------
def holds_level(actor: Actor, appeal: AppealRecord) -> bool:
    """One of the people of the level and unit holding the appeal (or its assignee there)."""
    level = Level(appeal.level)
    if actor.role not in MOVER_ROLES or HOME_LEVEL[actor.role] != level:
        return False
    return (
        actor.scope_path == holding_path(appeal)
        or appeal.assignee_id == actor.id
        or (actor.role == Role.SPECIALIST and appeal.specialist_id == actor.id)
    )


def movers(appeal: AppealRecord) -> set[str]:
    """For refusals: the roles that may move the appeal along the chain now."""
    return {r for r in ROLES_OF_LEVEL[Level(appeal.level)] if r in MOVER_ROLES}


def escalation_target(actor: Actor, appeal: AppealRecord) -> Level | None:
    """Where `actor` may escalate the appeal: one level above the holding level, which must be theirs."""
    if not appeal.is_open or not (actor.role == Role.SYSTEM or holds_level(actor, appeal)):
        return None
    return Level(appeal.level).above()


def send_down_target(actor: Actor, appeal: AppealRecord, start: Level) -> Level | None:
    """Where `actor` may send the appeal down: one level below, never below the level it started at."""
    if not appeal.is_open or not (actor.role == Role.SYSTEM or holds_level(actor, appeal)):
        return None
    below = Level(appeal.level).below()
    return below if below is not None and below.rank >= start.rank else None


def may_assign(actor: Actor, appeal: AppealRecord) -> bool:
    """The holding level or one above it over the same unit, or the current assignee."""
    if not appeal.is_open:
        return False
    if actor.role == Role.SYSTEM:
        return True
    if appeal.assignee_id == actor.id and actor.role != Role.ENTERPRISE_CONTACT:
        return True
    return (
        actor.role in ASSIGNER_ROLES
        and HOME_LEVEL[actor.role].rank >= Level(appeal.level).rank
        and holding_path(appeal).startswith(actor.scope_path)
    )


def assigners(appeal: AppealRecord) -> set[str]:
    at = Level(appeal.level)
    return {r for r in ASSIGNER_ROLES if HOME_LEVEL[r].rank >= at.rank} | {"the current assignee"}


def may_receive(target: Actor, appeal: AppealRecord, department_unit: int | None) -> bool:
    """In a step a department works (`department_unit`: the unit its state names), that department's officers;
    otherwise the people of the holding level (whose own unit is the one holding it)."""
    if department_unit is not None:
        return target.role == Role.BUREAU_OFFICER and target.unit_id == department_unit
    return target.role in ROLES_OF_LEVEL[Level(appeal.level)] and target.scope_path == holding_path(appeal)


# --- the list ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """One thing a person may do on an appeal now."""

    name: str  # the trigger, or escalate / send_down / assign / comment
    kind: str  # ActionKind
    transition: TransitionSpec | None = None
    level: Level | None = None  # where escalate / send_down takes the appeal
    targets: tuple[Actor, ...] = ()  # whom assign may give it to
    roles: frozenset[str] = frozenset()  # who may do this now

    @property
    def comment_required(self) -> bool:
        if self.transition is not None:
            return self.transition.comment is CommentRule.REQUIRED
        return self.name in ("escalate", "send_down")  # the reason


def available_actions(
    actor: Actor,
    appeal: AppealRecord,
    definition: AppealDefinition,
    *,
    candidates: Sequence[Actor] = (),
    department_unit: int | None = None,
) -> list[Action]:
    """Everything `actor` (who can see the appeal) may do on it now, in the order pages show it: the definition's
    triggers, then escalate, send down, assign, comment. `candidates`: people who might be given the appeal
    (a superset; the rule picks); `department_unit`: the unit of the department the current state names."""
    actions = [
        Action(t.trigger, ActionKind.TRANSITION, transition=t, roles=frozenset(roles_that_may_fire(t, appeal.level)))
        for t in definition.transitions_from(appeal.state)
        if may_fire(actor.role, t, appeal.level) and guards_could_pass(t, appeal.data)
    ]
    up = escalation_target(actor, appeal)
    if up is not None:
        actions.append(Action("escalate", ActionKind.CHAIN, level=up, roles=frozenset(movers(appeal))))
    down = send_down_target(actor, appeal, definition.start_level)
    if down is not None:
        actions.append(Action("send_down", ActionKind.CHAIN, level=down, roles=frozenset(movers(appeal))))
    if may_assign(actor, appeal):
        targets = tuple(
            c
            for c in sorted(candidates, key=lambda c: c.username)
            if c.id != appeal.assignee_id and may_receive(c, appeal, department_unit)
        )
        if targets:
            actions.append(Action("assign", ActionKind.CHAIN, targets=targets, roles=frozenset(assigners(appeal))))
    actions.append(Action("comment", ActionKind.COMMENT))
    return actions
