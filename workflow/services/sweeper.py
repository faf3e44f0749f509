"""The sweep: claim due timers, fire each once in its own transaction (reminder or breach), repeat.

Each timer is fired in a transaction that locks its appeal, marks the timer done only if this node
still holds the claim, and writes the consequences (escalation with its audit event, new timers,
notices). A node that dies mid-sweep leaves its claims to expire; another node takes them after the
lease. Timers due while every node was down fire once each, oldest first.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
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
            for timer in claimed:
                try:
                    self.fire(timer, report)
                except Exception as exc:  # one bad timer must not strand the rest of its batch
                    log.exception(
                        "timer %s of appeal %s failed to fire; retried after its lease", timer.id, timer.appeal_id
                    )
                    report.errors.append(f"timer {timer.id} (appeal {timer.appeal_id}): {type(exc).__name__}: {exc}")
        if report.claimed:
            log.info("sweep by %s: %s", self.node, report.as_dict())
        return report

    def claim(self) -> list[Any]:
        now = self.wf.clock.now()
        with UnitOfWork(self.wf.engine) as uow:
            rows = uow.repo.claim_timers(self.node, now, now + self.lease, self.batch)
            uow.commit()
        return rows

    def fire(self, timer: Any, report: SweepReport) -> None:
        ctx = self.wf.context
        with UnitOfWork(self.wf.engine) as uow:
            now = ctx.clock.now()
            # The appeal is locked before the timer row, as users' changes lock them.
            appeal, finished = uow.repo.lock_and_finish(timer.appeal_id, timer.id, self.node, now)
            if not finished or appeal is None:
                report.skipped += 1
                return
            if not appeal.is_open:
                uow.commit()
                report.skipped += 1
                return
            definition = ctx.registry.get(uow, appeal.definition_id).spec
            notifier = Notifier(uow, now)
            due = appeal.state_due_at if timer.clock == "state" else appeal.overall_due_at
            payload = {
                "appeal": snapshot(
                    definition,
                    appeal,
                    due_at=clocks_of(appeal).due_at,
                    enterprise_name=notifier.enterprise_name(appeal.enterprise_id),
                ),
                "clock": timer.clock,
                "threshold": timer.threshold,
                "limit_due_at": due.isoformat() if due else None,
            }
            if timer.threshold < BREACH:
                recipients = (
                    [appeal.assignee_id]
                    if appeal.assignee_id
                    else uow.repo.people_at(appeal.unit_id, ROLES_OF_LEVEL[Level(appeal.level)])
                )
                notifier.send(NoticeKind.REMINDER, appeal, recipients, f"timer{timer.id}", payload)
                uow.commit()
                report.reminders += 1
                return
            reason = f"time limit breached ({timer.clock} limit, due {shanghai_iso(due) if due else 'unknown'})"
            above = Level(appeal.level).above()
            if above is not None:
                move_level(
                    uow, ctx, appeal, above, actor_id=None, reason=reason, kind=EventKind.ESCALATED, breached=True
                )
                report.escalations += 1
            else:
                self._breach_at_top(uow, appeal, reason, now, payload)
                report.breaches_at_top += 1
            uow.commit()

    def _breach_at_top(self, uow: UnitOfWork, appeal: Any, reason: str, now: Any, payload: dict[str, Any]) -> None:
        """The district is the top: the breach is recorded and the district told, nothing climbs."""
        _write(
            uow,
            appeal,
            now,
            {**unchanged_columns(appeal), "breached_at": appeal.breached_at or now},
            {
                "kind": EventKind.BREACHED,
                "actor_id": None,
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
