"""Email delivery through a real SMTP server (aiosmtpd on loopback), on SQLite and PostgreSQL: what the
outdoor-event walk sends, how refusals, outages and crashes are retried, preferences, hostile text,
and the daily digest written once a day however many nodes run."""

from __future__ import annotations

import asyncio
import itertools
import json
import mailbox
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import parseaddr
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, event, select, update

from notifications.channels import MaildirChannel, SmtpChannel
from notifications.digest import digest_due, digest_runs, write_daily_digests
from notifications.dispatcher import Dispatcher, DispatchReport
from notifications.inbox import inbox_view
from notifications.outbox import Outbox
from notifications.outbox import notices as notices_table
from notifications.outbox import users as users_table
from notifications.rendering import RenderedNotice, Renderer
from notifications.samples import render_extras
from tests.cli_support import CliRun, cli_runner
from tests.conftest import OUTDOOR_EVENT
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.domain.org import SUPERVISOR_ROLES
from workflow.persistence.database import create_database_engine
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.workflow import Workflow

SENDER = "芙蓉区楼宇企业服务 <appeals@demo.appeals.local>"
DOMAIN = "demo.appeals.local"
LEASE = timedelta(seconds=120)
BACKOFF = timedelta(seconds=30)
BARRIER_TIMEOUT = 60  # a broken race fails instead of hanging; nothing here waits for time to pass
CONTACT = "contact-0001@demo.appeals.local"
HOSTILE_COMMENT = "请补充场地方同意书\r\nBcc: victim@example.com\r\n<script>alert(1)</script>"
# The article's path, with one return for materials, so that every kind of the outdoor walk is written.
WALK: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("start_pre_check", "staff-b01", {}, None),
    ("request_materials", "staff-b01", {}, "请补充场地方同意书"),
    ("provide_materials", "contact-0001", {}, None),
    ("pass_pre_check", "staff-b01", {}, None),
    ("file_application", "specialist-b01", {"materials_complete": True}, None),
    ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}, None),
    ("approve", "bureau-approval-01", {"inspection_findings": "场地安全"}, None),
    ("close", "specialist-b01", {}, None),
]
SHANGHAI_0830_FRIDAY = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)
PG_DIGEST_BUG = (
    "BUG: on PostgreSQL write_daily_digests never writes: it reads CursorResult.rowcount of an INSERT ... ON "
    "CONFLICT DO NOTHING, which SQLAlchemy 2 does not keep for INSERTs (-1), so it rolls its claim back and returns 0"
)


# --- a real SMTP server -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    connection: int = 0  # numbered per SMTP connection, in the order they were opened

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, message_from_bytes(self.raw, policy=default_policy))

    @property
    def message_id(self) -> str:
        """Read from the headers alone: cheap enough to count thousands of messages."""
        return str(BytesHeaderParser(policy=compat32).parsebytes(self.raw)["Message-ID"])

    @property
    def raw_headers(self) -> str:
        return self.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, answers scripted refusals to chosen recipients and
    hangs up after chosen ones."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused: list[tuple[list[str], str]] = []
        self._answers: dict[str, list[str]] = {}
        self._hang_ups: set[str] = set()
        self._connections = itertools.count(1)
        self._lock = threading.Lock()

    def refuse(self, address: str, *answers: str) -> None:
        """The next messages to `address` get these answers, one each, instead of 250."""
        with self._lock:
            self._answers.setdefault(address, []).extend(answers)

    def hang_up_after(self, address: str) -> None:
        """Close the connection once the next message to `address` is accepted, as a server does at a limit."""
        with self._lock:
            self._hang_ups.add(address)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                queued = self._answers.get(rcpt)
                if queued:
                    answer = queued.pop(0)
                    self.refused.append((list(envelope.rcpt_tos), answer))
                    return answer
            if not hasattr(session, "number"):  # aiosmtpd makes a session per connection
                session.number = next(self._connections)
            content = bytes(envelope.content)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), content, session.number))
            if self._hang_ups & set(envelope.rcpt_tos):
                self._hang_ups -= set(envelope.rcpt_tos)
                asyncio.get_running_loop().call_soon(server.transport.close)  # after the 250 has gone out
        return "250 OK"

    def connections(self) -> int:
        return len({r.connection for r in self.received})

    def message_ids(self) -> Counter[str]:
        return Counter(r.message_id for r in self.received)


