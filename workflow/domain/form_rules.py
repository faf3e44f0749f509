"""Checks a definition's rules between form fields (an end not before a start, a date not in the past)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from workflow.domain.spec import FieldType, RuleOp, RuleSpec
from workflow.errors import FieldProblem

SHANGHAI = ZoneInfo("Asia/Shanghai")  # "today" is the day in Shanghai, where the appeals are made
COMPARISONS: dict[RuleOp, Callable[[Any, Any], bool]] = {
    RuleOp.LT: operator.lt,
    RuleOp.LE: operator.le,
    RuleOp.GT: operator.gt,
    RuleOp.GE: operator.ge,
    RuleOp.EQ: operator.eq,
    RuleOp.NE: operator.ne,
}
# Field types each kind of rule can read; comparisons need both fields of one group.
COMPARABLE_GROUPS = (
    frozenset({FieldType.DATE}),
    frozenset({FieldType.DATETIME}),
    frozenset({FieldType.INTEGER, FieldType.NUMBER}),
)
TIMELY_TYPES = frozenset({FieldType.DATE, FieldType.DATETIME})


def check_rules(
    rules: Sequence[RuleSpec], types: Mapping[str, FieldType], cleaned: Mapping[str, Any], now: datetime
) -> list[FieldProblem]:
    """A problem at the rule's field for each rule the cleaned values break; a rule whose fields were
    left empty (or were refused on their own) is not checked."""
    problems = []
    for rule in rules:
        value = _comparable(types.get(rule.field), cleaned.get(rule.field))
        if value is None:
            continue
        if rule.op in COMPARISONS:
            other = _comparable(types.get(rule.other or ""), cleaned.get(rule.other or ""))
            if other is None or COMPARISONS[rule.op](value, other):
                continue
            fact = f"{rule.field} {cleaned[rule.field]} must be {rule.op} {rule.other} {cleaned[rule.other or '']}"
        else:
            present: date | datetime = now if isinstance(value, datetime) else now.astimezone(SHANGHAI).date()
            if (value >= present) if rule.op is RuleOp.NOT_IN_PAST else (value <= present):
                continue
            when = "in the past" if rule.op is RuleOp.NOT_IN_PAST else "in the future"
            fact = f"{rule.field} {cleaned[rule.field]} must not be {when} (today is {now.astimezone(SHANGHAI).date()})"
        english = rule.message.get("en")
        problems.append(FieldProblem(rule.field, f"{english} ({fact})" if english else fact, dict(rule.message)))
    return problems


def _comparable(kind: FieldType | None, value: Any) -> Any:
    """The cleaned value as something Python compares (dates and times are stored as ISO text)."""
    if value is None or kind is None:
        return None
    if kind is FieldType.DATE:
        return date.fromisoformat(value)
    if kind is FieldType.DATETIME:
        return datetime.fromisoformat(value)
    return value
