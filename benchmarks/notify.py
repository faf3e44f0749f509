"""Notice throughput: render plus deliver to a local aiosmtpd from one dispatcher, and rendering alone.

Seeds N pending notices into a fresh database (payloads taken from real outdoor-event walks, so every
kind of that path is in the mix), starts aiosmtpd on a loopback port, and times Dispatcher.dispatch()
end to end: claim with the batch's recipients, render, build the message as bytes, send it on the batch's
SMTP connection, mark sent. Then the parts of one delivery are timed alone, each beside the way it was
done before (EmailMessage, a connection per message), so a missed target says where the time goes.
Targets: >= 200 notices/s delivered, >= 5,000 renders/s.

    python benchmarks/notify.py                                # SQLite (WAL), 2,000 notices
    python benchmarks/notify.py --backend both --notices 5000  # and PostgreSQL
    python benchmarks/notify.py --server thread                # aiosmtpd in a thread of this process

Delivery is timed over `--rounds` dispatches of all the notices and rendering over 5 rounds; the median of
each is held against its target, and the best is shown beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from bench_databases import EVENT, drop_database, fresh_database
from sqlalchemy import Engine, func, select, update

from notifications.channels import SmtpChannel
from notifications.dispatcher import Dispatcher
from notifications.message import Email, compose
from notifications.outbox import notices, users
from notifications.rendering import RenderedNotice, Renderer
from notifications.samples import render_extras
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.demo_data import load_demo

SENDER = "芙蓉区楼宇企业服务 <appeals@demo.appeals.local>"
DELIVER_TARGET, RENDER_TARGET = 200.0, 5000.0
# (trigger, role, data); building B01's people, enterprises 1-30.
PATH: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("start_pre_check", "staff-b01", {}, None),
    ("request_materials", "staff-b01", {}, "请补充场地方同意书和安全保障方案"),
    ("provide_materials", "contact", {}, None),
    ("pass_pre_check", "staff-b01", {}, None),
    ("file_application", "specialist-b01", {"materials_complete": True}, None),
    ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}, None),
    ("approve", "bureau-approval-01", {"inspection_findings": "场地安全，消防通道畅通"}, None),
    ("close", "specialist-b01", {}, None),
]


class Counting:
    """The cheapest honest SMTP server handler: accept, count, keep nothing."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted += 1
        return "250 OK"


@contextmanager
def smtp_server(mode: str) -> Iterator[tuple[int, Counting | None]]:
    """aiosmtpd on loopback: in its own process (as a real mail server would be), or in a thread of this one,
    where its protocol work competes with the dispatcher for the GIL."""
    port = free_port()
    if mode == "thread":
        handler = Counting()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            yield port, handler
        finally:
            controller.stop()
        return
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:  # a benchmark may poll; the tests never do
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    why = server.stderr.read() if server.stderr else b""
                    raise RuntimeError(f"aiosmtpd did not start: {why!r}") from None
                time.sleep(0.05)
        yield port, None
    finally:
        server.terminate()
        server.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def seed(url: str, count: int, clock: FrozenClock) -> Engine:
    """Walk appeals until the outbox holds real payloads of every kind, then copy them up to `count` rows."""
    wf = connect(url, clock=clock, upgrade=True)
    with UnitOfWork(wf.engine) as uow:
        load_demo(uow, clock)
        uow.commit()
    for enterprise in range(1, 11):
        contact = f"contact-{enterprise:04d}"
        number = wf.submit("outdoor_event_permit", enterprise_id=enterprise, as_user=contact, data=EVENT)["number"]
        for trigger, user, data, comment in PATH:
            wf.fire(number, trigger, as_user=contact if user == "contact" else user, data=data, comment=comment)
    with wf.engine.connect() as conn:
        walked = conn.execute(
            select(notices.c.appeal_id, notices.c.kind, notices.c.recipient_id, notices.c.payload).order_by(
                notices.c.id
            )
        ).all()
    copies = 0
    with UnitOfWork(wf.engine) as uow:
        while len(walked) + copies < count:
            for row in walked[: count - len(walked) - copies]:
                copies += 1
                uow.repo.add_notices(
                    row.appeal_id, row.kind, [row.recipient_id], f"bench:{copies}", row.payload, clock.now()
                )
        uow.commit()
    with wf.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(notices)).scalar_one()
    assert total == max(count, len(walked)), (total, count)
    return wf.engine