@dataclass
class SmtpServer:
    mailbox: Mailbox
    port: int

    def channel(self) -> SmtpChannel:
        return SmtpChannel.from_url(f"smtp://127.0.0.1:{self.port}?timeout=5")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer(mailbox, controller.port)
    finally:
        controller.stop()


@pytest.fixture
def dispatcher(demo: Workflow, smtp: SmtpServer) -> Callable[..., Dispatcher]:
    """Dispatchers on the demo database that deliver to the loopback server; node and options per call."""

    def make(node: str = "node-a", **options: Any) -> Dispatcher:
        options.setdefault("channel", smtp.channel())
        options.setdefault("lease", LEASE)
        options.setdefault("backoff", BACKOFF)
        channel = options.pop("channel")
        return Dispatcher(demo.engine, demo.clock, channel, node=node, sender=SENDER, **options)

    return make


# --- helpers ------------------------------------------------------------------------------------------------------


def submit_event(wf: Workflow, enterprise: int = 1) -> str:
    appeal = wf.submit(
        "outdoor_event_permit", enterprise_id=enterprise, as_user=f"contact-{enterprise:04d}", data=OUTDOOR_EVENT
    )
    return str(appeal["number"])


def walk(wf: Workflow, *, enterprise: int = 1) -> str:
    number = submit_event(wf, enterprise)
    for trigger, user, data, comment in WALK:
        as_user = f"contact-{enterprise:04d}" if user == "contact-0001" else user
        wf.fire(number, trigger, as_user=as_user, data=data, comment=comment)
    return number


def outbox_rows(engine: Engine) -> list[Any]:
    """Every notice with its recipient's address, language and name, oldest first."""
    query = (
        select(
            notices_table,
            users_table.c.username,
            users_table.c.email,
            users_table.c.locale,
            users_table.c.display_name,
        )
        .join(users_table, users_table.c.id == notices_table.c.recipient_id)
        .order_by(notices_table.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def row(engine: Engine, notice_id: int) -> Any:
    (found,) = [r for r in outbox_rows(engine) if r.id == notice_id]
    return found


def expected_rendering(row: Any, dispatcher: Dispatcher) -> RenderedNotice:
    """What the dispatcher must have rendered for this row: its kind, in its reader's language."""
    extras = render_extras(
        row.kind,
        notice_id=row.id,
        created_at=row.created_at,
        display_name=row.display_name,
        username=row.username,
        base_url=dispatcher.base_url,
    )
    return Renderer().render(row.kind, row.locale, {**row.payload, **extras})


def message_id_of(notice_id: int) -> str:
    return f"<appeal-notice-{notice_id}@{DOMAIN}>"


def set_preference(engine: Engine, username: str, kind: str, mode: str) -> None:
    with UnitOfWork(engine) as uow:
        actor = uow.repo.actor(username)
        assert actor is not None, username
        Outbox(uow.connection).set_preference(actor.id, kind, mode)
        uow.commit()


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"the message has no text/{subtype} part: {message.get_content_type()}"
    return str(part.get_content())


def same_text(a: str, b: str) -> bool:
    """Bodies travel with CRLF line ends and a final newline; compare the lines."""
    return a.replace("\r\n", "\n").rstrip("\n") == b.replace("\r\n", "\n").rstrip("\n")


def digest_days(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(digest_runs.c.day).order_by(digest_runs.c.day)).scalars())


def written_digests(wf: Workflow, node: str) -> int:
    """write_daily_digests, but a due day that leaves no run behind is the known PostgreSQL bug."""
    written = write_daily_digests(wf, node)
    today = (wf.clock.now() + timedelta(hours=8)).date().isoformat()
    assert not (digest_due(wf, wf.clock.now()) and today not in digest_days(wf.engine)), "digest day not recorded"
    return written


# --- what the walk sends ------------------------------------------------------------------------------------------


def test_the_outdoor_walk_delivers_every_notice_once_with_its_headers_and_both_bodies(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher]
) -> None:
    with demo.engine.begin() as conn:  # one reader in English, so both languages travel
        conn.execute(update(users_table).where(users_table.c.username == "bureau-approval-01").values(locale="en"))
    walk(demo)
    rows = outbox_rows(demo.engine)
    kinds = {r.kind for r in rows}
    assert {"appeal_received", "assigned", "materials_requested", "inspection_scheduled", "decision"} <= kinds, kinds

    sender = dispatcher()
    report = sender.dispatch()

    assert (report.claimed, report.sent, report.retried, report.failed) == (len(rows), len(rows), 0, 0), report
    by_id = {r.message_id: r for r in smtp.mailbox.received}
    assert len(smtp.mailbox.received) == len(rows) == len(by_id), "one email per outbox row, none twice"
    for notice in outbox_rows(demo.engine):
        assert (notice.status, notice.sent_at, notice.attempts) == ("sent", demo.clock.now(), 1), notice.id
        got = by_id.get(message_id_of(notice.id))
        assert got is not None, f"notice {notice.id} ({notice.kind} to {notice.username}) never reached the server"
        expected = expected_rendering(notice, sender)
        message = got.message
        assert got.rcpt_tos == [notice.email], "the envelope holds the reader and nobody else"
        assert parseaddr(str(message["To"])) == (notice.display_name, notice.email)
        assert str(message["From"]) == SENDER
        assert message["Subject"] == expected.subject, f"{notice.kind} ({notice.locale})"
        assert same_text(body(message, "plain"), expected.text), f"{notice.kind} text body"
        assert same_text(body(message, "html"), expected.html), f"{notice.kind} HTML body"
        assert message["Auto-Submitted"] == "auto-generated"
    english = [r for r in outbox_rows(demo.engine) if r.locale == "en"]
    assert english, "the English reader was told something"
    for notice in english:
        subject = by_id[message_id_of(notice.id)].message["Subject"]
        assert subject.isascii(), f"an English reader got a non-English subject: {subject!r}"


