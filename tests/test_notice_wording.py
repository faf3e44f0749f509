"""What an email says, delivered for real (outbox -> maildir) on SQLite and PostgreSQL: field titles and choice
titles rather than the names in the data, in the reader's language."""

from __future__ import annotations

import mailbox
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select

from notifications.channels import MaildirChannel
from notifications.dispatcher import Dispatcher
from notifications.outbox import notices as notices_table
from notifications.outbox import users as users_table
from tests.conftest import OUTDOOR_EVENT
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
