"""Reads what the rules of workflow.domain.authorization need from the database: an appeal's trail, the people
it may be given to, the department its state names, the states routed to a department."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workflow.domain.appeal import Actor, AppealRecord
from workflow.domain.authorization import (
    Action,
    Trail,
    available_actions,
    can_see,
    holding_path,
    may_assign,
    needs_trail,
    trail_of,
)
from workflow.domain.org import Role
from workflow.persistence.repository import department_condition
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.registry import DefinitionRegistry


def sees(uow: UnitOfWork, registry: DefinitionRegistry, actor: Actor, appeal: AppealRecord) -> bool:
    """`can_see`, reading the appeal's trail only when the rule needs it (a department officer's view)."""
    trail = trail_for(uow, registry, appeal) if needs_trail(actor, appeal) else None
    return can_see(actor, appeal, trail)


def trail_for(uow: UnitOfWork, registry: DefinitionRegistry, appeal: AppealRecord) -> Trail:
    definition = registry.get(uow, appeal.definition_id).spec
    events = uow.repo.events(appeal.id)
    assignees = [e.payload.get("assignee_id") for e in events]
    unit_of_user = uow.repo.units_of_users(a for a in assignees if isinstance(a, int))
    codes = {s.name: s.department for s in definition.states.values() if s.department}
    unit_of_code = uow.repo.unit_ids(codes.values())
    departments = {state: unit_of_code[code] for state, code in codes.items() if code in unit_of_code}
    return trail_of(events, unit_of_user, departments)


def department_unit(uow: UnitOfWork, registry: DefinitionRegistry, appeal: AppealRecord) -> int | None:
    """The unit of the department the appeal's current state names, if any."""
    code = registry.get(uow, appeal.definition_id).spec.states[appeal.state].department
    return uow.repo.unit_ids([code]).get(code) if code else None


def routed_states(uow: UnitOfWork, registry: DefinitionRegistry, actor: Actor) -> Mapping[int, Sequence[str]]:
    """For a department officer's lists: per stored definition version, the states naming their department."""
    if actor.role != Role.BUREAU_OFFICER:
        return {}
    unit = uow.repo.units_by_id([actor.unit_id]).get(actor.unit_id)
    if unit is None:
        return {}
    routed: dict[int, list[str]] = {}
    for row in uow.repo.definition_versions():
        spec = registry.get(uow, row.id).spec
        states = [s.name for s in spec.states.values() if s.department == unit.code]
        if states:
            routed[row.id] = states
    return routed


def department_filter(uow: UnitOfWork, registry: DefinitionRegistry, actor: Actor) -> list[Any]:
    """For counts over a subtree (summary, dashboard): a department officer counts only their department's
    appeals, as they see them; everyone else counts their subtree."""
    if actor.role != Role.BUREAU_OFFICER:
        return []
    return [department_condition(actor.unit_id, routed_states(uow, registry, actor))]


def actions_for(uow: UnitOfWork, registry: DefinitionRegistry, actor: Actor, appeal: AppealRecord) -> list[Action]:
    """`available_actions` with the people the appeal might be given to read from the database."""
    definition = registry.get(uow, appeal.definition_id).spec
    department = department_unit(uow, registry, appeal)
    candidates = uow.repo.assign_candidates(holding_path(appeal), department) if may_assign(actor, appeal) else []
    return available_actions(actor, appeal, definition, candidates=candidates, department_unit=department)