def test_a_chinese_subject_travels_as_rfc_2047_encoded_words_and_decodes_to_the_rendered_one(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher]
) -> None:
    submit_event(demo)
    sender = dispatcher()
    sender.dispatch()
    (notice,) = [r for r in outbox_rows(demo.engine) if r.email == CONTACT]
    (received,) = [r for r in smtp.mailbox.received if r.message_id == message_id_of(notice.id)]
    expected = expected_rendering(notice, sender).subject
    assert not expected.isascii(), f"the subject should be Chinese: {expected!r}"

    on_the_wire = str(message_from_bytes(received.raw, policy=compat32)["Subject"])  # as sent, not decoded

    assert on_the_wire.isascii(), f"8-bit text in a header: {on_the_wire!r}"
    assert on_the_wire.startswith("=?utf-8?"), f"not an RFC 2047 encoded word: {on_the_wire!r}"
    assert str(make_header(decode_header(on_the_wire))) == expected
    assert received.message["Subject"] == expected, "email.policy.default decodes it to the rendered subject"
    assert parseaddr(str(received.message["To"]))[0] == notice.display_name, "the Chinese name is decoded too"


def test_content_language_names_the_readers_language_on_the_message(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher]
) -> None:
    submit_event(demo)
    dispatcher().dispatch()
    message = next(r for r in smtp.mailbox.received if r.rcpt_tos == [CONTACT]).message
    assert message["Content-Language"] == "zh-CN"


# --- refusals, outages and crashes --------------------------------------------------------------------------------


def test_a_451_is_retried_after_the_backoff_and_then_delivered_once(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher], clock: FrozenClock
) -> None:
    submit_event(demo)
    smtp.mailbox.refuse(CONTACT, "451 4.3.0 mailbox busy, try again later")
    sender = dispatcher()

    first = sender.dispatch()

    (refused,) = [r for r in outbox_rows(demo.engine) if r.email == CONTACT]
    assert (first.sent, first.retried, first.failed) == (1, 1, 0), first
    assert refused.status == "pending"
    assert refused.next_attempt_at == clock.now() + BACKOFF
    assert refused.attempts == 1 and refused.claimed_by is None
    assert "SMTP 451: 4.3.0 mailbox busy" in refused.last_error
    assert message_id_of(refused.id) not in smtp.mailbox.message_ids()

    clock.advance(BACKOFF - timedelta(seconds=1))
    assert sender.dispatch().claimed == 0, "nothing is retried before its backoff is over"
    clock.advance(timedelta(seconds=1))
    second = sender.dispatch()

    assert (second.claimed, second.sent) == (1, 1), second
    delivered = row(demo.engine, refused.id)
    assert (delivered.status, delivered.attempts, delivered.sent_at) == ("sent", 2, clock.now())
    assert smtp.mailbox.message_ids()[message_id_of(refused.id)] == 1
    assert sender.dispatch().claimed == 0


