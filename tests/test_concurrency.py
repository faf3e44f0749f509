"""Real concurrent connections: the version column, not luck, decides who wins a race on an appeal."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.errors import Conflict, VersionConflict
from workflow.services.workflow import Workflow

THREADS = 8
ROUNDS = 5
# A broken race fails the test instead of hanging it; nothing here waits on time to pass.
BARRIER_TIMEOUT = 60
# One appeal can bounce between these two forever, so every round has a trigger to fight over.
CYCLE = [
    ("request_materials", ("staff-b01", "specialist-b01"), "请补充场地方同意书", "awaiting_materials_pre_check"),
    ("provide_materials", ("contact-0001",), None, "pre_check"),
]


@pytest.fixture
def workers(demo: Workflow, db_url: str, clock: FrozenClock) -> Iterator[list[Workflow]]:
    """One `Workflow` per thread, each with its own engine: separate connections, as separate nodes would have."""
    made = [connect(db_url, clock=clock) for _ in range(THREADS)]
    yield made
    leaked = sum(w.engine.pool.checkedout() for w in made)
    for w in made:
        w.engine.dispose()
    assert leaked == 0, f"{leaked} worker connection(s) left checked out"


def race(
    workers: Sequence[Workflow],
    act: Callable[[int, Workflow, Any], Any],
    prepare: Callable[[int, Workflow], Any] = lambda index, wf: None,
) -> list[Any]:
    """Each worker prepares, all meet at a barrier, then all act at once; returns each result or exception."""
    barrier = threading.Barrier(len(workers))

    def run(index: int) -> Any:
        prepared = prepare(index, workers[index])
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return act(index, workers[index], prepared)

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        futures = [pool.submit(run, index) for index in range(len(workers))]
        return [future.exception() or future.result() for future in futures]


def split(outcomes: list[Any]) -> tuple[list[Any], list[BaseException]]:
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    return [o for o in outcomes if not isinstance(o, BaseException)], errors


def submit_event(wf: Workflow, enterprise_id: int = 1) -> str:
    appeal = wf.submit(
        "outdoor_event_permit", enterprise_id=enterprise_id, as_user=f"contact-{enterprise_id:04d}", data=OUTDOOR_EVENT
    )
    return str(appeal["number"])


def assert_replay_agrees(wf: Workflow, number: str) -> None:
    record, snapshot = wf.record(number), wf.replayed(number)
    stored = (record.state, record.level, record.unit_id, record.assignee_id, record.version, record.is_open)
    replayed = (
        snapshot.state,
        snapshot.level,
        snapshot.unit_id,
        snapshot.assignee_id,
        snapshot.version,
        snapshot.is_open,
    )
    assert replayed == stored, f"{number}: the audit trail says {replayed}, the row says {stored}"
    assert snapshot.data == dict(record.data), f"{number}: replayed data differs from the stored data"
    fired = [e for e in wf.events(number) if e.kind != "commented"]
    assert record.version == len(fired), f"{number}: version {record.version} but {len(fired)} state events"


def rounds() -> Iterator[tuple[str, tuple[str, ...], str | None, str]]:
    """The trigger to fight over in each round: first accept the appeal, then bounce it for materials."""
    yield "start_pre_check", ("staff-b01", "specialist-b01"), None, "pre_check"
    for index in range(ROUNDS - 1):
        yield CYCLE[index % len(CYCLE)]


def test_eight_writers_with_the_same_expected_version_leave_exactly_one_winner(
    demo: Workflow, workers: list[Workflow]
) -> None:
    number = submit_event(demo)
    for trigger, users, comment, target in rounds():
        before = demo.record(number).version
        events_before = len(demo.events(number))

        def read_version(index: int, wf: Workflow) -> int:
            return wf.record(number).version

        def fire(
            index: int,
            wf: Workflow,
            version: int,
            trigger: str = trigger,
            users: tuple[str, ...] = users,
            comment: str | None = comment,
        ) -> Any:
            return wf.fire(
                number, trigger, as_user=users[index % len(users)], comment=comment, expected_version=version
            )

        winners, losers = split(race(workers, fire, read_version))
        assert len(winners) == 1, f"{trigger}: {len(winners)} writers won; errors: {losers!r}"
        assert winners[0].version == before + 1 and winners[0].state == target
        for error in losers:
            assert isinstance(error, VersionConflict), f"{trigger}: a loser failed with {error!r}"
            assert number in str(error), str(error)
            assert f"expected version {before}" in str(error), str(error)
            assert error.expected == before and error.actual == before + 1, error.details()
        assert len(demo.events(number)) == events_before + 1, f"{trigger}: not exactly one new event"
        assert demo.record(number).version == before + 1, f"{trigger}: the version did not go up by exactly one"
        assert demo.history(number)[-1]["trigger"] == trigger
        assert_replay_agrees(demo, number)


def test_eight_writers_without_an_expected_version_still_leave_one_winner_and_nothing_partial(
    demo: Workflow, workers: list[Workflow]
) -> None:
    number = submit_event(demo)
    for trigger, users, comment, target in rounds():
        before = demo.record(number).version
        counts = table_counts(demo.engine)

        def fire(
            index: int,
            wf: Workflow,
            _: None,
            trigger: str = trigger,
            users: tuple[str, ...] = users,
            comment: str | None = comment,
        ) -> Any:
            return wf.fire(number, trigger, as_user=users[index % len(users)], comment=comment)

        winners, losers = split(race(workers, fire))
        assert len(winners) == 1, f"{trigger}: {len(winners)} writers won; errors: {losers!r}"
        assert winners[0].state == target
        for error in losers:
            # Those who read before the winner committed lose the compare-and-set; the rest see the new state.
            assert isinstance(error, Conflict), f"{trigger}: a loser failed with {error!r}"
            assert number in str(error), str(error)
        after = table_counts(demo.engine)
        assert (after["appeals"], after["appeal_events"]) == (counts["appeals"], counts["appeal_events"] + 1), (
            f"{trigger}: the losers left something behind"
        )
        record = demo.record(number)
        assert (record.state, record.version) == (target, before + 1)
        assert_replay_agrees(demo, number)


def test_concurrent_fires_on_different_appeals_all_succeed(demo: Workflow, workers: list[Workflow]) -> None:
    numbers = [submit_event(demo, enterprise_id=index + 1) for index in range(THREADS)]
    users = ("staff-b01", "specialist-b01")

    def fire(index: int, wf: Workflow, _: None) -> Any:
        return wf.fire(numbers[index], "start_pre_check", as_user=users[index % 2], expected_version=1)

    winners, losers = split(race(workers, fire))
    assert losers == [], f"false conflicts between different appeals: {losers!r}"
    assert sorted(o.number for o in winners) == sorted(numbers)
    for number in numbers:
        record = demo.record(number)
        assert (record.state, record.version) == ("pre_check", 2), number
        assert_replay_agrees(demo, number)


def test_concurrent_submits_get_distinct_sequential_numbers(demo: Workflow, workers: list[Workflow]) -> None:
    first = int(submit_event(demo)[-6:])

    def submit(index: int, wf: Workflow, _: None) -> Any:
        return submit_event(wf, enterprise_id=index + 2)

    numbers, errors = split(race(workers, submit))
    assert errors == [], f"concurrent submits failed: {errors!r}"
    assert sorted(int(n[-6:]) for n in numbers) == list(range(first + 1, first + 1 + THREADS)), numbers
    for index, number in enumerate(numbers):
        shown = demo.show(number)
        assert shown["enterprise"]["id"] == index + 2, f"{number} belongs to another submission"
        assert (shown["state"], shown["version"]) == ("submitted", 1)
        assert_replay_agrees(demo, number)


def test_comments_racing_a_fire_all_land_and_never_move_the_version(demo: Workflow, workers: list[Workflow]) -> None:
    number = submit_event(demo)

    def act(index: int, wf: Workflow, _: None) -> Any:
        if index == 0:
            return wf.fire(number, "start_pre_check", as_user="staff-b01")
        return wf.comment(number, f"第{index}条意见", as_user="specialist-b01")

    _, errors = split(race(workers, act))
    assert errors == [], f"comments conflicted with a state change: {errors!r}"
    events = demo.events(number)
    assert sorted(e.comment for e in events if e.kind == "commented") == sorted(
        f"第{index}条意见" for index in range(1, THREADS)
    )
    assert demo.record(number).version == 2
    assert_replay_agrees(demo, number)