def deliver(engine: Engine, clock: FrozenClock, port: int, handler: Counting | None, rounds: int) -> dict[str, Any]:
    """Dispatcher.dispatch() over every seeded notice, `rounds` times (the rows made pending again in between,
    a new dispatcher each time): the median and the best, since one run on a shared machine can fall into
    someone else's burst."""
    channel = SmtpChannel.from_url(f"smtp://127.0.0.1:{port}?timeout=10")
    rates: list[float] = []
    sent = 0
    for round_ in range(rounds):
        if round_:
            with engine.begin() as conn:
                conn.execute(
                    update(notices).values(
                        status="pending", attempts=0, next_attempt_at=clock.now(), claimed_by=None, lease_until=None
                    )
                )
        dispatcher = Dispatcher(engine, clock, channel, node=f"bench-{round_}", sender=SENDER)
        started = time.perf_counter()
        report = dispatcher.dispatch()
        seconds = time.perf_counter() - started
        assert report.failed == report.retried == report.skipped == 0, report.as_dict()
        sent += report.sent
        rates.append(report.sent / seconds)
    assert handler is None or handler.accepted == sent, (handler and handler.accepted, sent)
    return {"sent": report.sent, "rounds_per_s": rates, "per_s": statistics.median(rates), "best_per_s": max(rates)}