@pytest.fixture
def cli(
    db_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., CliRun]:
    """`appeals ...` in-process on the test database, on the test's clock; closes the engines it opened."""
    return cli_runner(db_url, clock, monkeypatch, capsys)


def test_a_550_fails_at_once_is_listed_as_failed_and_a_retry_from_the_cli_delivers_it(
    demo: Workflow,
    smtp: SmtpServer,
    dispatcher: Callable[..., Dispatcher],
    clock: FrozenClock,
    cli: Callable[..., CliRun],
) -> None:
    submit_event(demo)
    smtp.mailbox.refuse(CONTACT, "550 5.1.1 mailbox unavailable")
    sender = dispatcher()

    report = sender.dispatch()

    (failed,) = [r for r in outbox_rows(demo.engine) if r.email == CONTACT]
    assert (report.sent, report.retried, report.failed) == (1, 0, 1), report
    assert (failed.status, failed.attempts) == ("failed", 1), "a permanent refusal is not retried"
    assert failed.last_error == "refused permanently: SMTP 550: 5.1.1 mailbox unavailable"
    clock.advance(timedelta(days=1))
    assert sender.dispatch().claimed == 0, "a failed notice stays failed until someone retries it"

    listed = cli("notices", "failed", "--json")
    assert listed.code == 0, listed.err
    page = json.loads(listed.out)
    assert (page["total"], page["offset"], page["limit"]) == (1, 0, 100)
    (item,) = page["notices"]
    assert (item["id"], item["kind"], item["recipient"], item["attempts"]) == (
        failed.id,
        "appeal_received",
        "contact-0001",
        1,
    )
    assert "550" in item["error"] and item["number"] == failed.payload["appeal"]["number"]

    queued = cli("notices", "retry", str(failed.id), "--json")
    assert (queued.code, json.loads(queued.out)) == (0, {"id": failed.id, "status": "pending"}), queued.err
    again = cli("notices", "retry", str(failed.id))
    assert again.code == 1 and f"notice {failed.id} is 'pending'; only failed notices can be retried" in again.err

    clock.advance(timedelta(minutes=5))
    assert sender.dispatch().sent == 1
    assert row(demo.engine, failed.id).status == "sent"
    assert smtp.mailbox.message_ids()[message_id_of(failed.id)] == 1
    assert json.loads(cli("notices", "failed", "--json").out) == {"total": 0, "offset": 0, "limit": 100, "notices": []}


def test_an_unreachable_server_is_retried_with_growing_backoff_and_given_up_after_max_attempts(
    demo: Workflow, dispatcher: Callable[..., Dispatcher], clock: FrozenClock
) -> None:
    submit_event(demo)
    with socket.socket() as closed:  # bound but not listening: every connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        sender = dispatcher(channel=SmtpChannel.from_url(f"smtp://127.0.0.1:{port}?timeout=5"), max_attempts=5)
        delays: list[timedelta] = []
        reports: list[DispatchReport] = []
        for _ in range(5):
            reports.append(sender.dispatch())
            rows = outbox_rows(demo.engine)
            if rows[0].status != "pending":
                break
            assert {r.next_attempt_at for r in rows} == {rows[0].next_attempt_at}
            delays.append(rows[0].next_attempt_at - clock.now())
            assert sender.dispatch().claimed == 0, "nothing is tried again before its time"
            clock.set(rows[0].next_attempt_at)

    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240)], delays
    assert [r.retried for r in reports] == [2, 2, 2, 2, 0]
    assert reports[-1].failed == 2
    for notice in outbox_rows(demo.engine):
        assert (notice.status, notice.attempts) == ("failed", 5)
        assert notice.last_error.startswith("gave up after 5 attempts: SMTP server 127.0.0.1:"), notice.last_error
        assert "unreachable" in notice.last_error


