"""Named guards that definitions may put on transitions; each reads the appeal's data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Data = Mapping[str, Any]


@dataclass(frozen=True)
class Guard:
    name: str
    check: Callable[[Data], bool]
    explanation: str  # why it said no, for the refused actor
    reads: frozenset[str] = frozenset()  # the fields it looks at

    def judgeable_without(self, supplied: frozenset[str]) -> bool:
        """False when it reads a field the actor has yet to supply, so it cannot be judged in advance."""
        return not (self.reads & supplied)


def _number(data: Data, key: str) -> float:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


# A branch of its own needs three full party members (Constitution of the CPC, art. 30).
GUARDS: dict[str, Guard] = {
    g.name: g
    for g in (
        Guard(
            "three_or_more_party_members",
            lambda d: _number(d, "party_members") >= 3,
            "an enterprise needs three or more party members to found its own branch",
            frozenset({"party_members"}),
        ),
        Guard(
            "fewer_than_three_party_members",
            lambda d: 0 < _number(d, "party_members") < 3,
            "only enterprises with one or two party members join a joint branch",
            frozenset({"party_members"}),
        ),
        Guard(
            "materials_complete",
            lambda d: d.get("materials_complete") is True,
            "every item of the materials checklist must be collected first (materials_complete=true)",
            frozenset({"materials_complete"}),
        ),
        Guard(
            "bank_matched",
            lambda d: bool(str(d.get("bank") or "").strip()),
            "a bank must be matched first (field 'bank')",
            frozenset({"bank"}),
        ),
        Guard(
            "amount_within_policy_cap",
            lambda d: _number(d, "amount_yuan") <= 5_000_000,
            "policy benefits above 5,000,000 yuan are decided by the district, not filed directly",
            frozenset({"amount_yuan"}),
        ),
    )
}
