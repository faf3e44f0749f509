"""The Python API: one object per database that submits, advances and reads appeals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine

from workflow.clock import Clock
from workflow.domain.appeal import Actor, AppealRecord, EventRecord, Snapshot, replay
from workflow.domain.calendar import WorkingCalendar
from workflow.domain.org import Level
from workflow.domain.sla import SlaPlanner
from workflow.errors import AppealNotFound, DefinitionNotFound, InvalidInput, UnitNotFound
from workflow.persistence.repository import IS_OPEN
from workflow.persistence.repository import appeals as appeals_table
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services import commands
from workflow.services.access import actions_for, department_filter, routed_states, sees
from workflow.services.commands import Context, Outcome, load_actor, load_reachable
from workflow.services.registry import DefinitionRegistry
from workflow.services.sla_report import at_risk_by, breached_by, sla_rates, sla_summary
from workflow.services.views import action_view, appeal_view, definition_view, event_view, sla_view

T = TypeVar("T")


class Workflow:
    """Submit and advance appeals as named users; every call is one transaction.

    >>> wf = workflow.connect("sqlite:///appeals.db")
    >>> appeal = wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact001", data={...})
    >>> wf.fire(appeal["number"], "start_pre_check", as_user="staff-b01")
    """

    def __init__(self, engine: Engine, registry: DefinitionRegistry, clock: Clock, planner: SlaPlanner) -> None:
        self.engine = engine
        self.registry = registry
        self.clock = clock
        self.context = Context(registry, clock, planner)

    @property
    def planner(self) -> SlaPlanner:
        return self.context.planner

    def use_calendar(self, calendar: WorkingCalendar) -> None:
        """Switch to a calendar with newly loaded notices (deadlines are recomputed by the caller)."""
        self.context = Context(self.registry, self.clock, SlaPlanner(calendar))

    # --- commands ----------------------------------------------------------------------
    def submit(
        self, type: str, *, enterprise_id: int, as_user: str, data: Mapping[str, Any], channel: str = "online"
    ) -> dict[str, Any]:
        outcome = self._write(
            lambda uow: commands.submit(
                uow, self.context, type=type, enterprise_id=enterprise_id, username=as_user, data=data, channel=channel
            )
        )
        return self.show(outcome.number, as_user=as_user)

    def fire(
        self,
        number: str,
        trigger: str,
        *,
        as_user: str,
        comment: str | None = None,
        data: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._write(
            lambda uow: commands.fire(
                uow,
                self.context,
                number=number,
                trigger=trigger,
                username=as_user,
                comment=comment,
                data=data,
                expected_version=expected_version,
            )
        )

    def assign(
        self,
        number: str,
        to_user: str,
        *,
        as_user: str,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> Outcome:
        return self._write(
            lambda uow: commands.assign(
                uow,
                self.context,
                number=number,
                to_username=to_user,
                username=as_user,
                comment=comment,
                expected_version=expected_version,
            )
        )

    def comment(self, number: str, text: str, *, as_user: str) -> int:
        return self._write(lambda uow: commands.comment(uow, self.context, number=number, username=as_user, text=text))

    def escalate(self, number: str, *, as_user: str, reason: str, expected_version: int | None = None) -> Outcome:
        return self._write(
            lambda uow: commands.escalate(
                uow, self.context, number=number, username=as_user, reason=reason, expected_version=expected_version
            )
        )

    def send_down(
        self, number: str, *, as_user: str, instructions: str, expected_version: int | None = None
    ) -> Outcome:
        return self._write(
            lambda uow: commands.escalate(
                uow,
                self.context,
                number=number,
                username=as_user,
                reason=instructions,
                expected_version=expected_version,
                kind="sent_down",
            )
        )

    # --- queries -----------------------------------------------------------------------
    def show(self, number: str, *, as_user: str | None = None, locale: str = "zh-CN") -> dict[str, Any]:
        """The appeal; with `as_user`, only if that user may see it."""
        with self._read() as uow:
            appeal = self._load(uow, number, as_user)
            return self._views(uow, [appeal], locale)[0]

    def history(self, number: str, *, as_user: str | None = None) -> list[dict[str, Any]]:
        with self._read() as uow:
            appeal = self._load(uow, number, as_user)
            events = uow.repo.events(appeal.id)
            names = uow.repo.usernames([e.actor_id for e in events if e.actor_id])
            return [event_view(e, names) for e in events]

    def events(self, number: str) -> list[EventRecord]:
        with self._read() as uow:
            return uow.repo.events(self._load(uow, number, None).id)

    def replayed(self, number: str) -> Snapshot:
        """What the audit trail alone says the appeal is; equal to the stored row unless something is wrong."""
        with self._read() as uow:
            appeal = self._load(uow, number, None)
            definition = self.registry.get(uow, appeal.definition_id).spec
            terminal = [s.name for s in definition.states.values() if s.terminal]
            return replay(uow.repo.events(appeal.id), terminal)

    def record(self, number: str) -> AppealRecord:
        with self._read() as uow:
            return self._load(uow, number, None)

    def actions(self, number: str, *, as_user: str, locale: str = "zh-CN") -> list[dict[str, Any]]:
        """Everything this user may do on the appeal now (workflow.domain.authorization.available_actions):
        the definition's triggers and the chain's moves, each with what it requires."""
        with self._read() as uow:
            actor = load_actor(uow, as_user)
            return self._actions(uow, actor, load_reachable(uow, self.registry, number, actor), locale)

    def show_with_actions(
        self, number: str, *, as_user: str, locale: str = "zh-CN", after_change: bool = False
    ) -> dict[str, Any]:
        """`show` plus `actions` under "actions", read in one transaction. `after_change`: the user has just
        changed the appeal, so it is shown even if the change put it out of their reach, with no actions
        (a not-found after a change that went through would invite a retry)."""
        with self._read() as uow:
            actor = load_actor(uow, as_user)
            if after_change:
                appeal = self._load(uow, number, None)
                reachable = sees(uow, self.registry, actor, appeal)
            else:
                appeal, reachable = load_reachable(uow, self.registry, number, actor), True
            view = self._views(uow, [appeal], locale)[0]
            view["actions"] = self._actions(uow, actor, appeal, locale) if reachable else []
            return view

    def _actions(self, uow: UnitOfWork, actor: Actor, appeal: AppealRecord, locale: str) -> list[dict[str, Any]]:
        actions = actions_for(uow, self.registry, actor, appeal)
        return [action_view(action, appeal.state, locale) for action in actions]

    def list_appeals(
        self,
        *,
        as_user: str | None = None,
        state: str | None = None,
        type: str | None = None,
        unit: str | None = None,
        open_only: bool = False,
        overdue: bool = False,
        at_risk: bool = False,
        level: str | None = None,
        assignee: str | None = None,
        limit: int = 100,
        offset: int = 0,
        locale: str = "zh-CN",
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of appeals, newest first; overdue / at_risk filter open appeals by their clocks now."""
        now = self.clock.now()
        extra = [IS_OPEN, breached_by(now)] if overdue else []
        extra += [IS_OPEN, at_risk_by(now)] if at_risk else []
        if level is not None:
            if level not in {lv.value for lv in Level}:
                raise InvalidInput(f"unknown level {level!r}; allowed: {', '.join(lv.value for lv in Level)}")
            extra.append(appeals_table.c.level == level)
        with self._read() as uow:
            self._check_filters(uow, type, state)
            if assignee is not None:
                holder = load_actor(uow, assignee)
                extra.append(appeals_table.c.assignee_id == holder.id)
            scope = load_actor(uow, as_user) if as_user else None
            routed = routed_states(uow, self.registry, scope) if scope is not None else {}
            unit_path = None
            if unit is not None:
                row = uow.repo.unit_by_code(unit)
                if row is None:
                    raise UnitNotFound(unit)
                unit_path = row.path
            records, total = uow.repo.list_appeals(
                state=state,
                type=type,
                unit_path=unit_path,
                scope=scope,
                routed=routed,
                open_only=open_only,
                limit=limit,
                offset=offset,
                extra=extra,
            )
            return self._views(uow, records, locale), total

    def sla_report(
        self,
        *,
        unit: str | None = None,
        as_of: datetime | None = None,
        since: datetime | None = None,
        as_user: str | None = None,
    ) -> dict[str, Any]:
        """Open / at risk / breached / paused per level and unit as of a moment, plus response rates; with
        `as_user`, only the appeals of that user's view (a department officer: their department's)."""
        with self._read() as uow:
            extra = department_filter(uow, self.registry, load_actor(uow, as_user)) if as_user else []
            summary = sla_summary(uow, as_of or self.clock.now(), unit, past=as_of is not None, extra=extra)
            summary["rates"] = sla_rates(uow, unit, since, extra)
            return summary

    def _check_filters(self, uow: UnitOfWork, type: str | None, state: str | None) -> None:
        """Unknown types and states are named, with what is allowed, instead of matching nothing."""
        if type is not None and type not in self.registry.names():
            raise DefinitionNotFound(type, self.registry.names())
        if state is None:
            return
        names = [type] if type is not None else self.registry.names()
        states = sorted({s for name in names for s in self.registry.current(uow, name).spec.states})
        if state not in states:
            raise InvalidInput(f"unknown state {state!r}; states{f' of {type}' if type else ''}: {', '.join(states)}")

    def unit_code_of_path(self, path: str) -> str | None:
        """The code of the unit at a materialised path (a user's scope), e.g. "/1/2/" -> "S01"."""
        with self._read() as uow:
            ids = [int(part) for part in path.strip("/").split("/") if part]
            if not ids:
                return None
            unit = uow.repo.units_by_id([ids[-1]]).get(ids[-1])
            return str(unit.code) if unit is not None else None

    def unit_within(self, code: str, scope_path: str) -> bool:
        with self._read() as uow:
            unit = uow.repo.unit_by_code(code)
            if unit is None:
                raise UnitNotFound(code)
            return str(unit.path).startswith(scope_path)

    def definitions(self, locale: str = "zh-CN") -> list[dict[str, Any]]:
        with self._read() as uow:
            return [self.definition(name, locale, uow=uow) for name in self.registry.names()]

    def definition(self, name: str, locale: str = "zh-CN", *, uow: UnitOfWork | None = None) -> dict[str, Any]:
        if uow is None:
            with self._read() as own:
                return self.definition(name, locale, uow=own)
        loaded = self.registry.current(uow, name)
        return definition_view(loaded.spec, loaded.version, locale)

    def org_tree(self) -> list[dict[str, Any]]:
        """Every unit with its children, buildings with their enterprises."""
        with self._read() as uow:
            units = uow.repo.all_units()
            enterprises = uow.repo.enterprises_of()
        nodes: dict[int, dict[str, Any]] = {
            u.id: {"id": u.id, "code": u.code, "kind": u.kind, "name": u.name, "name_en": u.name_en, "children": []}
            for u in units
        }
        roots: list[dict[str, Any]] = []
        for u in units:
            (nodes[u.parent_id]["children"] if u.parent_id in nodes else roots).append(nodes[u.id])
        for e in enterprises:
            nodes[e.building_id].setdefault("enterprises", []).append(
                {"id": e.id, "name": e.name, "credit_code": e.credit_code, "party_members": e.party_members}
            )
        return roots

    def users(self, *, role: str | None = None, unit: str | None = None) -> list[dict[str, Any]]:
        with self._read() as uow:
            path = None
            if unit is not None:
                row = uow.repo.unit_by_code(unit)
                if row is None:
                    raise UnitNotFound(unit)
                path = row.path
            return [
                {
                    "id": r.id,
                    "username": r.username,
                    "display_name": r.display_name,
                    "role": r.role,
                    "unit": r.unit_code,
                    "unit_name": r.unit_name,
                    "enterprise_id": r.enterprise_id,
                    "email": r.email,
                    "locale": r.locale,
                    "active": r.active,
                }
                for r in uow.repo.users(role=role, unit_path=path)
            ]

    # --- plumbing ----------------------------------------------------------------------
    def _write(self, use_case: Callable[[UnitOfWork], T]) -> T:
        with UnitOfWork(self.engine) as uow:
            return use_case(uow)

    def _read(self) -> UnitOfWork:
        return UnitOfWork(self.engine, read_only=True)

    def _load(self, uow: UnitOfWork, number: str, as_user: str | None) -> AppealRecord:
        if as_user is not None:
            return load_reachable(uow, self.registry, number, load_actor(uow, as_user))
        appeal = uow.repo.appeal(number)
        if appeal is None:
            raise AppealNotFound(number)
        return appeal

    def _views(self, uow: UnitOfWork, records: Sequence[AppealRecord], locale: str) -> list[dict[str, Any]]:
        names = uow.repo.usernames([i for r in records for i in (r.assignee_id, r.submitted_by_id) if i])
        units = uow.repo.units_by_id(list({r.unit_id for r in records}))
        codes = uow.repo.enterprise_credit_codes([r.enterprise_id for r in records])
        enterprises = uow.repo.enterprise_names([r.enterprise_id for r in records])
        breaches = uow.repo.breaches_of([r.id for r in records])
        now = self.clock.now()
        views = []
        for record in records:
            loaded = self.registry.get(uow, record.definition_id)
            views.append(
                appeal_view(
                    record,
                    loaded.spec,
                    definition_version=loaded.version,
                    names=names,
                    units=units,
                    enterprise_name=enterprises.get(record.enterprise_id, ""),
                    enterprise_credit_code=codes.get(record.enterprise_id),
                    locale=locale,
                    sla=sla_view(record, self.planner, now, breaches[record.id]),
                )
            )
        return views
