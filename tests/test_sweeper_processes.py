"""Sweepers in separate OS processes share one timers table: every due timer fires once, even when a node dies."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import re
import subprocess
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from tests.conftest import OUTDOOR_EVENT
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.persistence.tables import Appeal, AppealEvent, Notice, Timer, table_of
from workflow.scheduling.scheduler import SweepScheduler
from workflow.services.sweeper import FAULT_VARIABLE, Sweeper, SweepReport
from workflow.services.workflow import Workflow

timers_t, notices_t, events_t, appeals_t = (table_of(m) for m in (Timer, Notice, AppealEvent, Appeal))

PROCESSES = 4
# A broken start or a hung child fails the test instead of hanging it; nothing here waits for time to pass.
PROCESS_TIMEOUT = 60
REMINDER, BREACH = 50, 100
TIMER_IN_KEY = re.compile(r":timer(\d+):")


@dataclass
class Seeded:
    reminders: list[int]  # timer ids
    breaches: list[int]  # timer ids, one per appeal
    breach_appeals: list[int]

    @property
    def all(self) -> list[int]:
        return [*self.reminders, *self.breaches]


def submit_appeals(wf: Workflow, count: int) -> list[int]:
    """`count` outdoor event permits from enterprises across the district, their own timers cancelled."""
    for index in range(1, count + 1):
        wf.submit("outdoor_event_permit", enterprise_id=index, as_user=f"contact-{index:04d}", data=OUTDOOR_EVENT)
    with wf.engine.begin() as conn:
        # Only the timers a test plants below are due; the submission's own ones would blur the counts.
        conn.execute(update(timers_t).values(status="cancelled"))
        return list(conn.execute(select(appeals_t.c.id).order_by(appeals_t.c.id.desc()).limit(count)).scalars())


def timer_row(wf: Workflow, **values: Any) -> dict[str, Any]:
    """A pending timer as the planner writes one; `values` give at least appeal_id, threshold and due_at."""
    return {"clock": "state", "status": "pending", "attempts": 0, "created_at": wf.clock.now(), **values}


def plant_timers(wf: Workflow, rows: list[dict[str, Any]]) -> list[int]:
    """Insert timers one by one; their ids, in the order given."""
    with wf.engine.begin() as conn:
        statement = insert(timers_t).returning(timers_t.c.id)
        return [conn.execute(statement, timer_row(wf, **row)).scalar_one() for row in rows]


def seed(wf: Workflow, *, reminder_appeals: int, reminders_each: int, breach_appeals: int, due: datetime) -> Seeded:
    """Reminders on some appeals, one breach each on others (a breach cancels its appeal's other timers)."""
    ids = submit_appeals(wf, reminder_appeals + breach_appeals)
    random.Random(7).shuffle(ids)
    holding, breaching = ids[:reminder_appeals], ids[reminder_appeals:]
    reminders = [
        timer_row(
            wf,
            appeal_id=appeal,
            clock=("state", "overall")[n % 2],
            threshold=(50, 80)[n % 2],
            due_at=due - timedelta(seconds=n),
        )
        for appeal in holding
        for n in range(reminders_each)
    ]
    breaches = [timer_row(wf, appeal_id=appeal, threshold=BREACH, due_at=due) for appeal in breaching]
    with wf.engine.begin() as conn:
        conn.execute(insert(timers_t), reminders + breaches)
        found = conn.execute(select(timers_t.c.id, timers_t.c.threshold).where(timers_t.c.status == "pending")).all()
    return Seeded(
        reminders=sorted(r.id for r in found if r.threshold < BREACH),
        breaches=sorted(r.id for r in found if r.threshold == BREACH),
        breach_appeals=sorted(breaching),
    )


def timer_rows(wf: Workflow, ids: list[int]) -> dict[int, Any]:
    with wf.engine.connect() as conn:
        return {r.id: r for r in conn.execute(select(timers_t).where(timers_t.c.id.in_(ids)))}


def reminder_notices(wf: Workflow) -> Counter[int]:
    """Reminder notices per timer, read from the dedupe key `reminder:{appeal_id}:timer{timer_id}:{user}`."""
    with wf.engine.connect() as conn:
        query = select(notices_t.c.dedupe_key).where(notices_t.c.kind == "reminder").order_by(notices_t.c.id)
        keys = conn.execute(query).scalars().all()
    found = [TIMER_IN_KEY.search(key) for key in keys]
    assert all(found), f"reminder notices without a timer in their dedupe key: {keys}"
    return Counter(int(match[1]) for match in found if match)


def escalations(wf: Workflow) -> Counter[int]:
    with wf.engine.connect() as conn:
        query = select(events_t.c.appeal_id).where(events_t.c.kind == "escalated")
        return Counter(conn.execute(query).scalars())


def real_now() -> datetime:
    """What a child process's system clock reads; timers it must fire are due before this."""
    return datetime.now(UTC)


@pytest.fixture
def live_demo(demo: Workflow, clock: FrozenClock) -> Workflow:
    """The demo district with the clock moved to just before the real now, which separate processes read."""
    clock.set(max(clock.now(), real_now() - timedelta(hours=1)))
    return demo


# --- (a) four processes, one table ------------------------------------------------------------
def _sweep_in_child(url: str, batch: int, barrier: Any, out: Connection) -> None:
    """A node: its own interpreter, engine and system clock; sweeps once every node is ready."""
    try:
        wf = connect(url)
        sweeper = Sweeper(wf, batch=batch)
        barrier.wait(timeout=PROCESS_TIMEOUT)
        report = sweeper.sweep()
        wf.engine.dispose()
        out.send({"node": sweeper.node, **report.as_dict()})
    except BaseException:  # the parent asserts on it; a child's traceback would otherwise be lost
        out.send({"node": None, "claimed": 0, "errors": [traceback.format_exc()]})
        raise
    finally:
        out.close()


def sweep_in_processes(db_url: str, count: int, batch: int) -> list[dict[str, Any]]:
    """Start `count` sweeping processes that meet at a barrier; each one's report (or how it died)."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(count)
    children, readers = [], []
    for _ in range(count):
        reader, writer = spawn.Pipe(duplex=False)
        child = spawn.Process(target=_sweep_in_child, args=(db_url, batch, barrier, writer))
        child.start()
        writer.close()  # the child holds the only writer: a child that dies leaves EOF, not a hang
        children.append(child)
        readers.append(reader)
    reports = []
    for child, reader in zip(children, readers, strict=True):
        try:
            assert reader.poll(PROCESS_TIMEOUT), f"sweeper process {child.pid} sent nothing in {PROCESS_TIMEOUT} s"
            reports.append(reader.recv())
        except EOFError:
            reports.append({"node": None, "claimed": 0, "errors": [f"process {child.pid} died without a report"]})
        child.join(timeout=PROCESS_TIMEOUT)
        reports[-1]["exitcode"] = child.exitcode
    return reports


@pytest.mark.slow
def test_four_processes_sweeping_at_once_fire_each_of_a_thousand_timers_exactly_once(
    live_demo: Workflow, db_url: str
) -> None:
    seeded = seed(live_demo, reminder_appeals=50, reminders_each=19, breach_appeals=50, due=real_now())
    assert (len(seeded.reminders), len(seeded.breaches)) == (950, 50)
    # Small batches make the nodes take turns claiming instead of one node taking everything at once.
    reports = sweep_in_processes(db_url, PROCESSES, batch=25)
    assert [(r["exitcode"], r["errors"]) for r in reports] == [(0, [])] * PROCESSES, reports
    total = {key: sum(r[key] for r in reports) for key in ("claimed", "fired", "reminders", "escalations", "skipped")}
    assert total == {"claimed": 1000, "fired": 1000, "reminders": 950, "escalations": 50, "skipped": 0}

    rows = timer_rows(live_demo, seeded.all)
    assert Counter(r.status for r in rows.values()) == {"done": 1000}
    assert all(r.fired_at is not None for r in rows.values()), "a done timer has no fired_at"
    # The notices' dedupe keys would hide a second firing, so the claims and the reports are counted too.
    assert Counter(r.attempts for r in rows.values()) == {1: 1000}, "a timer was claimed more than once"
    # Each node fired exactly what it claimed: the reports and the claim column agree node by node.
    by_node = Counter(r.claimed_by for r in rows.values())
    assert by_node == {r["node"]: r["claimed"] for r in reports if r["claimed"]}
    assert len(by_node) >= 2, f"one node did all the work, so nothing raced: {by_node}"

    assert reminder_notices(live_demo) == Counter({timer: 1 for timer in seeded.reminders})
    assert escalations(live_demo) == Counter({appeal: 1 for appeal in seeded.breach_appeals})


# --- (b) a node killed after claiming -----------------------------------------------------------
def appeals_command(db_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflow.cli", "--db", db_url, *args],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        env={**os.environ, **(env or {})},
    )


def test_the_timers_of_a_sweeper_killed_after_claiming_fire_once_after_the_lease(
    live_demo: Workflow, db_url: str, clock: FrozenClock
) -> None:
    seeded = seed(live_demo, reminder_appeals=6, reminders_each=5, breach_appeals=4, due=real_now())
    before = real_now()
    killed = appeals_command(db_url, "sweep", "--lease", "30", "--json", env={FAULT_VARIABLE: "after_claim"})
    assert killed.returncode == 70, killed.stderr
    assert "fault injected: exiting after claiming 34 timers" in killed.stderr
    assert killed.stdout == "", "a killed sweeper reported something"

    rows = timer_rows(live_demo, seeded.all)
    assert Counter(r.status for r in rows.values()) == {"claimed": 34}
    assert len({r.claimed_by for r in rows.values()}) == 1
    leases = {r.lease_until for r in rows.values()}
    assert min(leases) >= before + timedelta(seconds=30), f"lease ends too soon: {min(leases)} (started {before})"
    assert max(leases) <= real_now() + timedelta(seconds=30)
    assert not reminder_notices(live_demo) and not escalations(live_demo), "a killed sweeper fired something"
    survivor = appeals_command(db_url, "sweep", "--json")
    assert survivor.returncode == 0, survivor.stderr
    assert json.loads(survivor.stdout)["claimed"] == 0, f"another node took live claims: {survivor.stdout}"

    clock.set(min(leases) - timedelta(seconds=1))
    early = Sweeper(live_demo, node="early").sweep()
    assert (early.claimed, early.fired) == (0, 0), f"a claim was taken before its lease ended: {early.as_dict()}"
    assert Counter(r.status for r in timer_rows(live_demo, seeded.all).values()) == {"claimed": 34}

    clock.set(max(leases) + timedelta(seconds=1))
    late = Sweeper(live_demo, node="late").sweep()
    assert late.as_dict() == SweepReport(claimed=34, reminders=30, escalations=4).as_dict()
    rows = timer_rows(live_demo, seeded.all)
    assert {(r.status, r.claimed_by, r.attempts) for r in rows.values()} == {("done", "late", 2)}
    assert reminder_notices(live_demo) == Counter({timer: 1 for timer in seeded.reminders})
    assert escalations(live_demo) == Counter({appeal: 1 for appeal in seeded.breach_appeals})
    again = Sweeper(live_demo, node="again").sweep()
    assert again.claimed == 0, f"a fired timer was claimed again: {again.as_dict()}"


def test_a_node_that_outlived_its_lease_does_not_fire_what_another_node_took_over(
    demo: Workflow, clock: FrozenClock
) -> None:
    appeals = submit_appeals(demo, 1)
    planted = plant_timers(
        demo, [{"appeal_id": appeals[0], "threshold": REMINDER, "due_at": clock.now()} for _ in range(3)]
    )
    slow = Sweeper(demo, node="slow", lease=timedelta(seconds=30))
    claimed = slow.claim()
    assert [timer.id for timer in claimed] == planted
    clock.advance(timedelta(seconds=31))  # the slow node stalls past its lease; another node takes over
    assert Sweeper(demo, node="fast").sweep().as_dict() == SweepReport(claimed=3, reminders=3).as_dict()
    late = SweepReport()
    for timer in claimed:
        slow.fire(timer, late)
    assert late.as_dict() == SweepReport(skipped=3).as_dict(), "a node fired timers it no longer held"
    assert {(r.status, r.claimed_by, r.attempts) for r in timer_rows(demo, planted).values()} == {("done", "fast", 2)}
    assert reminder_notices(demo) == Counter({timer: 1 for timer in planted})


# --- (c) a long outage ----------------------------------------------------------------------------
def test_timers_that_fell_due_while_every_node_was_down_fire_once_each_oldest_first(
    demo: Workflow, clock: FrozenClock
) -> None:
    appeals = submit_appeals(demo, 4)
    start = clock.now()
    # Every six hours over five days, planted in shuffled order so ids say nothing about due times.
    dues = [start + timedelta(hours=6 * n) for n in range(1, 21)]
    random.Random(3).shuffle(dues)
    planted = plant_timers(
        demo, [{"appeal_id": appeals[n % 4], "threshold": REMINDER, "due_at": due} for n, due in enumerate(dues)]
    )
    later = plant_timers(demo, [{"appeal_id": appeals[0], "threshold": REMINDER, "due_at": start + timedelta(days=9)}])

    clock.advance(timedelta(days=7))  # nobody swept for a week
    report = Sweeper(demo, batch=3).sweep()  # small batches: oldest first must hold across batches too
    assert report.as_dict() == SweepReport(claimed=20, reminders=20).as_dict()

    rows = timer_rows(demo, planted + later)
    assert {rows[t].status for t in planted} == {"done"}
    assert {rows[t].fired_at for t in planted} == {clock.now()}, "a timer fired at its due time, not on wake-up"
    assert rows[later[0]].status == "pending", "a timer not yet due fired"
    notices = reminder_notices(demo)  # in the order written, one per timer fired
    assert notices == Counter({timer: 1 for timer in planted}), "a missed timer fired other than once"
    for appeal in appeals:  # each appeal's timers in due order; appeals may take turns across batches
        own = [t for t in planted if rows[t].appeal_id == appeal]
        fired = [t for t in notices if t in own]
        assert fired == sorted(own, key=lambda t: rows[t].due_at), f"appeal {appeal}'s timers fired out of order"
    assert Sweeper(demo).sweep().claimed == 0, "a missed interval fired a second time"


def test_a_week_without_sweeping_climbs_each_appeal_as_far_as_steady_sweeping_would(
    demo: Workflow, clock: FrozenClock
) -> None:
    for index in (1, 31, 61):  # the planner's own timers: state 2 h, 3.2 h, 4 h; overall 2.5, 4, 5 working days
        demo.submit("outdoor_event_permit", enterprise_id=index, as_user=f"contact-{index:04d}", data=OUTDOOR_EVENT)
    clock.advance(timedelta(days=7))
    report = Sweeper(demo).sweep()
    # Per appeal: 4 h at each of building, community and sub-district run out one after the other (each
    # level's clock starting at the previous breach's instant), then the district's own 4 h and, at
    # Thursday 10:00, the overall 5 d: 3 climbs, 2 breaches at the top, 2 state reminders per level and the
    # overall 50 and 80 %. The six state reminders below the district fell due before a level change the
    # same sweep found: sent, marked late.
    assert report.as_dict() == SweepReport(
        claimed=45, reminders=30, late_reminders=18, escalations=9, breaches_at_top=6
    ).as_dict()
    assert escalations(demo) == Counter({1: 3, 2: 3, 3: 3})
    assert [demo.show(f"OE-2026-00000{n}")["level"] for n in (1, 2, 3)] == ["district"] * 3
    with demo.engine.connect() as conn:
        statuses = Counter(tuple(row) for row in conn.execute(select(timers_t.c.clock, timers_t.c.status)))
    assert statuses == {("state", "done"): 36, ("overall", "done"): 9}, "no due timer is cancelled unfired"
    assert Sweeper(demo).sweep().claimed == 0


class FaultyFireSweeper(Sweeper):
    """Firing one chosen timer raises, as a lost connection or a definition that no longer loads would."""

    def __init__(self, wf: Workflow, poison: int) -> None:
        super().__init__(wf, node="faulty")
        self.poison = poison

    def fire(self, timer: Any, report: SweepReport) -> Any | None:
        if timer.id == self.poison:
            raise RuntimeError(f"connection lost while firing timer {timer.id}")
        return super().fire(timer, report)


def test_a_timer_that_fails_to_fire_is_reported_its_appeal_waits_and_the_other_appeals_still_fire(
    demo: Workflow, clock: FrozenClock
) -> None:
    broken, healthy = submit_appeals(demo, 2)
    due = [clock.now() - timedelta(minutes=m) for m in (5, 4, 3, 2, 1)]
    planted = plant_timers(demo, [{"appeal_id": broken, "threshold": REMINDER, "due_at": d} for d in due])
    others = plant_timers(demo, [{"appeal_id": healthy, "threshold": REMINDER, "due_at": d} for d in due])
    report = FaultyFireSweeper(demo, poison=planted[1]).sweep()
    assert report.reminders == 6
    assert len(report.errors) == 1 and f"connection lost while firing timer {planted[1]}" in report.errors[0]
    rows = timer_rows(demo, planted + others)
    # A later timer never fires while an earlier one of its appeal is pending: the rest wait for the lease.
    assert [rows[t].status for t in planted] == ["done", "claimed", "claimed", "claimed", "claimed"]
    assert [rows[t].status for t in others] == ["done"] * 5
    clock.advance(timedelta(seconds=61))
    assert Sweeper(demo, node="next").sweep().as_dict() == SweepReport(claimed=4, reminders=4).as_dict()
    assert list(reminder_notices(demo))[-4:] == planted[1:], "the waiting timers fire in due order"


# --- (d) the scheduler drives the sweeper ------------------------------------------------------------
class SignallingSweeper(Sweeper):
    """Says when it has swept; raises on the passes listed in `fail_on` (1-based)."""

    def __init__(self, wf: Workflow, fail_on: tuple[int, ...] = ()) -> None:
        super().__init__(wf, node="scheduled")
        self.fail_on = fail_on
        self.calls = 0
        self.swept = threading.Event()
        self.reports: list[SweepReport] = []

    def sweep(self, max_batches: int | None = None) -> SweepReport:
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError(f"database unreachable on pass {self.calls}")
        report = super().sweep(max_batches)
        self.reports.append(report)
        self.swept.set()
        return report


def test_the_scheduler_runs_sweeps_in_the_background_until_shut_down(demo: Workflow, clock: FrozenClock) -> None:
    appeals = submit_appeals(demo, 1)
    planted = plant_timers(demo, [{"appeal_id": appeals[0], "threshold": REMINDER, "due_at": clock.now()}])
    sweeper = SignallingSweeper(demo)
    scheduler = SweepScheduler(sweeper, interval=0.05)
    scheduler.start()
    try:
        assert sweeper.swept.wait(timeout=10), "the scheduler never ran a sweep"
    finally:
        scheduler.shutdown()
    assert scheduler.passes >= 1
    assert sweeper.reports[0].reminders == 1
    assert timer_rows(demo, planted)[planted[0]].status == "done"
    assert reminder_notices(demo) == Counter({planted[0]: 1})


def test_a_failing_sweep_is_logged_and_the_next_pass_still_runs(
    demo: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    sweeper = SignallingSweeper(demo, fail_on=(1,))
    scheduler = SweepScheduler(sweeper, interval=0.05)
    with caplog.at_level(logging.ERROR, logger="workflow.scheduling.scheduler"):
        scheduler.start()
        try:
            assert sweeper.swept.wait(timeout=10), "no sweep ran after the failing one"
        finally:
            scheduler.shutdown()
    assert scheduler.passes >= 2 and sweeper.calls >= 2
    failures = [r for r in caplog.records if r.name == "workflow.scheduling.scheduler"]
    assert [r.getMessage() for r in failures] == ["sweep failed; will retry in 0 s"]
    assert failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == "database unreachable on pass 1"


# --- (e) the claim itself ------------------------------------------------------------------------------
def test_concurrent_claims_each_take_at_most_a_batch_and_never_share_an_appeal(
    demo: Workflow, db_url: str, clock: FrozenClock
) -> None:
    appeals = submit_appeals(demo, 40)
    due = clock.now() - timedelta(minutes=1)
    planted = plant_timers(
        demo, [{"appeal_id": appeal, "threshold": REMINDER, "due_at": due} for appeal in appeals for _ in range(3)]
    )
    nodes, batch = 6, 7
    barrier = threading.Barrier(nodes)
    claims: dict[str, list[list[Any]]] = {}
    failures: list[BaseException] = []

    def claimer(n: int) -> None:
        wf = connect(db_url, clock=clock)
        try:
            sweeper = Sweeper(wf, node=f"claimer{n}", batch=batch)
            barrier.wait(timeout=PROCESS_TIMEOUT)
            claims[sweeper.node] = [sweeper.claim() for _ in range(3)]  # three claims each
        except BaseException as exc:  # asserted below
            failures.append(exc)
        finally:
            wf.engine.dispose()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PROCESS_TIMEOUT)
    assert not failures, failures
    sizes = {node: [len(rows) for rows in taken] for node, taken in claims.items()}
    assert all(size <= batch for each in sizes.values() for size in each), f"a claim took more than {batch}: {sizes}"
    taken = [row.id for each in claims.values() for rows in each for row in rows]
    assert len(taken) == len(set(taken)), "a timer was claimed by two nodes"
    holders: dict[int, set[str]] = {}
    for node, each in claims.items():
        for row in (row for rows in each for row in rows):
            holders.setdefault(row.appeal_id, set()).add(node)
    assert all(len(h) == 1 for h in holders.values()), f"an appeal leased by two nodes: {holders}"
    rows = timer_rows(demo, planted)
    assert Counter(r.attempts for r in rows.values() if r.status == "claimed") == {1: len(taken)}