def samples(engine: Engine) -> list[tuple[str, str, dict[str, Any], str, str]]:
    """(kind, locale, context, display name, address) for each distinct walked notice, as the dispatcher builds them."""
    query = (
        select(notices.c.id, notices.c.kind, notices.c.payload, notices.c.created_at, users)
        .join(users, users.c.id == notices.c.recipient_id)
        .where(~notices.c.dedupe_key.like("bench:%"))
        .order_by(notices.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for r in rows:
        extras = render_extras(
            r.kind, notice_id=r.id, created_at=r.created_at, display_name=r.display_name, username=r.username
        )
        out.append((r.kind, r.locale, {**r.payload, **extras}, r.display_name, r.email))
    return out


def per_second(action: Any, items: list[Any], repeat: int) -> float:
    started = time.perf_counter()
    for i in range(repeat):
        action(items[i % len(items)])
    return repeat / (time.perf_counter() - started)


def rounds_per_second(action: Any, items: list[Any], repeat: int, rounds: int = 5) -> tuple[float, float]:
    """(median, best) of `rounds` timings of repeat/rounds actions each."""
    rates = [per_second(action, items, max(1, repeat // rounds)) for _ in range(rounds)]
    return statistics.median(rates), max(rates)


def email_message(notice: RenderedNotice, *, notice_id: int, to_name: str, to_address: str) -> EmailMessage:
    """How build_message made a notice before 2026-11-26 (EmailMessage, policy.default), for the ratios."""
    message = EmailMessage()
    message["Subject"] = notice.subject
    message["From"] = SENDER
    message["To"] = formataddr((to_name, to_address))
    message["Message-ID"] = f"<appeal-notice-{notice_id}@demo.appeals.local>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(notice.text)
    message.add_alternative(notice.html, subtype="html")
    message["Content-Language"] = notice.locale
    return message


def parts(engine: Engine, port: int, repeat: int) -> dict[str, float]:
    """One delivery's steps alone, each per second, on warm caches, each beside the way it was done before;
    then the steps without the database, before and now, back to back so that the ratio survives a busy machine."""
    contexts = samples(engine)
    renderer = Renderer()
    for kind, locale, context, _, _ in contexts:  # compile every template once
        renderer.render(kind, locale, context)
    rendered = [(renderer.render(k, loc, c), name, address) for k, loc, c, name, address in contexts]
    smtp_repeat = min(repeat, 1000)

    def before(item: Any) -> EmailMessage:
        notice, name, address = item
        return email_message(notice, notice_id=1, to_name=name, to_address=address)

    def now(item: Any) -> Email:
        notice, name, address = item
        return compose(notice, notice_id=1, sender=SENDER, to_name=name, to_address=address)

    mails = [now(item) for item in rendered]
    channel = SmtpChannel("127.0.0.1", port)
    render_median, render_best = rounds_per_second(lambda c: renderer.render(c[0], c[1], c[2]), contexts, repeat)
    figures = {
        "render_per_s": render_median,
        "render_best_per_s": render_best,
        "email_message_build_and_serialise_per_s": per_second(lambda i: before(i).as_bytes(), rendered, repeat),
        "compose_per_s": per_second(now, rendered, repeat),
        "smtp_new_connection_per_s": per_second(channel.send, mails, smtp_repeat),
    }
    with channel.session() as session:
        figures["smtp_one_connection_per_s"] = per_second(session.send, mails, smtp_repeat)

    def pipeline_before(c: Any) -> None:
        notice = renderer.render(c[0], c[1], c[2])
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(email_message(notice, notice_id=1, to_name=c[3], to_address=c[4]))

    figures["pipeline_before_per_s"] = per_second(pipeline_before, contexts, smtp_repeat)
    with channel.session() as session:

        def pipeline_now(c: Any) -> None:
            notice = renderer.render(c[0], c[1], c[2])
            session.send(compose(notice, notice_id=1, sender=SENDER, to_name=c[3], to_address=c[4]))

        figures["pipeline_now_per_s"] = per_second(pipeline_now, contexts, smtp_repeat)
    return figures


def measure(backend: str, count: int, renders: int, server: str, rounds: int) -> dict[str, Any]:
    clock = FrozenClock(datetime(2026, 11, 26, 2, tzinfo=UTC))
    with smtp_server(server) as (port, handler), tempfile.TemporaryDirectory() as tmp:
        url = fresh_database(backend, Path(tmp), "bench_notify")
        try:
            engine = seed(url, count, clock)
            clock.advance(timedelta(seconds=1))
            delivered = deliver(engine, clock, port, handler, rounds)
            figures = parts(engine, port, renders)
            engine.dispose()
        finally:
            drop_database(url)
    return {"backend": backend, "server": server, "notices": count, **delivered, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notices", type=int, default=2000)
    parser.add_argument("--renders", type=int, default=20000, help="renderings timed alone (default 20,000)")
    parser.add_argument("--rounds", type=int, default=3, help="dispatches of all the notices timed (default 3)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument(
        "--server",
        choices=["process", "thread"],
        default="process",
        help="aiosmtpd in its own process (default) or in a thread of the benchmark",
    )
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"$ python {' '.join(sys.argv)}")
    print(f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        r = measure(backend, args.notices, args.renders, args.server, args.rounds)
        results.append(r)
        delivered_ok = "meets" if r["per_s"] >= DELIVER_TARGET else "MISSES"
        render_ok = "meets" if r["render_per_s"] >= RENDER_TARGET else "MISSES"
        print(
            f"{backend:<10} delivered {r['sent']:,} (aiosmtpd in a {args.server}), median of {args.rounds} rounds "
            f"{r['per_s']:,.0f} notices/s ({delivered_ok} the {DELIVER_TARGET:,.0f}/s target), "
            f"best {r['best_per_s']:,.0f}/s\n"
            f"{'':<10} render alone, median of 5 rounds {r['render_per_s']:,.0f}/s ({render_ok} the "
            f"{RENDER_TARGET:,.0f}/s target), best {r['render_best_per_s']:,.0f}/s; "
            f"message as bytes {r['compose_per_s']:,.0f}/s (EmailMessage: "
            f"{r['email_message_build_and_serialise_per_s']:,.0f}/s); "
            f"SMTP send {r['smtp_one_connection_per_s']:,.0f}/s on the batch's connection "
            f"({r['smtp_new_connection_per_s']:,.0f}/s with a connection per message)\n"
            f"{'':<10} without the database: render+build+send {r['pipeline_now_per_s']:,.0f}/s now, "
            f"{r['pipeline_before_per_s']:,.0f}/s as before "
            f"(x{r['pipeline_now_per_s'] / r['pipeline_before_per_s']:.1f})"
        )
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
