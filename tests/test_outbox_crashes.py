"""The outbox under crashes, on SQLite and PostgreSQL: over 1,000 transitions with crashes injected at three
points lose no notice, send none for a rolled-back transition, and send twice only what was inside a crash window.

The three points:
1. inside the transaction, after the notices were inserted and before the commit (the change rolls back);
2. after the commit, before this process dispatched anything (it dies; another dispatcher must deliver);
3. between the SMTP server's 250 and marking the notice sent (the lease runs out; it is sent once more).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select

from notifications.dispatcher import Dispatcher
from notifications.rendering import Renderer
from tests.conftest import OUTDOOR_EVENT
from tests.test_delivery import SENDER, Mailbox, SmtpServer, free_port, message_id_of
from workflow.clock import FrozenClock
from workflow.persistence.repository import Repository, appeals, events, notices
from workflow.services.workflow import Workflow

pytestmark = pytest.mark.slow

SEED = 20261126
TRANSITIONS = 1050  # committed ones; crashed attempts come on top
CRASH_RATE = 0.10  # per point: about a tenth of the transitions die at each of the three points
LEASE = timedelta(seconds=120)
TICK = timedelta(seconds=10)  # between two transitions, so leases run out while traffic goes on
# After submission, the article's path; (trigger, who acts, data).
PATH: list[tuple[str, str, dict[str, Any]]] = [
    ("start_pre_check", "staff", {}),
    ("pass_pre_check", "staff", {}),
    ("file_application", "specialist", {"materials_complete": True}),
    ("schedule_inspection", "bureau", {"inspection_time": "2026-11-27T10:00+08:00"}),
    ("approve", "bureau", {"inspection_findings": "场地安全"}),
    ("close", "specialist", {}),
]


class TransactionCrash(Exception):
    """Point 1: the process dies inside the transaction, after the notices were inserted."""

    def __init__(self, keys: list[str], inserted: int) -> None:
        super().__init__(f"crashed after inserting {inserted} notice(s): {keys}")
        self.keys, self.inserted = keys, inserted


class SendCrash(Exception):
    """Point 3: the process dies after the SMTP server accepted a notice, before the outbox says so."""


@dataclass
class Tally:
    committed: int = 0
    crashed: Counter[int] = field(default_factory=Counter)  # point -> transitions crashed there
    inserted_then_rolled_back: int = 0
    left_after_rollback: int = 0  # notice rows of a rolled-back transition still there: must stay 0
    sends_crashed: set[int] = field(default_factory=set)  # notice ids whose send was cut at point 3
    after_commit_unsent: set[int] = field(default_factory=set)  # notice ids orphaned at point 2


class Crashes:
    """Arms point 1 (a wrapped Repository.add_notices) and point 3 (the dispatcher's after_send hook)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tally: Tally) -> None:
        self.tally = tally
        self.in_transaction = False
        self.on_send: set[int] = set()
        original = Repository.add_notices

        def add_notices(
            repo: Repository, appeal_id: int | None, kind: str, recipients: Any, dedupe: str, payload: Any, now: Any
        ) -> None:
            original(repo, appeal_id, kind, recipients, dedupe, payload, now)
            if self.in_transaction and recipients:
                self.in_transaction = False
                keys = [f"{dedupe}:{person}" for person in recipients]
                inserted = repo.connection.execute(
                    select(func.count()).select_from(notices).where(notices.c.dedupe_key.in_(keys))
                ).scalar_one()
                raise TransactionCrash(keys, inserted)

        monkeypatch.setattr(Repository, "add_notices", add_notices)

    def after_send(self, notice_id: int) -> None:
        if notice_id in self.on_send:
            self.on_send.discard(notice_id)
            self.tally.sends_crashed.add(notice_id)
            raise SendCrash(f"killed after the server accepted notice {notice_id}")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer(mailbox, controller.port)
    finally:
        controller.stop()


def last_notice_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(notices.c.id), 0))).scalar_one())


def notice_ids_after(engine: Engine, after: int) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(notices.c.id).where(notices.c.id > after)).scalars())


