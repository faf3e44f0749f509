"""Frozen specifications of appeal types: fields, states and transitions, as loaded from YAML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from workflow.domain.durations import WorkingDuration
from workflow.domain.notices import NoticeRule
from workflow.domain.org import Level

LOCALES = ("zh-CN", "en")


class FieldType(StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"
    MULTICHOICE = "multichoice"
    EMAIL = "email"
    PHONE = "phone"
    USCC = "uscc"  # 统一社会信用代码, checked to its check character


class ClockMode(StrEnum):
    RUNNING = "running"  # the time limit counts down
    PAUSED = "paused"  # waiting on the enterprise: time already used is kept, nothing more counts
    STOPPED = "stopped"  # finished: nothing counts any more


class CommentRule(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"


Titles = Mapping[str, str]


def pick_title(titles: Titles, locale: str) -> str:
    return titles.get(locale) or titles.get("zh-CN") or next(iter(titles.values()), "")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    title: Titles
    required: bool = False
    choices: tuple[str, ...] = ()
    choice_titles: Mapping[str, Titles] = field(default_factory=dict)  # choice -> titles; empty: show the choice
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None


class RuleOp(StrEnum):
    """How a rule relates a field to another field (comparisons) or to the present (not_in_past)."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="
    NOT_IN_PAST = "not_in_past"  # today (Asia/Shanghai) or later; for datetimes, now or later
    NOT_IN_FUTURE = "not_in_future"


@dataclass(frozen=True)
class RuleSpec:
    """A rule between form fields, e.g. `end_date >= start_date`; `message` is what people read when it fails."""

    field: str
    op: RuleOp
    message: Titles
    other: str | None = None  # the field compared with; None for not_in_past / not_in_future


@dataclass(frozen=True)
class StateSpec:
    name: str
    title: Titles
    role: str | None
    clock: ClockMode
    terminal: bool
    limit: WorkingDuration | None = None
    department: str | None = None  # unit code of the district department that acts here, e.g. DEP-APPROVAL
    notify: tuple[NoticeRule, ...] = ()  # sent when an appeal enters this state


@dataclass(frozen=True)
class TransitionSpec:
    trigger: str
    sources: tuple[str, ...]
    dest: str
    roles: frozenset[str]
    title: Titles
    guards: tuple[str, ...] = ()
    fields: tuple[FieldSpec, ...] = ()
    comment: CommentRule = CommentRule.OPTIONAL
    notify: tuple[NoticeRule, ...] = ()  # sent when this transition fires


@dataclass(frozen=True)
class MaterialSpec:
    name: str
    title: Titles
    requires_file: bool = False  # the checklist guard also wants a file attached for this item


@dataclass(frozen=True)
class AppealDefinition:
    """One version of one appeal type. Immutable once an appeal uses it."""

    name: str
    version: int
    title: Titles
    prefix: str
    start_level: Level
    initial: str
    fields: tuple[FieldSpec, ...]
    states: Mapping[str, StateSpec]
    transitions: tuple[TransitionSpec, ...]
    materials: tuple[MaterialSpec, ...] = ()
    time_limit: WorkingDuration | None = None
    reminders: tuple[int, ...] = (50, 80)
    rules: tuple[RuleSpec, ...] = ()  # checked on the form after each field is clean
    source: str = ""
    path: str = ""
    _by_source: dict[tuple[str, str], TransitionSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for transition in self.transitions:
            for source in transition.sources:
                self._by_source[(source, transition.trigger)] = transition

    def transition(self, state: str, trigger: str) -> TransitionSpec | None:
        return self._by_source.get((state, trigger))

    def transitions_from(self, state: str) -> list[TransitionSpec]:
        return [t for t in self.transitions if state in t.sources]

    def is_terminal(self, state: str) -> bool:
        return self.states[state].terminal