class Crash(Exception):
    """The process dying between the SMTP server's 250 and the outbox update."""


def test_a_crash_between_send_and_mark_sent_resends_after_the_lease_with_the_same_message_id(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher], clock: FrozenClock
) -> None:
    submit_event(demo)
    doomed, other = (r.id for r in outbox_rows(demo.engine))
    crashed: list[int] = []

    def die_once(notice_id: int) -> None:
        if notice_id == doomed and not crashed:
            crashed.append(notice_id)
            raise Crash(f"killed after sending notice {notice_id}")

    with pytest.raises(Crash, match=f"killed after sending notice {doomed}"):
        dispatcher("node-a", after_send=die_once).dispatch()

    stuck = row(demo.engine, doomed)
    assert (stuck.status, stuck.claimed_by, stuck.lease_until) == ("sending", "node-a", clock.now() + LEASE)
    assert row(demo.engine, other).status == "sending", "the rest of the dead node's batch waits for its lease too"
    assert smtp.mailbox.message_ids() == Counter({message_id_of(doomed): 1})

    rescuer = dispatcher("node-b")
    clock.advance(LEASE - timedelta(seconds=1))
    assert rescuer.dispatch().claimed == 0, "a live lease is respected"
    clock.advance(timedelta(seconds=2))
    report = rescuer.dispatch()

    assert (report.claimed, report.sent) == (2, 2), report
    assert smtp.mailbox.message_ids() == Counter({message_id_of(doomed): 2, message_id_of(other): 1}), (
        "the crashed notice is sent once more with the same Message-ID, the other once"
    )
    for notice_id in (doomed, other):
        done = row(demo.engine, notice_id)
        assert (done.status, done.claimed_by, done.attempts) == ("sent", "node-b", 2)
    with UnitOfWork(demo.engine) as uow:
        late = Outbox(uow.connection).finish(doomed, "node-a", status="failed")
        uow.commit()
    assert late is False, "the dead node's claim is gone: it cannot overwrite the outcome"


def test_two_dispatchers_racing_on_one_outbox_never_send_a_row_twice(
    demo: Workflow, smtp: SmtpServer, db_url: str, clock: FrozenClock
) -> None:
    for enterprise in range(1, 16):
        walk(demo, enterprise=enterprise)
    rows = outbox_rows(demo.engine)
    assert len(rows) > 150, len(rows)
    engines = [create_database_engine(db_url) for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(index: int) -> DispatchReport:
        node = Dispatcher(
            engines[index], clock, smtp.channel(), node=f"node-{index}", sender=SENDER, lease=LEASE, batch=4
        )
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return node.dispatch()

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            reports = list(pool.map(run, range(2)))
    finally:
        leaked = sum(e.pool.checkedout() for e in engines)
        for e in engines:
            e.dispose()
    assert leaked == 0

    assert sum(r.sent for r in reports) == len(rows), reports
    assert all(r.sent > 0 for r in reports), f"both nodes should have taken part: {reports}"
    counts = smtp.mailbox.message_ids()
    twice = sorted(mid for mid, n in counts.items() if n > 1)
    assert twice == [], f"sent more than once: {twice}"
    assert set(counts) == {message_id_of(r.id) for r in rows}
    done = outbox_rows(demo.engine)
    assert {r.status for r in done} == {"sent"}
    assert Counter(r.claimed_by for r in done) == Counter({"node-0": reports[0].sent, "node-1": reports[1].sent})


# --- one connection per batch -------------------------------------------------------------------------------------


def test_each_claimed_batch_goes_over_one_connection_and_its_recipients_are_read_in_one_query(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher]
) -> None:
    for enterprise in (1, 2):
        walk(demo, enterprise=enterprise)
    ids = [r.id for r in outbox_rows(demo.engine)]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(demo.engine, "before_cursor_execute", record)
    try:
        report = dispatcher(batch=10).dispatch()
    finally:
        event.remove(demo.engine, "before_cursor_execute", record)

    batches = [ids[i : i + 10] for i in range(0, len(ids), 10)]
    assert len(batches) >= 3 and (report.claimed, report.sent) == (len(ids), len(ids)), report
    by_id = {message_id_of(i): i for i in ids}
    per_connection: dict[Any, list[int]] = {}
    for mail in smtp.mailbox.received:
        per_connection.setdefault(mail.connection, []).append(by_id[mail.message_id])
    assert sorted(per_connection.values()) == batches, "one connection per batch, and a new one for the next"
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "users" in s]
    assert len(reads) == len(batches), f"recipients are read once per batch, not per notice: {len(reads)} reads"


