"""Outgoing mail through a pluggable sender chosen by ``ATELIER_MAIL_BACKEND``.

- ``console`` (default): the message is logged (development; links appear in the server log).
- ``file``: each message is written as an ``.eml`` file into ``data_dir/mail`` (tests, local use).
- ``smtp``: sent through ``ATELIER_SMTP_HOST``/``PORT`` with optional STARTTLS and login.

Callers send after the transaction has committed (FastAPI background tasks run after the
answer), so a slow mail server neither delays the answer nor reveals whether a mail was sent.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from app.core.ids import new_id
from app.core.settings import Settings, get_settings

log = logging.getLogger("atelier.mail")


class Sender(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class ConsoleSender:
    def send(self, message: EmailMessage) -> None:
        log.info("mail to %s: %s\n%s", message["To"], message["Subject"],
                 message.get_content())


class FileSender:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Sortable by time, unique, and written whole before it appears under its name.
        name = f"{time.time_ns()}-{new_id()}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(bytes(message))
        tmp.rename(self.folder / name)


class SmtpSender:
    def __init__(self, s: Settings) -> None:
        self.s = s

    def send(self, message: EmailMessage) -> None:
        s = self.s
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password)
            smtp.send_message(message)


def mail_dir(s: Settings | None = None) -> Path:
    return (s or get_settings()).data_dir.resolve() / "mail"


def sender() -> Sender:
    s = get_settings()
    if s.mail_backend == "file":
        return FileSender(mail_dir(s))
    if s.mail_backend == "smtp":
        return SmtpSender(s)
    return ConsoleSender()


def compose(to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = get_settings().mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="atelier.local")
    msg.set_content(body)
    return msg


def send(to: str, subject: str, body: str) -> None:
    """Send one plain-text message; a failure is logged, never raised to a caller's answer."""
    try:
        sender().send(compose(to, subject, body))
    except Exception:  # noqa: BLE001 - mail is best effort; the link can be made again
        log.exception("could not send mail %r to %s", subject, to)
