"""The sweep: claim due timers, and for each appeal fire its due timers one by one, in due order.

A sweep reproduces what steady sweeping would have done, however long every node was down and however
many nodes catch up at once:
- an appeal's due timers fire in due order (ties by id), each in its own transaction that locks the
  appeal first; a node fires the appeal's earliest due timer only if no other node holds a live lease on
  it, so a later timer never fires while an earlier one of the same appeal is pending;
- each timer fires as of its due instant: a breach's escalation starts the new level's clock at the
  breach's due instant, so the new level's own reminders and breach, if already due, fire in the same
  catch-up, each audit event carrying its own instant (`at`) beside when it was written (`recorded_at`);
- the reminder rule: a reminder is always sent, once, to whoever held the appeal at its instant; when the
  level it was about had already changed by the time it is sent (a breach of the appeal below the district
  fell due between its instant and now), the notice is marked late (`late: true`) and counted in the
  sweep's `late_reminders`.
A node that dies mid-sweep leaves its claims to expire; another node takes them after the lease.
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workflow.domain.appeal import EventKind
from workflow.domain.notices import NoticeKind
from workflow.domain.org import LEAD_ROLE_OF_LEVEL, ROLES_OF_LEVEL, Level
from workflow.domain.sla import BREACH
from workflow.local_time import shanghai_iso
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.calendars import refresh_calendar
from workflow.services.clocks import clocks_of, unchanged_columns
from workflow.services.commands import _write, move_level
from workflow.services.notify import Notifier, snapshot
from workflow.services.workflow import Workflow

log = logging.getLogger(__name__)
FAULT_VARIABLE = "APPEALS_FAULT"  # "after_claim": exit right after claiming, to test lease expiry


@dataclass
class SweepReport:
    claimed: int = 0
    reminders: int = 0
    late_reminders: int = 0  # of `reminders`: sent after the level they were about had changed
    escalations: int = 0
    breaches_at_top: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def fired(self) -> int:
        return self.reminders + self.escalations + self.breaches_at_top

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "fired": self.fired,
            "reminders": self.reminders,
            "late_reminders": self.late_reminders,
            "escalations": self.escalations,
            "breaches_at_top": self.breaches_at_top,
            "skipped": self.skipped,
            "errors": self.errors,
        }


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Sweeper:
    def __init__(
        self, wf: Workflow, *, node: str | None = None, lease: timedelta = timedelta(seconds=60), batch: int = 200
    ) -> None:
        self.wf = wf
        self.node = node or node_name()
        self.lease = lease
        self.batch = batch
        self._calendar_stamp: tuple[int, str] | None = None

    def sweep(self, max_batches: int | None = None) -> SweepReport:
        """Fire everything due now; returns what happened."""
        report = SweepReport()
        self._calendar_stamp = refresh_calendar(self.wf, self._calendar_stamp)
        batches = 0
        while max_batches is None or batches < max_batches:
            claimed = self.claim()
            if not claimed:
                break
            batches += 1
            report.claimed += len(claimed)
            if os.environ.get(FAULT_VARIABLE) == "after_claim":
                log.error("fault injected: exiting after claiming %d timers", len(claimed))
                os._exit(70)
            self.catch_up(claimed, report)
        if report.claimed:
            log.info("sweep by %s: %s", self.node, report.as_dict())
        return report

    def claim(self) -> list[Any]:
        now = self.wf.clock.now()
        with UnitOfWork(self.wf.engine) as uow:
            rows = uow.repo.claim_timers(self.node, now, now + self.lease, self.batch)
            uow.commit()
        return rows

    def catch_up(self, claimed: list[Any], report: SweepReport) -> None:
        """Fire the claimed appeals' due timers until none is due, always the earliest of them next (so one
        node fires a batch in due order), each appeal's next timer only after its previous one."""
        waiting = [(t.due_at, t.id, t) for t in {t.appeal_id: t for t in reversed(claimed)}.values()]
        heapq.heapify(waiting)
        while waiting:
            _, _, timer = heapq.heappop(waiting)
            try:
                following = self.fire(timer, report)
            except Exception as exc:  # the appeal waits for its lease; the other appeals still fire
                log.exception(
                    "timer %s of appeal %s failed to fire; retried after its lease", timer.id, timer.appeal_id
                )
                report.errors.append(f"timer {timer.id} (appeal {timer.appeal_id}): {type(exc).__name__}: {exc}")
                continue
            if following is not None:
                heapq.heappush(waiting, (following.due_at, following.id, following))

    def fire(self, timer: Any, report: SweepReport) -> Any | None:
        """Fire the earliest due timer of `timer`'s appeal (normally `timer` itself) as of its due instant, in
        one transaction; returns the appeal's next due timer, or None when there is nothing more to fire."""
        ctx = self.wf.context
        with UnitOfWork(self.wf.engine) as uow:
            now = ctx.clock.now()
            # The appeal is locked before any timer row, as users' changes lock them.
            appeal = uow.repo.appeal_by_id(timer.appeal_id, lock=True)
            due = uow.repo.next_due_timer(timer.appeal_id, now) if appeal is not None else None
            if appeal is None or due is None or self._held_elsewhere(due, now):
                report.skipped += 1  # fired by another node, cancelled, or another node's to fire
                return None
            if due.status != "claimed" or due.claimed_by != self.node:
                report.claimed += 1  # due since the claim (added by an escalation), or left by a dead node
            uow.repo.take_timer(due.id, self.node, now)
            if not appeal.is_open:
                report.skipped += 1
            elif due.threshold < BREACH:
                self._remind(uow, appeal, due, now, report)
            else:
                self._breach(uow, appeal, due, now, report)
            report.claimed += uow.repo.lease_due_timers(appeal.id, self.node, now, now + self.lease)
            following = uow.repo.next_due_timer(appeal.id, now)
            uow.commit()
        return following

    def _held_elsewhere(self, timer: Any, now: datetime) -> bool:
        return bool(
            timer.status == "claimed"
            and timer.claimed_by != self.node
            and timer.lease_until is not None
            and timer.lease_until >= now
        )

    def _payload(self, uow: UnitOfWork, appeal: Any, timer: Any, notifier: Notifier) -> dict[str, Any]:
        definition = self.wf.context.registry.get(uow, appeal.definition_id).spec
        due = appeal.state_due_at if timer.clock == "state" else appeal.overall_due_at
        return {
            "appeal": snapshot(
                definition,
                appeal,
                due_at=clocks_of(appeal).due_at,
                enterprise_name=notifier.enterprise_name(appeal.enterprise_id),
            ),
            "clock": timer.clock,
            "threshold": timer.threshold,
            "limit_due_at": due.isoformat() if due else None,
            "at": timer.due_at.isoformat(),  # the instant the notice is about, whenever the sweep ran
        }

    def _remind(self, uow: UnitOfWork, appeal: Any, timer: Any, now: datetime, report: SweepReport) -> None:
        notifier = Notifier(uow, now)
        payload = self._payload(uow, appeal, timer, notifier)
        if Level(appeal.level).above() is not None and uow.repo.breach_due_between(appeal.id, timer.due_at, now):
            payload["late"] = True  # the level it is about had changed before it could be sent
            report.late_reminders += 1
        recipients = (
            [appeal.assignee_id]
            if appeal.assignee_id
            else uow.repo.people_at(appeal.unit_id, ROLES_OF_LEVEL[Level(appeal.level)])
        )
        notifier.send(NoticeKind.REMINDER, appeal, recipients, f"timer{timer.id}", payload)
        report.reminders += 1

    def _breach(self, uow: UnitOfWork, appeal: Any, timer: Any, now: datetime, report: SweepReport) -> None:
        """The limit ran out at the timer's instant: recorded against the level that held the appeal then,
        and the appeal climbs one level as of that instant (or, at the district, the district is told)."""
        at = timer.due_at
        uow.repo.add_breach(
            {
                "appeal_id": appeal.id,
                "level": appeal.level,
                "unit_id": appeal.unit_id,
                "clock": timer.clock,
                "due_at": at,
                "detected_at": now,
                "late_s": max(int((now - at).total_seconds()), 0),
            }
        )
        payload = self._payload(uow, appeal, timer, Notifier(uow, now))
        reason = f"time limit breached ({timer.clock} limit, due {shanghai_iso(at)})"
        above = Level(appeal.level).above()
        if above is not None:
            move_level(
                uow,
                self.wf.context,
                appeal,
                above,
                actor_id=None,
                reason=reason,
                kind=EventKind.ESCALATED,
                breached=True,
                at=at,
            )
            report.escalations += 1
        else:
            self._breach_at_top(uow, appeal, reason, now, at, payload)
            report.breaches_at_top += 1

    def _breach_at_top(
        self, uow: UnitOfWork, appeal: Any, reason: str, now: datetime, at: datetime, payload: dict[str, Any]
    ) -> None:
        """The district is the top: the breach is recorded and the district told, nothing climbs."""
        _write(
            uow,
            appeal,
            now,
            {**unchanged_columns(appeal), "breached_at": appeal.breached_at or at},
            {
                "kind": EventKind.BREACHED,
                "actor_id": None,
                "at": at,
                "trigger": "breach",
                "from_state": appeal.state,
                "to_state": appeal.state,
                "comment": reason,
                "payload": {"clock": payload["clock"]},
            },
        )
        people = set(uow.repo.people_at(appeal.unit_id, ROLES_OF_LEVEL[Level.DISTRICT]))
        if appeal.assignee_id:
            people.add(appeal.assignee_id)
        lead = LEAD_ROLE_OF_LEVEL[Level.DISTRICT]
        log.warning("appeal %s breached at the district level; %s told", appeal.number, lead)
        Notifier(uow, now).send(
            NoticeKind.BREACHED, appeal, people, f"v{appeal.version + 1}", {**payload, "reason": reason}
        )
