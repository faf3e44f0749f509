"""Reads appeal definitions from YAML into frozen specs, checking everything and reporting all problems."""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from workflow.domain.authorization import nobody_acts
from workflow.domain.durations import WorkingDuration
from workflow.domain.form_rules import COMPARABLE_GROUPS, COMPARISONS, TIMELY_TYPES
from workflow.domain.guards import GUARDS
from workflow.domain.notices import NOTICE_RECIPIENTS, NoticeKind, NoticeRule
from workflow.domain.org import DEFINITION_ROLES, Level
from workflow.domain.spec import (
    LOCALES,
    AppealDefinition,
    ClockMode,
    CommentRule,
    FieldSpec,
    FieldType,
    MaterialSpec,
    RuleOp,
    RuleSpec,
    StateSpec,
    TransitionSpec,
)
from workflow.errors import DefinitionError, Problem

TOP_KEYS = {
    "name",
    "version",
    "title",
    "prefix",
    "level",
    "fields",
    "materials",
    "states",
    "transitions",
    "time_limit",
    "reminders",
    "description",
    "rules",
}
REQUIRED_TOP_KEYS = ("name", "version", "title", "prefix", "states", "transitions")
FIELD_KEYS = {
    "name",
    "type",
    "title",
    "required",
    "choices",
    "choice_titles",
    "min_length",
    "max_length",
    "min",
    "max",
    "help",
}
STATE_KEYS = {"title", "role", "clock", "terminal", "initial", "limit", "description", "department", "notify"}
TRANSITION_KEYS = {"trigger", "from", "to", "roles", "guards", "fields", "comment", "title", "notify"}
NOTIFY_KEYS = {"notice", "to"}
MATERIAL_KEYS = {"name", "title", "requires_file"}
RULE_KEYS = {"field", "op", "other", "message"}
# Triggers the engine owns; a definition may not reuse them.
RESERVED_TRIGGERS = {"submit", "assign", "comment", "escalate", "send_down"}
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PREFIX = re.compile(r"^[A-Z]{2,4}$")


def shipped_definition_files() -> list[Path]:
    """The YAML definitions installed with the package (one file per appeal type)."""
    root = resources.files("definitions")
    return sorted(Path(str(entry)) for entry in root.iterdir() if entry.name.endswith((".yaml", ".yml")))


def load_definitions(paths: Iterable[str | Path]) -> list[AppealDefinition]:
    """Load every file; raise one DefinitionError listing the problems of all of them."""
    definitions: list[AppealDefinition] = []
    problems: list[Problem] = []
    for path in paths:
        loaded, found = _load_one_file(Path(path))
        problems.extend(found)
        if loaded is not None:
            definitions.append(loaded)
    names: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for definition in definitions:
        if definition.name in names:
            problems.append(
                Problem(
                    definition.path, 1, f"appeal type {definition.name!r} is also defined in {names[definition.name]}"
                )
            )
        elif definition.prefix in prefixes:
            problems.append(
                Problem(
                    definition.path,
                    1,
                    (
                        f"prefix {definition.prefix!r} is already used by {prefixes[definition.prefix]}; "
                        "appeal numbers would not tell the two types apart"
                    ),
                )
            )
        names[definition.name] = definition.path
        prefixes.setdefault(definition.prefix, definition.path)
    if problems:
        raise DefinitionError(problems)
    return definitions


def load_definition_text(source: str, path: str = "<definition>", *, stored: bool = False) -> AppealDefinition:
    """`stored`: a version appeals already use, read back as registered: checks added since do not apply."""
    definition, problems = _parse(source, path, stored=stored)
    if problems or definition is None:
        raise DefinitionError(problems or [Problem(path, 1, "empty definition")])
    return definition


