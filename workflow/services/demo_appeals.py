"""Demo appeals in every state of every type, some of them old enough to have breached."""

from __future__ import annotations

from collections import deque
from datetime import timedelta

from workflow.clock import FrozenClock
from workflow.domain.spec import AppealDefinition, TransitionSpec
from workflow.errors import WorkflowError
from workflow.services.walkthrough import Walkthrough
from workflow.services.workflow import Workflow


def paths_to_every_state(definition: AppealDefinition) -> dict[str, list[TransitionSpec]]:
    """The shortest walk from the initial state to each state (guards aside)."""
    paths: dict[str, list[TransitionSpec]] = {definition.initial: []}
    queue = deque([definition.initial])
    while queue:
        state = queue.popleft()
        for transition in definition.transitions_from(state):
            if transition.dest not in paths:
                paths[transition.dest] = [*paths[state], transition]
                queue.append(transition.dest)
    return paths


def seed_demo_appeals(wf: Workflow, *, days_back: int = 4) -> list[str]:
    """Walk one appeal of each type into each state; the oldest were submitted days ago, so the
    first sweep finds limits breached and escalates them."""
    past = FrozenClock(wf.clock.now() - timedelta(days=days_back))
    then = Workflow(wf.engine, wf.registry, past, wf.planner)
    walker = Walkthrough(then, lambda _line: None)
    numbers: list[str] = []
    enterprise = 0
    for view in then.definitions():
        definition = then.registry.current_spec(view["name"])
        for path in paths_to_every_state(definition).values():
            enterprise = enterprise % 300 + 1
            number = walker.submit(definition, enterprise)
            for transition in path:
                try:
                    walker.step(number, transition)
                except WorkflowError:
                    break  # a guard the sample data does not meet: the appeal stays where it got to
            numbers.append(number)
            past.advance(timedelta(minutes=37))
    return numbers