def rows_with_keys(engine: Engine, keys: list[str]) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(notices).where(notices.c.dedupe_key.in_(keys))
        return int(conn.execute(query).scalar_one())


def unfinished(engine: Engine) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(notices).where(notices.c.status.in_(["pending", "sending"]))
        return int(conn.execute(query).scalar_one())


def rows_without_a_committed_transition(engine: Engine) -> list[str]:
    """Notice keys (kind:appeal:vN:person) whose appeal has no audit event of version N."""
    with engine.connect() as conn:
        written = {(a, v) for a, v in conn.execute(select(events.c.appeal_id, events.c.version))}
        keys = conn.execute(select(notices.c.dedupe_key)).scalars().all()
    orphans = []
    for key in keys:
        _, appeal_id, version, _ = key.split(":")
        if (int(appeal_id), int(version.removeprefix("v"))) not in written:
            orphans.append(key)
    return orphans


class Run:
    """Interleaved walks of many appeals, each transition followed by this process's own dispatch."""

    def __init__(self, wf: Workflow, clock: FrozenClock, smtp: SmtpServer, crashes: Crashes, tally: Tally) -> None:
        self.wf, self.clock, self.smtp, self.crashes, self.tally = wf, clock, smtp, crashes, tally
        self.restarts = 0
        self.renderer = Renderer()  # shared only to spare the test recompiling templates at every restart
        self.dispatcher = self._new_dispatcher()

    def _new_dispatcher(self) -> Dispatcher:
        """A fresh process after each crash: a new node name, nothing remembered."""
        self.restarts += 1
        return Dispatcher(
            self.wf.engine,
            self.clock,
            self.smtp.channel(),
            node=f"node-{self.restarts}",
            sender=SENDER,
            renderer=self.renderer,
            lease=LEASE,
            after_send=self.crashes.after_send,
        )

    def dispatch(self) -> None:
        try:
            self.dispatcher.dispatch()
        except SendCrash:
            self.dispatcher = self._new_dispatcher()

    def transition(self, act: Any, point: int) -> None:
        before = last_notice_id(self.wf.engine)
        if point == 1:
            self.crashes.in_transaction = True
            try:
                act()  # a transition that writes no notice has nothing to crash after: it commits
            except TransactionCrash as crash:
                self.tally.crashed[1] += 1
                self.tally.inserted_then_rolled_back += crash.inserted
                self.tally.left_after_rollback += rows_with_keys(self.wf.engine, crash.keys)
                before = last_notice_id(self.wf.engine)
                act()  # the user tries again, and this time it goes through
            finally:
                self.crashes.in_transaction = False
            point = 0
        else:
            act()
        self.tally.committed += 1
        written = notice_ids_after(self.wf.engine, before)
        if point == 2 and written:
            self.tally.crashed[2] += 1
            self.tally.after_commit_unsent |= written
            self.dispatcher = self._new_dispatcher()  # died before dispatching: no dispatch from it
        else:
            if point == 3 and written:
                self.tally.crashed[3] += 1
                self.crashes.on_send |= written
            self.dispatch()
        self.clock.advance(TICK)


def actor(role: str, enterprise: int) -> str:
    building = f"b{(enterprise - 1) // 30 + 1:02d}"
    return {"staff": f"staff-{building}", "specialist": f"specialist-{building}", "bureau": "bureau-approval-01"}[role]


