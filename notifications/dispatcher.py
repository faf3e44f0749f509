"""Delivers the outbox: claim pending notices, render each in its reader's language, send, record.

A claimed batch goes out over one channel session (one SMTP connection) and its recipients are read
with the claim. A notice is marked sent only after the channel accepted it, in a transaction of its
own. A node that dies between the two leaves the claim to expire, and the notice is sent again with the
same Message-ID: at most a duplicate in that window, never a loss. Transient failures retry with
exponential backoff; after `max_attempts`, or on a permanent refusal, the notice is `failed` and shows
up in `appeals notices failed`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, Row

from notifications.channels import Channel, DeliveryError, Sender
from notifications.message import UnsendableAddress, compose
from notifications.outbox import DIGEST, OFF, Outbox
from notifications.rendering import Renderer, RenderError
from notifications.samples import render_extras
from workflow.clock import Clock
from workflow.errors import InvalidInput
from workflow.persistence.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
FAULT_VARIABLE = "APPEALS_FAULT"  # "after_send": exit between sending and marking sent (crash tests)
BASE_URL_VARIABLE = "APPEALS_BASE_URL"
SERVED_URL_VARIABLE = "APPEALS_SERVED_URL"  # set by `appeals serve` for its workers: the address it listens on
DEFAULT_BASE_URL = "http://localhost:8000"
MAX_ATTEMPTS_VARIABLE = "APPEALS_MAIL_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 5


def base_url_from_environment() -> str:
    """Prefix of links in emails: APPEALS_BASE_URL, else the address `appeals serve` listens on."""
    url = os.environ.get(BASE_URL_VARIABLE) or os.environ.get(SERVED_URL_VARIABLE) or DEFAULT_BASE_URL
    return url.rstrip("/")  # links append "/appeals/..."


def max_attempts_from_environment() -> int:
    """APPEALS_MAIL_MAX_ATTEMPTS, read in one place so that every way of dispatching gives up alike."""
    text = os.environ.get(MAX_ATTEMPTS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_ATTEMPTS
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"bad {MAX_ATTEMPTS_VARIABLE} {text!r}: give a whole number of tries, 1 or more")
    return int(text)


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "skipped": self.skipped,
            "retried": self.retried,
            "failed": self.failed,
            "errors": self.errors[:20],
        }


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        channel: Channel,
        *,
        node: str,
        sender: str,
        renderer: Renderer | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: timedelta = timedelta(seconds=30),
        lease: timedelta = timedelta(seconds=120),
        batch: int = 100,
        after_send: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.channel = channel
        self.node = node
        self.sender = sender
        self.renderer = renderer or Renderer()
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.lease = lease
        self.batch = batch
        self.after_send = after_send  # a test's hook at the crash point
        self.base_url = base_url_from_environment()

    def dispatch(self, max_batches: int | None = None) -> DispatchReport:
        report = DispatchReport()
        batches = 0
        while max_batches is None or batches < max_batches:
            claimed, people = self._claim()
            if not claimed:
                break
            batches += 1
            report.claimed += len(claimed)
            with self.channel.session() as session:
                for notice in claimed:
                    self.deliver(notice, people.get(notice.id), session, report)
        if report.claimed:
            log.info("dispatch by %s: %s", self.node, report.as_dict())
        return report

    def _claim(self) -> tuple[list[Row[Any]], dict[int, Any]]:
        """The next batch and its recipients in one transaction. Addresses and preferences are thus read
        once per batch rather than just before each send: a change made while a batch is out applies to
        the next one, as it would have if that batch had been sent a moment earlier."""
        now = self.clock.now()
        with UnitOfWork(self.engine) as uow:
            outbox = Outbox(uow.connection)
            claimed = outbox.claim(self.node, now, now + self.lease, self.batch)
            people = outbox.recipients([notice.id for notice in claimed])
            uow.commit()
        return claimed, people

    def deliver(self, notice: Any, person: Any, session: Sender, report: DispatchReport) -> None:
        if person is None or not person.active or not person.email or person.mode in (OFF, DIGEST):
            reason = "digest" if person is not None and person.mode == DIGEST else "no email wanted or possible"
            self._finish(notice.id, report, "skipped", status="skipped", last_error=reason)
            return
        try:
            extras = render_extras(
                notice.kind,
                notice_id=notice.id,
                created_at=notice.created_at,
                display_name=person.display_name,
                username=person.username,
                base_url=self.base_url,
            )
            rendered = self.renderer.render(notice.kind, person.locale, {**notice.payload, **extras})
            mail = compose(
                rendered, notice_id=notice.id, sender=self.sender, to_name=person.display_name, to_address=person.email
            )
            session.send(mail)
        except (RenderError, UnsendableAddress) as exc:  # no later attempt can do better
            self._finish(notice.id, report, "failed", status="failed", last_error=str(exc))
            return
        except DeliveryError as exc:
            self._failed_attempt(notice, report, exc)
            return
        if os.environ.get(FAULT_VARIABLE) == "after_send":
            os._exit(71)
        if self.after_send is not None:
            self.after_send(notice.id)
        self._finish(notice.id, report, "sent", status="sent", sent_at=self.clock.now(), last_error=None)

    def _failed_attempt(self, notice: Any, report: DispatchReport, exc: DeliveryError) -> None:
        report.errors.append(f"notice {notice.id}: {exc}")
        if exc.permanent or notice.attempts >= self.max_attempts:
            why = "refused permanently" if exc.permanent else f"gave up after {notice.attempts} attempts"
            log.warning("notice %s failed (%s): %s", notice.id, why, exc)
            self._finish(notice.id, report, "failed", status="failed", last_error=f"{why}: {exc}")
            return
        delay = self.backoff * (2 ** (notice.attempts - 1))
        self._finish(
            notice.id,
            report,
            "retried",
            status="pending",
            next_attempt_at=self.clock.now() + delay,
            last_error=str(exc),
            claimed_by=None,
            lease_until=None,
        )

    def _finish(self, notice_id: int, report: DispatchReport, outcome: str, **values: Any) -> None:
        with UnitOfWork(self.engine) as uow:
            recorded = Outbox(uow.connection).finish(notice_id, self.node, **values)
            uow.commit()
        if recorded:
            setattr(report, outcome, getattr(report, outcome) + 1)
        else:  # our lease ran out and another node took the notice: its outcome stands
            log.warning("notice %s: claim lost before recording %s", notice_id, outcome)