def test_a_server_that_hangs_up_mid_batch_gets_the_rest_over_a_new_connection_at_once(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher]
) -> None:
    submit_event(demo)
    first, second = outbox_rows(demo.engine)
    smtp.mailbox.hang_up_after(first.email)

    report = dispatcher().dispatch()

    assert (report.sent, report.retried, report.failed) == (2, 0, 0), report
    assert smtp.mailbox.message_ids() == Counter({message_id_of(first.id): 1, message_id_of(second.id): 1})
    assert smtp.mailbox.connections() == 2


def test_a_421_on_a_kept_connection_is_tried_once_more_on_a_new_one_as_a_message_of_its_own_would_be(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher], clock: FrozenClock
) -> None:
    submit_event(demo)
    first, second = outbox_rows(demo.engine)
    smtp.mailbox.refuse(second.email, "421 4.7.0 too many messages on this connection")

    report = dispatcher().dispatch()

    assert (report.sent, report.retried) == (2, 0), report
    assert smtp.mailbox.refused == [([second.email], "421 4.7.0 too many messages on this connection")]
    assert smtp.mailbox.message_ids() == Counter({message_id_of(first.id): 1, message_id_of(second.id): 1})
    assert smtp.mailbox.connections() == 2

    third = submit_event(demo, enterprise=2)  # a 421 on a new connection waits for the backoff, as before
    (fresh, _) = [r for r in outbox_rows(demo.engine) if r.payload["appeal"]["number"] == third]
    smtp.mailbox.refuse(fresh.email, "421 4.3.2 shutting down")
    later = dispatcher().dispatch()
    assert (later.sent, later.retried) == (1, 1), later
    assert row(demo.engine, fresh.id).next_attempt_at == clock.now() + BACKOFF


def test_an_address_outside_ascii_fails_its_notice_at_once_and_the_batch_goes_on(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher], clock: FrozenClock
) -> None:
    address = "李娜@例子.中国"  # would need SMTPUTF8; the email package cannot even write it into a To header
    with demo.engine.begin() as conn:
        conn.execute(update(users_table).where(users_table.c.username == "contact-0001").values(email=address))
    submit_event(demo)
    (notice,) = [r for r in outbox_rows(demo.engine) if r.email == address]

    report = dispatcher().dispatch()

    assert (report.sent, report.retried, report.failed) == (1, 0, 1), report
    failed = row(demo.engine, notice.id)
    assert failed.status == "failed" and "is not ASCII" in failed.last_error, failed.last_error
    assert message_id_of(notice.id) not in smtp.mailbox.message_ids()
    clock.advance(timedelta(days=1))
    assert dispatcher().dispatch().claimed == 0


def test_without_smtp_every_notice_lands_in_the_maildir_with_local_line_ends(
    demo: Workflow, dispatcher: Callable[..., Dispatcher], tmp_path: Any
) -> None:
    walk(demo)
    rows = outbox_rows(demo.engine)
    sender = dispatcher(channel=MaildirChannel(tmp_path / "maildir"))

    report = sender.dispatch()

    assert report.sent == len(rows), report
    box = mailbox.Maildir(str(tmp_path / "maildir"), create=False)
    raws = [box.get_bytes(key) for key in box.iterkeys()]
    assert all(b"\r\n" not in raw for raw in raws)
    messages = {str(m["Message-ID"]): m for m in (message_from_bytes(raw, policy=default_policy) for raw in raws)}
    assert set(messages) == {message_id_of(r.id) for r in rows}
    for notice in rows:
        message = cast(EmailMessage, messages[message_id_of(notice.id)])
        expected = expected_rendering(notice, sender)
        assert message["Subject"] == expected.subject
        assert same_text(body(message, "plain"), expected.text)


# --- preferences --------------------------------------------------------------------------------------------------


