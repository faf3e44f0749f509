"""What an email says, delivered for real (outbox -> maildir) on SQLite and PostgreSQL: field titles and choice
titles rather than the names in the data, in the reader's language."""

from __future__ import annotations

import mailbox
import os
import queue
import socket
import subprocess
import sys
import threading
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from notifications.channels import MaildirChannel
from notifications.dispatcher import Dispatcher
from notifications.outbox import notices as notices_table
from notifications.outbox import users as users_table
from tests.conftest import OUTDOOR_EVENT
from workflow.cli.web_commands import served_base_url
from workflow.services.workflow import Workflow

# The article's path to the approval: the bureau inspects the site and writes its findings.
TO_APPROVAL: list[tuple[str, str, dict[str, Any]]] = [
    ("start_pre_check", "staff-b01", {}),
    ("pass_pre_check", "staff-b01", {}),
    ("file_application", "specialist-b01", {"materials_complete": True}),
    ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}),
    ("approve", "bureau-approval-01", {"inspection_findings": "场地安全，消防通道畅通"}),
]


def approved_permit(wf: Workflow) -> str:
    number = str(
        wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"]
    )
    for trigger, user, data in TO_APPROVAL:
        wf.fire(number, trigger, as_user=user, data=data)
    return number


def set_locale(wf: Workflow, username: str, locale: str) -> None:
    with wf.engine.begin() as conn:
        conn.execute(users_table.update().where(users_table.c.username == username).values(locale=locale))


def delivered(wf: Workflow, folder: Path, kind: str) -> EmailMessage:
    """Deliver the outbox into a maildir and return the one email of `kind` to the enterprise's contact."""
    Dispatcher(wf.engine, wf.clock, MaildirChannel(folder), node="test", sender="appeals@demo.appeals.local").dispatch()
    with wf.engine.connect() as conn:
        (notice_id,) = conn.execute(
            select(notices_table.c.id)
            .join(users_table, users_table.c.id == notices_table.c.recipient_id)
            .where(notices_table.c.kind == kind, users_table.c.username == "contact-0001")
        ).scalars()
    box = mailbox.Maildir(str(folder), create=False)
    for raw in (box.get_bytes(key) for key in box.iterkeys()):
        message = cast(EmailMessage, message_from_bytes(raw, policy=default_policy))
        if f"<appeal-notice-{notice_id}@" in str(message["Message-ID"]):
            return message
    raise AssertionError(f"no email for notice {notice_id}")


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, html = (message.get_body(preferencelist=(kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_the_decision_email_of_the_outdoor_permit_names_the_inspection_findings_by_their_title(
    demo: Workflow, tmp_path: Path
) -> None:
    approved_permit(demo)
    text, html = bodies(delivered(demo, tmp_path / "mail", "decision"))
    assert "查勘意见：场地安全，消防通道畅通" in text, text
    assert "查勘意见" in html and "场地安全，消防通道畅通" in html
    assert "inspection_findings" not in text + html


def test_the_decision_email_in_english_uses_the_english_title(demo: Workflow, tmp_path: Path) -> None:
    set_locale(demo, "contact-0001", "en")
    approved_permit(demo)
    text, html = bodies(delivered(demo, tmp_path / "mail", "decision"))
    assert "Inspection findings: 场地安全，消防通道畅通" in text, text
    assert "Inspection findings" in html
    assert "inspection_findings" not in text + html


def test_the_receipt_lists_what_was_filled_in_by_field_title_and_choice_title(demo: Workflow, tmp_path: Path) -> None:
    demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)
    text, html = bodies(delivered(demo, tmp_path / "mail", "appeal_received"))
    for shown in ("活动名称：香水品牌开业活动", "活动类型：开业活动", "预计人数：500", "联系电话：0731-8888 6666"):
        assert shown in text, text
    for name in ("event_name", "event_kind", "expected_attendance", "contact_phone"):
        assert name not in text + html, name
    assert "开业活动" in html and "opening" not in html


# --- links --------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def emails_in(folder: Path) -> list[EmailMessage]:
    box = mailbox.Maildir(str(folder), create=False)
    return [cast(EmailMessage, message_from_bytes(box.get_bytes(k), policy=default_policy)) for k in box.iterkeys()]


def test_links_in_emails_sent_by_appeals_serve_point_at_the_host_and_port_it_serves(
    demo: Workflow, db_url: str, tmp_path: Path
) -> None:
    number = demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("APPEALS_BASE_URL", "APPEALS_SMTP_URL")}
    env.update(APPEALS_SECRET_KEY="s" * 40, APPEALS_MAILDIR=str(tmp_path / "mail"), APPEALS_SWEEP_INTERVAL="60")
    command = [sys.executable, "-m", "workflow.cli", "-v", "--db", db_url, "serve", "--host", "127.0.0.1"]
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen([*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True) as server:
        reader = threading.Thread(target=lambda: [lines.put(line) for line in server.stderr or []], daemon=True)
        reader.start()
        try:
            seen: list[str] = []
            while not any("dispatch by" in line for line in seen):  # the first sweep runs at start
                seen.append(lines.get(timeout=60))
        finally:
            server.terminate()
            server.wait(timeout=30)
            reader.join(timeout=30)
    (receipt,) = [
        m for m in emails_in(tmp_path / "mail") if "contact-0001@" in str(m["To"]) and number in str(m["Subject"])
    ]
    text, html = bodies(receipt)
    link = f"http://127.0.0.1:{port}/appeals/{number}"
    assert link in text and f'href="{link}"' in html, text
    assert "localhost:8000" not in text + html


def test_appeals_base_url_wins_over_the_served_address_and_a_trailing_slash_makes_no_double_slash(
    demo: Workflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"]
    monkeypatch.setenv("APPEALS_SERVED_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("APPEALS_BASE_URL", "https://appeals.furong.example/")
    Dispatcher(
        demo.engine, demo.clock, MaildirChannel(tmp_path / "mail"), node="t", sender="a@demo.appeals.local"
    ).dispatch()
    for message in emails_in(tmp_path / "mail"):
        text, html = bodies(message)
        assert f"https://appeals.furong.example/appeals/{number}" in text and "9999" not in text + html


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8123"),
        ("appeals.internal", "http://appeals.internal:8123"),
        ("::1", "http://[::1]:8123"),
        ("0.0.0.0", f"http://{socket.getfqdn()}:8123"),  # every interface: the machine's name, not 0.0.0.0
        ("::", f"http://{socket.getfqdn()}:8123"),
    ],
)
def test_the_served_address_is_what_a_browser_can_open(host: str, expected: str) -> None:
    assert served_base_url(host, 8123) == expected
