"""A notice as an email: built with the email package's compat32 classes and serialised once, to the CRLF
bytes SMTP sends as they are. EmailMessage's header registry and its second pass to serialise cost more
than rendering the notice (benchmarks/RESULTS.md, notify.py).

compat32 checks nothing in header values, so every one is made a single line here: data can neither fold
a header nor start a new one."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, parseaddr
from functools import lru_cache

from notifications.rendering import RenderedNotice, one_line

WIRE = compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class Email:
    """What a channel sends: the envelope and the whole message as bytes."""

    sender: str
    recipient: str
    message_id: str
    data: bytes


class UnsendableAddress(ValueError):
    """An address outside ASCII: it would need SMTPUTF8 (RFC 6531), which this sender does not speak."""


def message_id(notice_id: int, domain: str) -> str:
    """Stable per outbox row: a resend after a crash carries the same Message-ID, so mail clients fold it."""
    return f"<appeal-notice-{notice_id}@{domain}>"


@lru_cache(maxsize=8)
def _sender(sender: str) -> tuple[str, str, str]:
    """(From header, envelope address, Message-ID domain): the same for every notice, so worked out once."""
    sender = one_line(sender)
    domain = sender.rsplit("@", 1)[-1].rstrip(">") or "localhost"
    return formataddr(parseaddr(sender), charset="utf-8"), parseaddr(sender)[1], domain


def build_message(rendered: RenderedNotice, *, notice_id: int, sender: str, to_name: str, to_address: str) -> Message:
    """multipart/alternative, text then HTML, both UTF-8 in base64; Chinese in headers as RFC 2047 words."""
    from_header, _, domain = _sender(sender)
    message = MIMEMultipart("alternative")
    message["Subject"] = one_line(rendered.subject)  # compat32 encodes non-ASCII as =?utf-8?b?...?=
    message["From"] = from_header
    message["To"] = formataddr((one_line(to_name), one_line(to_address)), charset="utf-8")
    message["Message-ID"] = message_id(notice_id, domain)
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = one_line(rendered.locale)
    message.attach(MIMEText(_lines(rendered.text), "plain", "utf-8"))
    message.attach(MIMEText(_lines(rendered.html), "html", "utf-8"))
    return message


def _lines(text: str) -> str:
    """Line ends as EmailMessage.set_content made them: CRLF and a lone CR become LF, and one ends the text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def compose(rendered: RenderedNotice, *, notice_id: int, sender: str, to_name: str, to_address: str) -> Email:
    _, envelope, domain = _sender(sender)
    to_address = one_line(to_address)
    if not to_address.isascii():
        raise UnsendableAddress(f"address {to_address!r} is not ASCII: internationalised addresses are not supported")
    message = build_message(rendered, notice_id=notice_id, sender=sender, to_name=to_name, to_address=to_address)
    return Email(envelope, to_address, message_id(notice_id, domain), message.as_bytes(policy=WIRE))