def digest_of(source: str) -> str:
    """The version key of a definition: sha256 of its parsed content as canonical JSON.

    Comments, blank lines, indentation and quoting leave it alone; any change of a value does not. Mapping
    order is kept as written rather than sorted: the order of `states` is meaningful (without an `initial:`
    marker the first state listed is the initial one)."""
    content = yaml.load(source, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def legacy_digest_of(source: str) -> str:
    """The version key of databases registered before digest_of: sha256 of the file's bytes."""
    return hashlib.sha256(source.encode()).hexdigest()


def _load_one_file(path: Path) -> tuple[AppealDefinition | None, list[Problem]]:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), 1, f"cannot read: {exc}")]
    definition, problems = _parse(source, str(path), expected_name=path.stem)
    return (None if problems else definition), problems


@dataclass
class _Reader:
    """Walks the YAML node tree so that each problem can carry its line."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    # Builds Python values (YAML 1.1 types: dates, booleans) from single nodes. One per reader: a
    # constructor caches every node it has built, so a shared one would keep every file ever read.
    constructor: yaml.constructor.SafeConstructor = field(default_factory=yaml.constructor.SafeConstructor)

    def problem(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(Problem(self.path, line, message))

    def mapping(self, node: yaml.Node, what: str, allowed: set[str]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping of keys to values")
            return {}
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in entries:
                self.problem(key_node, f"{what}: key {key!r} appears twice")
            elif key not in allowed:
                self.problem(key_node, f"{what}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")
            entries[key] = (key_node, value_node)
        return entries

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"{what} must be a single value")
            return None
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # any value YAML cannot build: `!!int abc`, `!!bool maybe`, `2024-02-30`, `!foo x`
            problem = getattr(exc, "problem", None) or str(exc)
            self.problem(node, f"{what}: cannot read {node.value!r}: {problem}")
            return None

    def text(self, node: yaml.Node, what: str) -> str | None:
        value = self.scalar(node, what)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(node, f"{what} must be non-empty text, got {value!r}")
            return None
        return value

    def identifier(self, node: yaml.Node, what: str) -> str | None:
        value = self.text(node, what)
        if value is not None and not _IDENTIFIER.match(value):
            self.problem(node, f"{what} {value!r} must be lower_snake_case (a-z, 0-9, _), starting with a letter")
            return None
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool:
        before = len(self.problems)
        value = self.scalar(node, what)
        if len(self.problems) > before:  # unreadable, already reported
            return False
        if not isinstance(value, bool):
            self.problem(node, f"{what} must be true or false, got {value!r}")
            return False
        return value

    def integer(self, node: yaml.Node, what: str) -> int | None:
        before = len(self.problems)
        value = self.scalar(node, what)
        if len(self.problems) > before:  # unreadable, already reported
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(node, f"{what} must be a whole number, got {value!r}")
            return None
        return value

    def number(self, node: yaml.Node, what: str) -> float | None:
        before = len(self.problems)
        value = self.scalar(node, what)
        if len(self.problems) > before:  # unreadable, already reported
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.problem(node, f"{what} must be a number, got {value!r}")
            return None
        return float(value)

    def names(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        """A single name or a list of names."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        names = []
        for item in items:
            value = self.text(item, what)
            if value is not None:
                names.append((value, item))
        return names

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{what} must be a list")
            return []
        return list(node.value)

    def titles(self, node: yaml.Node, what: str) -> dict[str, str]:
        entries = self.mapping(node, what, set(LOCALES))
        titles = {}
        for locale, (_, value_node) in entries.items():
            text = self.text(value_node, f"{what} [{locale}]")
            if text is not None and locale in LOCALES:
                titles[locale] = text
        missing = [loc for loc in LOCALES if loc not in entries]
        if isinstance(node, yaml.MappingNode) and missing:
            self.problem(node, f"{what} needs a title in every locale; missing: {', '.join(missing)}")
        return titles

    def duration(self, node: yaml.Node, what: str) -> WorkingDuration | None:
        value = self.scalar(node, what)
        try:
            return WorkingDuration.parse(str(value)) if value is not None else None
        except ValueError as exc:
            self.problem(node, f"{what}: {exc}")
            return None


