"""Where an email goes: an SMTP server (APPEALS_SMTP_URL) or, by default, a maildir on disk."""

from __future__ import annotations

import mailbox
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

from notifications.rendering import RenderedNotice
from workflow.errors import InvalidInput

SMTP_URL_VARIABLE = "APPEALS_SMTP_URL"
MAILDIR_VARIABLE = "APPEALS_MAILDIR"
FROM_VARIABLE = "APPEALS_MAIL_FROM"
DEFAULT_FROM = "芙蓉区楼宇企业服务 <appeals@localhost>"


class DeliveryError(Exception):
    """A delivery that failed; `permanent` ones are not retried (e.g. SMTP 5xx)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str

    def send(self, message: EmailMessage) -> None: ...


def message_id(notice_id: int, domain: str) -> str:
    """Stable per outbox row: a resend after a crash carries the same Message-ID, so mail clients fold it."""
    return f"<appeal-notice-{notice_id}@{domain}>"


def build_message(
    rendered: RenderedNotice, *, notice_id: int, sender: str, to_name: str, to_address: str
) -> EmailMessage:
    message = EmailMessage()
    domain = sender.rsplit("@", 1)[-1].rstrip(">") or "localhost"
    message["Subject"] = rendered.subject  # already one line; the email package encodes Chinese (RFC 2047)
    message["From"] = sender
    message["To"] = formataddr((to_name, to_address))
    message["Message-ID"] = message_id(notice_id, domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    message["Content-Language"] = rendered.locale  # after set_content, which clears Content-* headers
    return message


@dataclass
class SmtpChannel:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 10.0
    name: str = "smtp"

    @classmethod
    def from_url(cls, url: str) -> SmtpChannel:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise InvalidInput(
                f"bad {SMTP_URL_VARIABLE} {url!r}: use smtp://user:pass@host:587?starttls=1 or smtps://host:465"
            )
        query = parse_qs(parsed.query)
        secure = parsed.scheme == "smtps"
        return cls(
            host=parsed.hostname,
            port=parsed.port or (465 if secure else 25),
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            ssl=secure,
            timeout=float(query.get("timeout", ["10"])[0]),
        )

    def send(self, message: EmailMessage) -> None:
        try:
            client: smtplib.SMTP
            if self.ssl:
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipients refused: {exc.recipients}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {exc.smtp_code}: {text}", permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused connection, timeout, dropped line
            raise DeliveryError(f"SMTP server {self.host}:{self.port} unreachable: {exc}", permanent=False) from exc


@dataclass
class MaildirChannel:
    """The embedded default: every email lands as a file in ./maildir (readable with any mail client)."""

    path: Path
    name: str = "maildir"

    def send(self, message: EmailMessage) -> None:
        try:
            mailbox.Maildir(str(self.path), create=True).add(message)
        except OSError as exc:
            raise DeliveryError(f"cannot write to maildir {self.path}: {exc}", permanent=False) from exc


def channel_from_environment() -> Channel:
    url = os.environ.get(SMTP_URL_VARIABLE)
    if url:
        return SmtpChannel.from_url(url)
    return MaildirChannel(Path(os.environ.get(MAILDIR_VARIABLE, "maildir")))


def sender_address() -> str:
    return os.environ.get(FROM_VARIABLE, DEFAULT_FROM)
