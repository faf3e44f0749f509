"""Where an email goes: an SMTP server (APPEALS_SMTP_URL) or, by default, a maildir on disk.

A channel opens a session per claimed batch; the SMTP one sends the whole batch over one connection,
since connecting, EHLO and QUIT for every message cost as much as the message itself."""

from __future__ import annotations

import mailbox
import os
import smtplib
import ssl
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlparse

from notifications.message import Email
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


class Sender(Protocol):
    def send(self, mail: Email) -> None: ...


class Channel(Protocol):
    name: str

    def session(self) -> AbstractContextManager[Sender]: ...


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

    def session(self) -> SmtpSession:
        return SmtpSession(self)

    def send(self, mail: Email) -> None:
        """One message on a connection of its own."""
        with self.session() as session:
            session.send(mail)

    def connect(self) -> smtplib.SMTP:
        client: smtplib.SMTP
        if self.ssl:
            context = ssl.create_default_context()
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                client.starttls(context=ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password or "")
        except BaseException:
            client.close()
            raise
        return client


class SmtpSession:
    """One SMTP connection for a batch, opened at its first message and opened again after the server hung up."""

    def __init__(self, channel: SmtpChannel) -> None:
        self.channel = channel
        self.client: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def send(self, mail: Email) -> None:
        try:
            self._send(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipients refused: {exc.recipients}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {exc.smtp_code}: {text}", permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused connection, timeout, dropped line
            self._drop()  # mid-exchange, the connection's state is unknown: the next message starts afresh
            host = f"{self.channel.host}:{self.channel.port}"
            raise DeliveryError(f"SMTP server {host} unreachable: {exc}", permanent=False) from exc

    def _send(self, mail: Email) -> None:
        kept = self.client if self._connected() else None
        try:
            (kept or self._reconnect()).sendmail(mail.sender, [mail.recipient], mail.data)
        except (smtplib.SMTPException, OSError):
            if kept is None or self._connected():  # refused on a live line, or a new connection failed: report it
                raise
            # The server hung up on the connection we kept (idle timeout, a limit of messages per connection,
            # 421): not this message's fault, so once more on a new one, as a message of its own would have been.
            self._reconnect().sendmail(mail.sender, [mail.recipient], mail.data)

    def _reconnect(self) -> smtplib.SMTP:
        self._drop()
        self.client = self.channel.connect()
        return self.client

    def _connected(self) -> bool:
        return self.client is not None and self.client.sock is not None  # smtplib closes it on 421 or EOF

    def _drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()


@dataclass
class MaildirChannel:
    """The embedded default: every email lands as a file in ./maildir (readable with any mail client)."""

    path: Path
    name: str = "maildir"

    def prepare(self) -> None:
        """Make the folder a maildir now, or refuse to start: a folder that is not one fails every send.

        `mailbox.Maildir(create=True)` creates cur/new/tmp only when the folder itself is missing, so an
        existing empty folder (made by hand, or by a deployment) never became a maildir and every notice was
        retried until it failed."""
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(
                f"{MAILDIR_VARIABLE} {str(self.path)!r} cannot be used as a maildir ({exc.strerror or exc}); "
                "name a folder this process may create and write to, or set APPEALS_SMTP_URL"
            ) from None

    def session(self) -> AbstractContextManager[Sender]:
        return nullcontext(self)

    def send(self, mail: Email) -> None:
        try:
            # Files in a maildir end their lines the local way.
            mailbox.Maildir(str(self.path), create=True).add(mail.data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            raise DeliveryError(f"cannot write to maildir {self.path}: {exc}", permanent=False) from exc


def channel_from_environment() -> Channel:
    url = os.environ.get(SMTP_URL_VARIABLE)
    if url:
        return SmtpChannel.from_url(url)
    channel = MaildirChannel(Path(os.environ.get(MAILDIR_VARIABLE) or "maildir"))
    channel.prepare()
    return channel


def sender_address() -> str:
    return os.environ.get(FROM_VARIABLE, DEFAULT_FROM)