def _compose(source: str) -> yaml.Node | None:
    """The C parser when PyYAML has it (5x faster); the pure one for its exact error messages."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.compose(source, Loader=fast)
        except yaml.YAMLError:
            pass
    return yaml.compose(source, Loader=yaml.SafeLoader)


def _parse(
    source: str, path: str, expected_name: str | None = None, *, stored: bool = False
) -> tuple[AppealDefinition | None, list[Problem]]:
    reader = _Reader(path)
    try:
        root = _compose(source)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return None, [Problem(path, line, f"YAML syntax: {exc.problem or exc.context}")]
    except yaml.reader.ReaderError as exc:  # a control character: no mark, only a position
        line = source.count("\n", 0, exc.position) + 1
        return None, [Problem(path, line, f"YAML syntax: {exc.reason}, character #x{exc.character:04x}")]
    if root is None:
        return None, [Problem(path, 1, "the file is empty")]
    top = reader.mapping(root, "definition", TOP_KEYS)
    if not isinstance(root, yaml.MappingNode):
        return None, reader.problems
    for key in REQUIRED_TOP_KEYS:
        if key not in top:
            reader.problem(root, f"definition: missing required key {key!r}")

    def get(key: str) -> yaml.Node | None:
        return top[key][1] if key in top else None

    name = reader.identifier(n, "name") if (n := get("name")) is not None else None
    if name is not None and expected_name is not None and name != expected_name:
        reader.problem(get("name"), f"name {name!r} must match the file name {expected_name!r}")
    version = reader.integer(n, "version") if (n := get("version")) is not None else None
    if version is not None and version < 1 and (n := get("version")) is not None:
        reader.problem(n, f"version must be 1 or more, got {version}")
    title = reader.titles(n, "title") if (n := get("title")) is not None else {}
    prefix = reader.text(n, "prefix") if (n := get("prefix")) is not None else None
    if prefix is not None and not _PREFIX.match(prefix) and (n := get("prefix")) is not None:
        reader.problem(
            n, f"prefix {prefix!r} must be 2 to 4 capital letters, e.g. OE (numbers look like OE-2026-000123)"
        )
    start_level = Level.BUILDING
    if (n := get("level")) is not None:
        value = reader.text(n, "level")
        if value is not None and value not in set(Level):
            reader.problem(n, f"level {value!r} is not a chain level; allowed: {', '.join(Level)}")
        elif value is not None:
            start_level = Level(value)
    fields = _fields(reader, get("fields"), "form field", set())
    rules = _rules(reader, get("rules"), fields)
    materials = _materials(reader, get("materials"))
    time_limit = reader.duration(n, "time_limit") if (n := get("time_limit")) is not None else None
    reminders = _reminders(reader, get("reminders"))
    states, initial = _states(reader, get("states"))
    transitions = _transitions(reader, get("transitions"), states, _declared_names(get("fields")))
    _check_graph(reader, root, states, initial, transitions)
    if not stored:
        _check_someone_acts(reader, states, initial, transitions, start_level)
    if reader.problems or name is None or version is None or prefix is None or initial is None:
        return None, reader.problems
    definition = AppealDefinition(
        name=name,
        version=version,
        title=title,
        prefix=prefix,
        start_level=start_level,
        initial=initial,
        fields=tuple(fields),
        states={s.name: s for s, _ in states.values()},
        transitions=tuple(t for t, _ in transitions),
        materials=tuple(materials),
        time_limit=time_limit,
        reminders=reminders,
        rules=tuple(rules),
        source=source,
        path=path,
    )
    return definition, []


def _fields(reader: _Reader, node: yaml.Node | None, what: str, taken: set[str]) -> list[FieldSpec]:
    if node is None:
        return []
    specs: list[FieldSpec] = []
    seen = set(taken)
    for item in reader.sequence(node, f"{what}s"):
        entries = reader.mapping(item, what, FIELD_KEYS)
        if not entries:
            continue
        values = {key: value for key, (_, value) in entries.items()}
        name = reader.identifier(values["name"], f"{what} name") if "name" in values else None
        if "name" not in values:
            reader.problem(item, f"{what}: missing 'name'")
        if name is not None and name in seen:
            reader.problem(values["name"], f"{what} {name!r} is defined twice")
        seen.add(name or "")
        label = f"{what} {name!r}"
        kind: FieldType | None = FieldType.STRING  # None: unknown, already reported; type-dependent checks skipped
        if "type" in values:
            raw = reader.text(values["type"], f"{label} type")
            if raw is not None and raw not in set(FieldType):
                reader.problem(values["type"], f"{label}: unknown type {raw!r}; allowed: {', '.join(FieldType)}")
                kind = None
            elif raw is not None:
                kind = FieldType(raw)
        title = reader.titles(values["title"], f"{label} title") if "title" in values else {}
        if "title" not in values:
            reader.problem(item, f"{label}: missing 'title' (zh-CN and en)")
        choices: tuple[str, ...] = ()
        if "choices" in values:
            choices = tuple(v for v, _ in reader.names(values["choices"], f"{label} choice"))
            if kind is not None and kind not in (FieldType.CHOICE, FieldType.MULTICHOICE):
                reader.problem(
                    values["choices"], f"{label}: choices are only for choice and multichoice fields, not {kind}"
                )
            if len(set(choices)) != len(choices):
                reader.problem(values["choices"], f"{label}: a choice is listed twice")
        if not choices and kind in (FieldType.CHOICE, FieldType.MULTICHOICE):
            reader.problem(item, f"{label}: a {kind} field needs a non-empty 'choices' list")
        choice_titles = _choice_titles(reader, values.get("choice_titles"), choices, label)
        lengths = {k: reader.integer(values[k], f"{label} {k}") for k in ("min_length", "max_length") if k in values}
        bounds = {k: reader.number(values[k], f"{label} {k}") for k in ("min", "max") if k in values}
        textual = (FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE)
        if lengths and kind is not None and kind not in textual:
            reader.problem(item, f"{label}: length limits apply to text fields, not {kind}")
        if bounds and kind is not None and kind not in (FieldType.INTEGER, FieldType.NUMBER):
            reader.problem(item, f"{label}: min and max apply to integer and number fields, not {kind}")
        for key, value in lengths.items():
            if value is not None and value < 0:
                reader.problem(values[key], f"{label}: {key} must not be negative")
        lo, hi = lengths.get("min_length"), lengths.get("max_length")
        if lo is not None and hi is not None and lo > hi:
            reader.problem(item, f"{label}: min_length {lo} is more than max_length {hi}")
        if (a := bounds.get("min")) is not None and (b := bounds.get("max")) is not None and a > b:
            reader.problem(item, f"{label}: min {a:g} is more than max {b:g}")
        required = reader.boolean(values["required"], f"{label} required") if "required" in values else False
        if name is not None and kind is not None:
            specs.append(
                FieldSpec(
                    name=name,
                    type=kind,
                    title=title,
                    required=required,
                    choices=choices,
                    choice_titles=choice_titles,
                    min_length=lo,
                    max_length=hi,
                    minimum=bounds.get("min"),
                    maximum=bounds.get("max"),
                )
            )
    return specs


def _rules(reader: _Reader, node: yaml.Node | None, fields: list[FieldSpec]) -> list[RuleSpec]:
    """`rules: [{field: end_date, op: ">=", other: start_date, message: {zh-CN: ..., en: ...}}, ...]`."""
    if node is None:
        return []
    types = {f.name: f.type for f in fields}
    ops = ", ".join(op.value for op in RuleOp)
    rules = []
    for item in reader.sequence(node, "rules"):
        values = {k: v for k, (_, v) in reader.mapping(item, "rule", RULE_KEYS).items()}
        if not values and isinstance(item, yaml.MappingNode):
            reader.problem(item, "rule: an empty rule; give field, op, message (and other for a comparison)")
        if not values:
            continue
        for key in ("field", "op", "message"):
            if key not in values:
                reader.problem(item, f"rule: missing required key {key!r}")
        name = reader.text(values["field"], "rule field") if "field" in values else None
        label = f"rule on {name!r}"
        if name is not None and name not in types:
            reader.problem(
                values["field"], f"{label}: no form field {name!r}; form fields: {', '.join(types) or 'none'}"
            )
            name = None
        op: RuleOp | None = None
        raw = reader.text(values["op"], f"{label} op") if "op" in values else None
        if raw is not None and raw not in set(RuleOp):
            reader.problem(values["op"], f"{label}: unknown op {raw!r}; allowed: {ops}")
        elif raw is not None:
            op = RuleOp(raw)
        other = reader.text(values["other"], f"{label} other") if "other" in values else None
        if other is not None and other not in types:
            reader.problem(values["other"], f"{label}: no form field {other!r}; form fields: {', '.join(types)}")
            other = None
        if op in COMPARISONS and "other" not in values:
            reader.problem(item, f"{label}: op {op.value!r} compares two fields; name the second in 'other'")
        if op is not None and op not in COMPARISONS and "other" in values:
            reader.problem(values["other"], f"{label}: op {op.value!r} reads one field; 'other' does not apply")
        if name is not None and op is not None and op not in COMPARISONS and types[name] not in TIMELY_TYPES:
            reader.problem(values["op"], f"{label}: {op.value} applies to date and datetime fields, not {types[name]}")
        if name is not None and other is not None and op in COMPARISONS:
            group = next((g for g in COMPARABLE_GROUPS if types[name] in g), None)
            if group is None or types[other] not in group:
                reader.problem(
                    values["op"],
                    f"{label}: cannot compare {name!r} ({types[name]}) with {other!r} ({types[other]}); "
                    "compare two dates, two datetimes or two numbers",
                )
                op = None
        message = reader.titles(values["message"], f"{label} message") if "message" in values else {}
        if name is not None and op is not None and (other is not None or op not in COMPARISONS):
            rules.append(RuleSpec(field=name, op=op, message=message, other=other))
    return rules


def _choice_titles(
    reader: _Reader, node: yaml.Node | None, choices: tuple[str, ...], label: str
) -> dict[str, dict[str, str]]:
    """What people read for each choice; when given, every choice needs its titles."""
    if node is None:
        return {}
    if not choices:
        reader.problem(node, f"{label}: choice_titles need a 'choices' list to title")
        return {}
    entries = reader.mapping(node, f"{label} choice_titles", set(choices))
    titles = {
        choice: reader.titles(value, f"{label} choice {choice!r} title")
        for choice, (_, value) in entries.items()
        if choice in choices
    }
    missing = [choice for choice in choices if choice not in entries]
    if isinstance(node, yaml.MappingNode) and missing:
        reader.problem(node, f"{label}: choice_titles lack: {', '.join(missing)}")
    return titles


def _materials(reader: _Reader, node: yaml.Node | None) -> list[MaterialSpec]:
    if node is None:
        return []
    materials = []
    for item in reader.sequence(node, "materials"):
        entries = reader.mapping(item, "material", MATERIAL_KEYS)
        if "name" not in entries or "title" not in entries:
            reader.problem(item, "material: needs 'name' and 'title'")
            continue
        name = reader.identifier(entries["name"][1], "material name")
        title = reader.titles(entries["title"][1], "material title")
        needs_file = "requires_file" in entries and reader.boolean(entries["requires_file"][1], "requires_file")
        if name is not None:
            materials.append(MaterialSpec(name, title, needs_file))
    return materials


def _reminders(reader: _Reader, node: yaml.Node | None) -> tuple[int, ...]:
    if node is None:
        return (50, 80)
    thresholds = []
    for item in reader.sequence(node, "reminders"):
        value = reader.integer(item, "reminder threshold")
        if value is None:
            continue
        if not 0 < value < 100:
            reader.problem(item, f"reminder threshold {value}% must be between 1 and 99 (100% is the breach itself)")
        else:
            thresholds.append(value)
    return tuple(sorted(set(thresholds)))


def _states(reader: _Reader, node: yaml.Node | None) -> tuple[dict[str, tuple[StateSpec, yaml.Node]], str | None]:
    if node is None:
        return {}, None
    if not isinstance(node, yaml.MappingNode):
        reader.problem(node, "states must be a mapping of state names to states")
        return {}, None
    entries = reader.mapping(node, "states", {str(k.value) for k, _ in node.value})
    states: dict[str, tuple[StateSpec, yaml.Node]] = {}
    initial: list[tuple[str, yaml.Node]] = []
    for key_node, value_node in entries.values():
        name = reader.identifier(key_node, "state name")
        if name is None:
            continue
        values = {k: v for k, (_, v) in reader.mapping(value_node, f"state {name!r}", STATE_KEYS).items()}
        title = reader.titles(values["title"], f"state {name!r} title") if "title" in values else {}
        if "title" not in values:
            reader.problem(key_node, f"state {name!r}: missing 'title' (zh-CN and en)")
        terminal = reader.boolean(values["terminal"], f"state {name!r} terminal") if "terminal" in values else False
        role = None
        if "role" in values:
            role = reader.text(values["role"], f"state {name!r} role")
            if role is not None and role not in DEFINITION_ROLES:
                reader.problem(
                    values["role"],
                    f"state {name!r}: unknown role {role!r}; allowed: {', '.join(sorted(DEFINITION_ROLES))}",
                )
        elif not terminal:
            reader.problem(key_node, f"state {name!r}: a non-terminal state needs a 'role' (who acts there)")
        clock = ClockMode.STOPPED if terminal else ClockMode.RUNNING
        if "clock" in values:
            raw = reader.text(values["clock"], f"state {name!r} clock")
            if raw is not None and raw not in set(ClockMode):
                reader.problem(
                    values["clock"], f"state {name!r}: unknown clock {raw!r}; allowed: {', '.join(ClockMode)}"
                )
            elif raw is not None:
                clock = ClockMode(raw)
                if terminal and clock is not ClockMode.STOPPED:
                    reader.problem(values["clock"], f"state {name!r}: a terminal state's clock is stopped, not {raw}")
        limit = reader.duration(values["limit"], f"state {name!r} limit") if "limit" in values else None
        if limit is not None and clock is not ClockMode.RUNNING:
            reader.problem(values["limit"], f"state {name!r}: a time limit needs a running clock, not {clock}")
        department = reader.text(values["department"], f"state {name!r} department") if "department" in values else None
        if department is not None and role != "bureau_officer":
            reader.problem(
                values["department"], f"state {name!r}: a department applies only where role is bureau_officer"
            )
        notify = _notify(reader, values.get("notify"), f"state {name!r}")
        if "initial" in values and reader.boolean(values["initial"], f"state {name!r} initial"):
            initial.append((name, values["initial"]))
        states[name] = (
            StateSpec(
                name=name,
                title=title,
                role=role,
                clock=clock,
                terminal=terminal,
                limit=limit,
                department=department,
                notify=notify,
            ),
            key_node,
        )
    if len(initial) > 1:
        for state_name, where in initial[1:]:
            reader.problem(where, f"state {state_name!r}: only one state may be initial; {initial[0][0]!r} already is")
    if initial:
        return states, initial[0][0]
    first = next(iter(states), None)  # without a marker, the first state listed is the initial one
    return states, first


def _transitions(
    reader: _Reader, node: yaml.Node | None, states: dict[str, tuple[StateSpec, yaml.Node]], form_fields: set[str]
) -> list[tuple[TransitionSpec, yaml.Node]]:
    if node is None:
        return []
    transitions: list[tuple[TransitionSpec, yaml.Node]] = []
    seen: dict[tuple[str, str], int] = {}
    for item in reader.sequence(node, "transitions"):
        values = {k: v for k, (_, v) in reader.mapping(item, "transition", TRANSITION_KEYS).items()}
        if not values:
            continue
        for key in ("trigger", "from", "to", "roles"):
            if key not in values:
                reader.problem(item, f"transition: missing required key {key!r}")
        trigger = reader.identifier(values["trigger"], "trigger") if "trigger" in values else None
        label = f"transition {trigger!r}"
        if trigger in RESERVED_TRIGGERS and "trigger" in values:
            reader.problem(
                values["trigger"],
                f"{label}: the engine owns this trigger; reserved: {', '.join(sorted(RESERVED_TRIGGERS))}",
            )
        sources = []
        for source, where in reader.names(values["from"], f"{label} source") if "from" in values else []:
            if source not in states:
                reader.problem(where, f"{label}: unknown state {source!r} in 'from'; states: {', '.join(states)}")
            elif states[source][0].terminal:
                reader.problem(where, f"{label}: leaves terminal state {source!r}; a terminal state has no exits")
            else:
                sources.append(source)
            slot = (source, trigger or "")
            if trigger is not None and slot in seen:
                reader.problem(
                    where, f"{label}: state {source!r} already has a transition {trigger!r} (line {seen[slot]})"
                )
            seen[slot] = where.start_mark.line + 1
        dest = reader.text(values["to"], f"{label} destination") if "to" in values else None
        if dest is not None and dest not in states and "to" in values:
            reader.problem(values["to"], f"{label}: unknown state {dest!r} in 'to'; states: {', '.join(states)}")
        roles = set()
        for role, where in reader.names(values["roles"], f"{label} role") if "roles" in values else []:
            if role not in DEFINITION_ROLES:
                reader.problem(where, f"{label}: unknown role {role!r}; allowed: {', '.join(sorted(DEFINITION_ROLES))}")
            roles.add(role)
        guards = []
        for guard, where in reader.names(values["guards"], f"{label} guard") if "guards" in values else []:
            if guard not in GUARDS:
                reader.problem(where, f"{label}: unknown guard {guard!r}; known guards: {', '.join(sorted(GUARDS))}")
            guards.append(guard)
        fields = _fields(reader, values.get("fields"), f"{label} field", set()) if "fields" in values else []
        for field_spec in fields:
            if field_spec.name in form_fields:
                reader.problem(
                    values["fields"], f"{label}: field {field_spec.name!r} clashes with the form field of that name"
                )
        _check_guard_fields(reader, label, values.get("guards"), form_fields | _declared_names(values.get("fields")))
        comment = CommentRule.OPTIONAL
        if "comment" in values:
            raw = reader.text(values["comment"], f"{label} comment")
            if raw is not None and raw not in set(CommentRule):
                reader.problem(values["comment"], f"{label}: comment must be one of: {', '.join(CommentRule)}")
            elif raw is not None:
                comment = CommentRule(raw)
        title = reader.titles(values["title"], f"{label} title") if "title" in values else {}
        if "title" not in values:
            reader.problem(item, f"{label}: missing 'title' (zh-CN and en)")
        notify = _notify(reader, values.get("notify"), label)
        if trigger is not None and dest is not None and sources:
            spec = TransitionSpec(
                trigger=trigger,
                sources=tuple(sources),
                dest=dest,
                roles=frozenset(roles),
                title=title,
                guards=tuple(guards),
                fields=tuple(fields),
                comment=comment,
                notify=notify,
            )
            transitions.append((spec, item))
    return transitions


def _declared_names(node: yaml.Node | None) -> set[str]:
    """The names a list of fields declares, including fields otherwise wrong (those are reported apart)."""
    if not isinstance(node, yaml.SequenceNode):
        return set()
    return {
        str(value.value)
        for item in node.value
        if isinstance(item, yaml.MappingNode)
        for key, value in item.value
        if key.value == "name" and isinstance(value, yaml.ScalarNode)
    }


def _check_guard_fields(reader: _Reader, label: str, node: yaml.Node | None, visible: set[str]) -> None:
    """A guard reading a field that neither the form nor the transition defines could never pass."""
    if node is None:
        return
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for item in items:
        guard = GUARDS.get(str(item.value)) if isinstance(item, yaml.ScalarNode) else None
        if guard is None:
            continue  # unknown or malformed: reported where the guards are read
        for missing in sorted(guard.reads - visible):
            reader.problem(
                item,
                f"{label}: guard {guard.name!r} reads field {missing!r}, which neither the form nor this "
                "transition's fields define, so the transition could never pass; add the field to the form "
                "or to the transition's fields",
            )


def _notify(reader: _Reader, node: yaml.Node | None, where: str) -> tuple[NoticeRule, ...]:
    """`notify: [{notice: KIND, to: [ROLE | assignee | submitter, ...]}]`."""
    if node is None:
        return ()
    rules = []
    for item in reader.sequence(node, f"{where} notify"):
        entries = {k: v for k, (_, v) in reader.mapping(item, f"{where} notify entry", NOTIFY_KEYS).items()}
        if "notice" not in entries or "to" not in entries:
            reader.problem(item, f"{where}: a notify entry needs 'notice' and 'to'")
            continue
        kind = reader.text(entries["notice"], f"{where} notice")
        if kind is not None and kind not in set(NoticeKind):
            reader.problem(entries["notice"], f"{where}: unknown notice {kind!r}; known: {', '.join(NoticeKind)}")
            kind = None
        recipients = []
        for name, at in reader.names(entries["to"], f"{where} notice recipient"):
            if name not in NOTICE_RECIPIENTS:
                allowed = ", ".join(sorted(NOTICE_RECIPIENTS))
                reader.problem(at, f"{where}: unknown notice recipient {name!r}; allowed: {allowed}")
            else:
                recipients.append(name)
        if kind is not None and recipients:
            rules.append(NoticeRule(NoticeKind(kind), tuple(recipients)))
    return tuple(rules)


def _check_graph(
    reader: _Reader,
    root: yaml.Node,
    states: dict[str, tuple[StateSpec, yaml.Node]],
    initial: str | None,
    transitions: list[tuple[TransitionSpec, yaml.Node]],
) -> None:
    if not states:
        reader.problem(root, "definition: 'states' must list at least one state")
        return
    edges: dict[str, set[str]] = {name: set() for name in states}
    for transition, _ in transitions:
        for source in transition.sources:
            if transition.dest in states:
                edges[source].add(transition.dest)
    reachable = set(_walk(initial, edges)) if initial else set()
    for name, (spec, where) in states.items():
        if name not in reachable:
            reader.problem(where, f"state {name!r} is unreachable from the initial state {initial!r}")
        if not spec.terminal and not edges[name]:
            reader.problem(where, f"state {name!r} is a dead end: it is not terminal and no transition leaves it")
        if spec.clock is ClockMode.PAUSED and edges[name]:
            resumes = any(states[d][0].clock is ClockMode.RUNNING for d in _walk(name, edges) if d != name)
            if not resumes:
                reader.problem(where, f"paused state {name!r} has no way back to a state where the clock runs")
    if not any(spec.terminal for spec, _ in states.values()):
        reader.problem(root, "definition: no state is terminal, so no appeal could ever finish")


def _check_someone_acts(
    reader: _Reader,
    states: dict[str, tuple[StateSpec, yaml.Node]],
    initial: str | None,
    transitions: list[tuple[TransitionSpec, yaml.Node]],
    start_level: Level,
) -> None:
    """An appeal can be escalated from every open state up to the district: at each level it can reach, those
    expected to act in a state (workflow.domain.authorization.acting_roles) must be able to fire something."""
    specs = [t for t, _ in transitions]
    edges: dict[str, set[str]] = {name: set() for name in states}
    for transition in specs:
        for source in transition.sources:
            edges.setdefault(source, set()).add(transition.dest)
    reachable = set(_walk(initial, edges))
    # States already reported (unknown role, unreachable, dead end) are not reported again.
    checked = [s for s, _ in states.values() if s.role in DEFINITION_ROLES and edges[s.name] and s.name in reachable]
    gaps: dict[str, list[str]] = {}
    for state, level, actors in nobody_acts(checked, specs, start_level):
        gaps.setdefault(state.name, []).append(f"{level} ({', '.join(sorted(actors))})")
    for name, where in gaps.items():
        allowed = sorted({r for t in specs if name in t.sources for r in t.roles}) or ["nobody"]
        reader.problem(
            states[name][1],
            f"state {name!r}: an appeal escalated while in it finds nobody who can act at the "
            f"{'; '.join(where)} level: its transitions allow only {', '.join(allowed)}; add 'chain' (the "
            "people of the level holding the appeal) to the roles of a transition from it",
        )


def _walk(start: str | None, edges: dict[str, set[str]]) -> Iterator[str]:
    seen: set[str] = set()
    queue = deque([start] if start else [])
    while queue:
        state = queue.popleft()
        if state in seen:
            continue
        seen.add(state)
        yield state
        queue.extend(edges.get(state, ()))
