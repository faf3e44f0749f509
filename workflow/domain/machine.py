"""The one module that imports `transitions`: one compiled machine per definition version, no model kept.

The appeal's state lives in its database row; firing a trigger runs the shared machine on a
throwaway token holding that state (the "model-less" pattern), so memory does not grow with the
number of appeals and there is nothing to detach afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from transitions import EventData, Machine, MachineError

from workflow.domain.guards import GUARDS
from workflow.domain.spec import AppealDefinition


class _Token:
    """What the machine moves: a state and, when refused, the guard that said no."""

    __slots__ = ("failed_guard", "state")

    def __init__(self, state: str) -> None:
        self.state = state
        self.failed_guard: str | None = None


class FireOutcome:
    __slots__ = ("failed_guard", "moved", "state")

    def __init__(self, moved: bool, state: str, failed_guard: str | None) -> None:
        self.moved = moved
        self.state = state
        self.failed_guard = failed_guard


def _guard_condition(name: str) -> Callable[[EventData], bool]:
    guard = GUARDS[name]

    def condition(event: EventData) -> bool:
        passed = guard.check(event.kwargs["data"])
        if not passed:
            token = cast(_Token, event.model)
            token.failed_guard = name
        return passed

    condition.__name__ = f"guard_{name}"
    return condition


class CompiledMachine:
    """The compiled form of one definition version."""

    def __init__(self, definition: AppealDefinition) -> None:
        self.definition = definition
        self._machine = Machine(
            model=None,
            states=list(definition.states),
            initial=definition.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        for spec in definition.transitions:
            self._machine.add_transition(
                spec.trigger,
                list(spec.sources),
                spec.dest,
                conditions=[_guard_condition(g) for g in spec.guards],
            )

    def fire(self, state: str, trigger: str, data: Mapping[str, Any]) -> FireOutcome:
        """Run `trigger` from `state`; the caller has checked that the transition exists."""
        token = _Token(state)
        try:
            moved = bool(self._machine.events[trigger].trigger(token, data=data))
        except (MachineError, KeyError) as exc:  # turned into TransitionNotAllowed by the caller
            raise LookupError(f"no transition {trigger!r} from {state!r}") from exc
        return FireOutcome(moved, token.state, token.failed_guard)

    def guards_pass(self, state: str, trigger: str, data: Mapping[str, Any]) -> bool:
        spec = self.definition.transition(state, trigger)
        return spec is not None and all(GUARDS[g].check(data) for g in spec.guards)