def test_a_reader_who_turned_email_off_gets_no_email_but_finds_the_notice_in_the_inbox(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher]
) -> None:
    set_preference(demo.engine, "contact-0001", "appeal_received", "off")
    number = submit_event(demo)

    report = dispatcher().dispatch()

    (held,) = [r for r in outbox_rows(demo.engine) if r.email == CONTACT]
    assert (report.sent, report.skipped) == (1, 1), report
    assert (held.status, held.last_error) == ("skipped", "no email wanted or possible")
    assert [r.rcpt_tos for r in smtp.mailbox.received] == [["staff-b01@demo.appeals.local"]]
    with UnitOfWork(demo.engine, read_only=True) as uow:
        actor = uow.repo.actor("contact-0001")
    assert actor is not None
    inbox = inbox_view(demo.engine, actor)
    assert inbox["unread"] == 1
    (item,) = inbox["notices"]
    assert (item["id"], item["kind"], item["number"], item["email"]) == (held.id, "appeal_received", number, "skipped")
    assert number in item["subject"]


def test_a_reader_who_chose_the_digest_gets_the_notice_listed_in_the_next_mornings_digest(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher], clock: FrozenClock
) -> None:
    set_preference(demo.engine, "contact-0001", "materials_requested", "digest")
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.fire(number, "request_materials", as_user="staff-b01", comment="请补充场地方同意书")
    sender = dispatcher()

    sender.dispatch()

    (held,) = [r for r in outbox_rows(demo.engine) if r.kind == "materials_requested"]
    assert (held.status, held.last_error) == ("skipped", "digest")
    assert [r.message_id for r in smtp.mailbox.received if r.rcpt_tos == [CONTACT]] == [
        message_id_of(r.id) for r in outbox_rows(demo.engine) if r.email == CONTACT and r.kind != held.kind
    ], "everything else still comes by email"

    clock.set(SHANGHAI_0830_FRIDAY)
    assert written_digests(demo, "node-a") >= 1
    sender.dispatch()

    digests = [r for r in outbox_rows(demo.engine) if r.kind == "daily_digest" and r.email == CONTACT]
    assert len(digests) == 1, digests
    (digest,) = digests
    assert digest.payload["notices"] == [
        {"kind": "materials_requested", "number": number, "created_at": held.created_at.isoformat()}
    ]
    (mail,) = [r for r in smtp.mailbox.received if r.message_id == message_id_of(digest.id)]
    assert mail.rcpt_tos == [CONTACT]
    assert number in body(mail.message, "plain") and number in body(mail.message, "html")


def test_a_notice_held_for_the_digest_on_a_friday_afternoon_reaches_mondays_digest(
    demo: Workflow, dispatcher: Callable[..., Dispatcher], clock: FrozenClock
) -> None:
    set_preference(demo.engine, "contact-0001", "materials_requested", "digest")
    clock.set(SHANGHAI_0830_FRIDAY)
    assert write_daily_digests(demo, "node-a") == 0, "nothing to digest on Friday morning yet"
    clock.set(datetime(2026, 11, 27, 7, 0, tzinfo=UTC))  # Friday 15:00 in Shanghai
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.fire(number, "request_materials", as_user="staff-b01", comment="请补充场地方同意书")
    dispatcher().dispatch()

    clock.set(datetime(2026, 11, 30, 0, 30, tzinfo=UTC))  # Monday 08:30 in Shanghai
    written_digests(demo, "node-a")

    listed = [
        n["number"]
        for r in outbox_rows(demo.engine)
        if r.kind == "daily_digest" and r.email == CONTACT
        for n in r.payload["notices"]
    ]
    assert listed == [number]


# --- hostile text -------------------------------------------------------------------------------------------------


