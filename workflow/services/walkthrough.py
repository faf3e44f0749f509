"""`appeals demo`: walks appeals of every type along their paths as the people in the chain."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from workflow.domain.authorization import roles_that_may_fire
from workflow.domain.guards import GUARDS
from workflow.domain.spec import AppealDefinition, FieldSpec, FieldType, TransitionSpec, pick_title
from workflow.errors import WorkflowError
from workflow.services.demo_data import demo_credit_code
from workflow.services.workflow import Workflow

SHANGHAI = ZoneInfo("Asia/Shanghai")
Say = Callable[[str], None]

# Readable values for well-known fields; anything else gets a value made from its type.
SAMPLE_VALUES: dict[str, Any] = {
    "event_name": "某香水品牌首店开业快闪活动",
    "venue": "长沙国金中心北广场",
    "expected_attendance": 800,
    "contact_phone": "0731-8888 6666",
    "bank": "长沙银行五一支行",
    "materials_complete": True,
    "inspection_findings": "场地消防通道畅通，舞台搭建符合安全要求",
    "amount_yuan": 200000,
}


def sample_value(spec: FieldSpec, clock_now: Any) -> Any:
    if spec.name in SAMPLE_VALUES:
        return SAMPLE_VALUES[spec.name]
    today = clock_now.astimezone(SHANGHAI)
    kind = spec.type
    if kind in (FieldType.CHOICE,):
        return spec.choices[0]
    if kind is FieldType.MULTICHOICE:
        return list(spec.choices[:1])
    if kind is FieldType.BOOLEAN:
        return True
    if kind in (FieldType.INTEGER, FieldType.NUMBER):
        low = int(spec.minimum) if spec.minimum is not None else 1
        high = int(spec.maximum) if spec.maximum is not None else low + 10
        return max(low, min(high, 3))
    if kind is FieldType.DATE:
        return (today + timedelta(days=10)).date().isoformat()
    if kind is FieldType.DATETIME:
        return (today + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0).isoformat()
    if kind is FieldType.EMAIL:
        return "demo@example.com"
    if kind is FieldType.PHONE:
        return "0731-8888 0000"
    if kind is FieldType.USCC:
        return demo_credit_code(1)
    text = f"演示：{pick_title(spec.title, 'zh-CN')}"
    return text[: spec.max_length] if spec.max_length else text


def demo_path(
    definition: AppealDefinition, data: Mapping[str, Any], avoid: frozenset[str], longest: bool
) -> list[TransitionSpec]:
    """A walk without repeated states to a terminal one, guards passing: the longest shows the whole
    process, the shortest a quick decision. Triggers in `avoid` (e.g. withdraw) are skipped."""
    best: list[TransitionSpec] = []

    def better(path: list[TransitionSpec]) -> bool:
        return not best or (len(path) > len(best) if longest else len(path) < len(best))

    def explore(state: str, path: list[TransitionSpec], seen: frozenset[str]) -> None:
        nonlocal best
        if definition.is_terminal(state):
            if better(path):
                best = path
            return
        for transition in definition.transitions_from(state):
            if transition.trigger in avoid or transition.dest in seen:
                continue
            supplied = {f.name: SAMPLE_VALUES.get(f.name, True) for f in transition.fields}
            if all(GUARDS[g].check({**data, **supplied}) for g in transition.guards):
                explore(transition.dest, [*path, transition], seen | {transition.dest})

    explore(definition.initial, [], frozenset({definition.initial}))
    return best


class Walkthrough:
    def __init__(self, wf: Workflow, say: Say) -> None:
        self.wf = wf
        self.say = say
        self._people: dict[str, list[str]] = {}

    def run(self, per_type: int = 2) -> list[str]:
        numbers = []
        enterprise = 1
        for view in self.wf.definitions():
            definition = self.wf.registry.current_spec(view["name"])
            for round_number in range(per_type):
                enterprise += 7
                numbers.append(self.walk(definition, enterprise, variant=round_number))
        return numbers

    def submit(self, definition: AppealDefinition, enterprise_id: int, variant: int = 0) -> str:
        contact = f"contact-{enterprise_id:04d}"
        data = {f.name: sample_value(f, self.wf.clock.now()) for f in definition.fields if f.required}
        if "party_members" in data:  # one enterprise founds its own branch, the next joins a joint one
            data["party_members"] = 5 if variant == 0 else 2
        appeal = self.wf.submit(definition.name, enterprise_id=enterprise_id, as_user=contact, data=data)
        self.say(
            f"\n{appeal['number']}  {pick_title(definition.title, 'zh-CN')} / {pick_title(definition.title, 'en')}"
            f" — {appeal['enterprise']['name']}"
        )
        self.say(f"  {contact:<20} submit                 -> {appeal['state_title']}  (assignee {appeal['assignee']})")
        return str(appeal["number"])

    def step(self, number: str, transition: TransitionSpec) -> str:
        """Fire one transition as someone allowed to; returns the new state."""
        actor = self._actor_for(number, transition.trigger)
        fields = {f.name: sample_value(f, self.wf.clock.now()) for f in transition.fields}
        comment = f"演示：{pick_title(transition.title, 'zh-CN')}" if transition.comment.value == "required" else None
        outcome = self.wf.fire(number, transition.trigger, as_user=actor, data=fields, comment=comment)
        definition = self.wf.registry.spec_of(self.wf.record(number).definition_id)
        title = pick_title(definition.states[outcome.state].title, "zh-CN")
        holder = str(self.wf.show(number)["assignee"] or "-")
        self.say(f"  {actor:<20} {transition.trigger:<22} -> {title}  (assignee {holder})")
        return outcome.state

    def walk(self, definition: AppealDefinition, enterprise_id: int, variant: int) -> str:
        number = self.submit(definition, enterprise_id, variant)
        data = self.wf.record(number).data
        for transition in demo_path(definition, data, frozenset({"withdraw"}), longest=variant == 0):
            try:
                self.step(number, transition)
            except WorkflowError as exc:
                self.say(f"  {transition.trigger:<22} refused: {exc}")
                break
        return number

    def _actor_for(self, number: str, trigger: str) -> str:
        """Someone whose role and jurisdiction let them fire `trigger` on this appeal now."""
        record = self.wf.record(number)
        definition = self.wf.registry.spec_of(record.definition_id)
        transition = definition.transition(record.state, trigger)
        roles = sorted(roles_that_may_fire(transition, record.level)) if transition else []
        assignee = self.wf.show(number)["assignee"]
        if assignee and any(a["trigger"] == trigger for a in self.wf.actions(number, as_user=assignee)):
            return str(assignee)  # the person holding the appeal acts when they can
        for role in roles:
            if role not in self._people:
                self._people[role] = [u["username"] for u in self.wf.users(role=role)]
            for username in self._people[role]:
                try:
                    actions = self.wf.actions(number, as_user=username)
                except WorkflowError:  # outside this person's jurisdiction
                    continue
                if any(a["trigger"] == trigger for a in actions):
                    return username
        raise WorkflowError(f"nobody in the demo district may fire {trigger!r} on {number}")
