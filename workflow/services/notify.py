"""Who is told what: builds outbox rows (kind, recipients, a snapshot of what the templates show)
and writes them in the caller's transaction, so a rolled-back change leaves no notice behind."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from workflow.domain.appeal import Actor, AppealRecord
from workflow.domain.notices import ASSIGNEE, SUBMITTER, NoticeKind, NoticeRule
from workflow.domain.org import Level, Role
from workflow.domain.spec import AppealDefinition, FieldSpec, TransitionSpec
from workflow.persistence.unit_of_work import UnitOfWork

LEVEL_TITLES = {
    Level.BUILDING: {"zh-CN": "楼宇", "en": "building"},
    Level.COMMUNITY: {"zh-CN": "社区", "en": "community"},
    Level.SUBDISTRICT: {"zh-CN": "街道", "en": "sub-district"},
    Level.DISTRICT: {"zh-CN": "区级职能部门", "en": "district departments"},
}


def snapshot(
    definition: AppealDefinition,
    appeal: AppealRecord,
    *,
    state: str | None = None,
    level: str | None = None,
    due_at: datetime | None = None,
    enterprise_name: str = "",
) -> dict[str, Any]:
    """What every template may show about the appeal, in both locales, as it is after the change."""
    state = state or appeal.state
    level = level or appeal.level
    return {
        "number": appeal.number,
        "type": appeal.type,
        "title": dict(definition.title),
        "state": state,
        "state_title": dict(definition.states[state].title),
        "level": level,
        "level_title": LEVEL_TITLES[Level(level)],
        "enterprise": enterprise_name,
        "data": dict(appeal.data),
        "labels": field_labels(definition.fields, appeal.data),
        "due_at": due_at.isoformat() if due_at else None,
        "link": f"/appeals/{appeal.number}",
    }


def field_labels(fields: Iterable[FieldSpec], names: Iterable[str]) -> dict[str, Any]:
    """What an email prints for the fields it shows: each field's title and its choices' titles, both locales.

    Kept in the notice's payload, so a notice reads as its definition version did when it was written."""
    shown = set(names)
    return {
        spec.name: {
            "title": dict(spec.title),
            "choices": {choice: dict(titles) for choice, titles in spec.choice_titles.items()},
        }
        for spec in fields
        if spec.name in shown
    }


class Notifier:
    """Resolves recipients and writes notices for one unit of work."""

    def __init__(self, uow: UnitOfWork, now: datetime) -> None:
        self.uow = uow
        self.now = now
        self._enterprise_names: dict[int, str] = {}

    def enterprise_name(self, enterprise_id: int) -> str:
        if enterprise_id not in self._enterprise_names:
            self._enterprise_names.update(self.uow.repo.enterprise_names([enterprise_id]))
        return self._enterprise_names.get(enterprise_id, "")

    def send(
        self,
        kind: NoticeKind,
        appeal: AppealRecord,
        recipients: Iterable[int | None],
        cause: str,
        payload: Mapping[str, Any],
    ) -> None:
        people = sorted({p for p in recipients if p is not None})
        self.uow.repo.add_notices(appeal.id, kind.value, people, f"{kind.value}:{appeal.id}:{cause}", payload, self.now)

    def resolve(
        self,
        to: Iterable[str],
        appeal: AppealRecord,
        *,
        assignee_id: int | None,
        actor: Actor | None,
        department: str | None = None,
    ) -> set[int]:
        found: set[int] = set()
        for name in to:
            person: int | None
            if name == ASSIGNEE:
                person = assignee_id
            elif name in (SUBMITTER, Role.ENTERPRISE_CONTACT):
                person = self.uow.repo.contact_of(appeal.enterprise_id, prefer=appeal.submitted_by_id)
            elif name == Role.SPECIALIST and appeal.specialist_id is not None:
                person = appeal.specialist_id
            elif actor is not None and actor.role == name:
                person = actor.id  # e.g. the bureau officer who scheduled the inspection
            else:
                person = self.uow.repo.find_assignee(name, appeal.building_path, department)
            if person is not None:
                found.add(person)
        return found

    def on_transition(
        self,
        definition: AppealDefinition,
        appeal: AppealRecord,
        transition: TransitionSpec,
        *,
        new_state: str,
        version: int,
        actor: Actor,
        assignee_id: int | None,
        supplied: Mapping[str, Any],
        comment: str | None,
        due_at: datetime | None,
    ) -> None:
        """The definition's rules for this transition and the state entered, and `assigned` to a new holder."""
        rules: list[NoticeRule] = [*transition.notify, *definition.states[new_state].notify]
        if not rules and assignee_id in (None, appeal.assignee_id, actor.id):
            return
        base = {
            "appeal": snapshot(
                definition,
                appeal,
                state=new_state,
                due_at=due_at,
                enterprise_name=self.enterprise_name(appeal.enterprise_id),
            ),
            "actor": {"username": actor.username, "display_name": actor.display_name},
            "transition": {"trigger": transition.trigger, "title": dict(transition.title)},
            "fields": dict(supplied),
            "labels": field_labels(transition.fields, supplied),
            "comment": comment,
        }
        department = definition.states[new_state].department
        for rule in rules:
            people = self.resolve(rule.to, appeal, assignee_id=assignee_id, actor=actor, department=department)
            self.send(rule.kind, appeal, people, f"v{version}", base)
        if assignee_id is not None and assignee_id not in (appeal.assignee_id, actor.id):
            self.send(NoticeKind.ASSIGNED, appeal, [assignee_id], f"v{version}", base)

    def on_submit(
        self,
        definition: AppealDefinition,
        appeal: AppealRecord,
        actor: Actor,
        assignee_id: int | None,
        due_at: datetime | None,
    ) -> None:
        base = {
            "appeal": snapshot(
                definition, appeal, due_at=due_at, enterprise_name=self.enterprise_name(appeal.enterprise_id)
            ),
            "actor": {"username": actor.username, "display_name": actor.display_name},
            "transition": None,
            "fields": {},
            "comment": None,
        }
        contact = self.uow.repo.contact_of(appeal.enterprise_id, prefer=appeal.submitted_by_id)
        self.send(NoticeKind.APPEAL_RECEIVED, appeal, [contact], "v1", base)
        if assignee_id is not None and assignee_id != actor.id:
            self.send(NoticeKind.ASSIGNED, appeal, [assignee_id], "v1", base)