def test_a_comment_that_smuggles_a_bcc_header_and_a_script_adds_no_recipient_and_is_escaped(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher]
) -> None:
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.fire(number, "request_materials", as_user="staff-b01", comment=HOSTILE_COMMENT)

    dispatcher().dispatch()

    everyone = sorted(address for r in smtp.mailbox.received for address in r.rcpt_tos)
    assert "victim@example.com" not in everyone, everyone
    for got in smtp.mailbox.received:
        assert len(got.rcpt_tos) == 1, got.rcpt_tos
        names = [line.split(":", 1)[0].lower() for line in got.raw_headers.split("\r\n") if line[:1] not in " \t"]
        assert "bcc" not in names and "cc" not in names, names
        assert got.message["Bcc"] is None
    (asked,) = [r for r in outbox_rows(demo.engine) if r.kind == "materials_requested"]
    (mail,) = [r for r in smtp.mailbox.received if r.message_id == message_id_of(asked.id)]
    assert mail.rcpt_tos == [CONTACT]
    html = body(mail.message, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = body(mail.message, "plain")
    assert "请补充场地方同意书" in text, "the comment itself reaches the reader, as text"
    assert "\r" not in str(mail.message["Subject"]) and "\n" not in str(mail.message["Subject"])


# --- the daily digest ---------------------------------------------------------------------------------------------


def supervisors_over(engine: Engine, number: str) -> set[str]:
    """Addresses of the supervisors whose part of the chain holds appeal `number`."""
    with UnitOfWork(engine, read_only=True) as uow:
        appeal = uow.repo.appeal(number)
        assert appeal is not None
        found = set()
        for role in SUPERVISOR_ROLES:
            for person in uow.repo.users(role=role):
                actor = uow.repo.actor(person.username)
                if actor is not None and appeal.building_path.startswith(actor.scope_path):
                    found.add(str(person.email))
    return found


def test_the_daily_digest_is_sent_once_per_supervisor_per_day_when_two_nodes_write_it_at_once(
    demo: Workflow, smtp: SmtpServer, dispatcher: Callable[..., Dispatcher], db_url: str, clock: FrozenClock
) -> None:
    number = submit_event(demo)  # submitted Thursday 10:00; its 4-hour limit is long gone by Friday morning
    expected = supervisors_over(demo.engine, number)
    assert len(expected) >= 3, expected
    clock.set(SHANGHAI_0830_FRIDAY)
    nodes = [connect(db_url, clock=clock) for _ in range(2)]
    barrier = threading.Barrier(2)

    def write(index: int) -> int:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return write_daily_digests(nodes[index], f"node-{index}")

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            written = sorted(pool.map(write, range(2)))
        assert digest_days(demo.engine), "the day's digest run was not recorded"
        assert written == [0, len(expected)], written
        clock.advance(timedelta(hours=8))
        assert write_daily_digests(nodes[0], "node-0") == 0, "the day's digests are written once"
    finally:
        for node in nodes:
            node.engine.dispose()
    dispatcher().dispatch()

    digest_ids = {message_id_of(r.id) for r in outbox_rows(demo.engine) if r.kind == "daily_digest"}
    digests = [r for r in smtp.mailbox.received if r.message_id in digest_ids]
    recipients = Counter(address for r in digests for address in r.rcpt_tos)
    assert recipients == Counter(dict.fromkeys(expected, 1)), recipients
    assert digest_days(demo.engine) == ["2026-11-27"]
    for mail in digests:
        assert number in body(mail.message, "plain")


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        (datetime(2026, 11, 27, 0, 29, 59, tzinfo=UTC), False),  # Friday 08:29:59 in Shanghai
        (datetime(2026, 11, 27, 0, 30, tzinfo=UTC), True),  # Friday 08:30
        (datetime(2026, 11, 28, 2, 0, tzinfo=UTC), False),  # Saturday 10:00
        (datetime(2026, 11, 29, 2, 0, tzinfo=UTC), False),  # Sunday 10:00
        (datetime(2026, 10, 5, 2, 0, tzinfo=UTC), False),  # Monday of the National Day holiday
        (datetime(2026, 10, 10, 2, 0, tzinfo=UTC), True),  # a Saturday worked to make up for it (调休)
    ],
    ids=["friday-0829", "friday-0830", "saturday", "sunday", "national-day", "make-up-saturday"],
)
def test_digests_are_written_from_0830_on_working_days_only(
    demo: Workflow, clock: FrozenClock, moment: datetime, due: bool
) -> None:
    submit_event(demo)
    clock.set(moment)
    written_digests(demo, "node-a")
    runs = digest_days(demo.engine)
    day = moment.astimezone(UTC) + timedelta(hours=8)
    assert runs == ([day.date().isoformat()] if due else []), f"{day:%A %Y-%m-%d %H:%M} in Shanghai"