def test_over_1000_transitions_with_crashes_at_three_points_lose_nothing_and_duplicate_only_in_the_window(
    demo: Workflow,
    clock: FrozenClock,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(SEED)
    tally = Tally()
    run = Run(demo, clock, smtp, Crashes(monkeypatch, tally), tally)
    walks: list[tuple[str, int, int]] = []  # (appeal number, enterprise, next step)
    appeals_started = 0

    while tally.committed < TRANSITIONS:
        roll = rng.random()
        point = 1 if roll < CRASH_RATE else 2 if roll < 2 * CRASH_RATE else 3 if roll < 3 * CRASH_RATE else 0
        if not walks or (len(walks) < 40 and rng.random() < 0.2):
            enterprise = appeals_started % 300 + 1
            appeals_started += 1
            submitted: list[str] = []

            def submit(enterprise: int = enterprise, out: list[str] = submitted) -> None:
                appeal = demo.submit(
                    "outdoor_event_permit",
                    enterprise_id=enterprise,
                    as_user=f"contact-{enterprise:04d}",
                    data=OUTDOOR_EVENT,
                )
                out.append(str(appeal["number"]))

            run.transition(submit, point)
            walks.append((submitted[-1], enterprise, 0))
            continue
        index = rng.randrange(len(walks))
        number, enterprise, step = walks[index]
        trigger, role, data = PATH[step]

        def fire(
            number: str = number,
            trigger: str = trigger,
            user: str = actor(role, enterprise),
            data: dict[str, Any] = data,
        ) -> None:
            demo.fire(number, trigger, as_user=user, data=data)

        run.transition(fire, point)
        if step + 1 == len(PATH):
            walks.pop(index)
        else:
            walks[index] = (number, enterprise, step + 1)

    for _ in range(200):  # drain: later dispatches, each after the leases of the dead ones ran out
        if not unfinished(demo.engine):
            break
        clock.advance(LEASE + timedelta(seconds=1))
        run.dispatch()
    assert unfinished(demo.engine) == 0, "the outbox never drained"

    with demo.engine.connect() as conn:
        rows = conn.execute(select(notices.c.id, notices.c.status, notices.c.dedupe_key)).all()
        appeal_count = conn.execute(select(func.count()).select_from(appeals)).scalar_one()
    received = smtp.mailbox.message_ids()
    expected = {message_id_of(r.id): r for r in rows}
    lost = sorted(r.id for r in rows if r.status != "sent" or received[message_id_of(r.id)] == 0)
    strangers = sorted(mid for mid in received if mid not in expected)
    orphans = rows_without_a_committed_transition(demo.engine)
    for_rolled_back = tally.left_after_rollback + len(strangers) + len(orphans)
    inside_window = {message_id_of(i) for i in tally.sends_crashed}
    beyond = sum(n - 1 for mid, n in received.items() if mid not in inside_window) + sum(
        max(0, received[mid] - 2) for mid in inside_window
    )
    resent_in_window = sum(received[mid] - 1 for mid in inside_window)

    summary = (
        f"\n[{demo.engine.dialect.name}] {tally.committed:,} transitions committed over {appeal_count} appeals, "
        f"{len(rows):,} notices, {sum(received.values()):,} emails received; crashes injected: "
        f"point 1 (before commit) {tally.crashed[1]}, point 2 (after commit, before dispatch) {tally.crashed[2]}, "
        f"point 3 (after send, before mark-sent) {tally.crashed[3]} transitions = {len(tally.sends_crashed)} sends; "
        f"{tally.inserted_then_rolled_back} notices inserted then rolled back\n"
        f"notices lost = {len(lost)}, notices for rolled-back transitions = {for_rolled_back}, "
        f"duplicates beyond the crash window = {beyond} (duplicates inside it: {resent_in_window} "
        f"of {len(tally.sends_crashed)} crashed sends)"
    )
    with capsys.disabled():
        print(summary)

    assert tally.committed >= 1000
    assert min(tally.crashed[p] for p in (1, 2, 3)) >= 50, f"too few crashes at some point: {tally.crashed}"
    assert tally.inserted_then_rolled_back >= tally.crashed[1], "point 1 crashed after the notices were inserted"
    assert tally.after_commit_unsent and tally.sends_crashed
    assert lost == [], f"notices lost: {lost[:20]}"
    assert (tally.left_after_rollback, strangers, orphans) == (0, [], []), "notices of rolled-back transitions"
    assert beyond == 0, f"duplicates beyond the crash window: {[m for m, n in received.items() if n > 1][:20]}"
    assert resent_in_window == len(tally.sends_crashed), "each send cut at point 3 is repeated exactly once"
    assert all(received[message_id_of(i)] == 1 for i in tally.after_commit_unsent - tally.sends_crashed), (
        "what a dead process left undispatched is delivered once by another"
    )
