"""The mail server notification e-mails go through (Python's smtplib): its settings, checked at start-up, and one
delivery per call, whose failure says whether trying again could help.

A refused recipient or message (a 5xx answer to RCPT or DATA) is permanent: the same e-mail would be refused again.
Everything else (the server down or slow, a 4xx answer, a failed login or TLS upgrade, which an operator can put
right) is transient and tried again later by the sender (engine/notify/sender.py).
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from ipaddress import ip_address
from typing import Literal, Protocol

from core.errors import ConfigurationError, DeliveryError
from core.settings import Settings

PUBLIC_URL = re.compile(r"https?://[^/\s?#]+(/[^\s?#]*)?")
LOOPBACK_NAMES = ("localhost",)


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Literal["starttls", "tls", "none"]
    username: str
    password: str
    timeout_s: float
    sender: str  # the From header
    public_url: str  # the chat's public address, for the link back

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """The mail server's settings, or None when `smtp_host` is empty (no e-mail). ConfigurationError naming the
        setting when e-mail is on but cannot work as configured."""
        if not settings.smtp_host.strip():
            return None
        sender = settings.smtp_from.strip()
        address = parseaddr(sender)[1]
        if not sender or "@" not in address or any(c in sender for c in "\r\n"):
            raise ConfigurationError(
                "smtp_host is set, so e-mail is on, but smtp_from is not an address to send from: set "
                "FIRSTLINE_SMTP_FROM, e.g. \"Job Tracker Pro support <support@example.com>\"", key="smtp_from")
        public_url = settings.public_url.strip()
        if not PUBLIC_URL.fullmatch(public_url):
            raise ConfigurationError(
                f"smtp_host is set, so e-mail is on, and each e-mail links back to the chat: set FIRSTLINE_PUBLIC_URL "
                f"to the address users open it at, e.g. https://support.example.com (got {public_url!r})",
                key="public_url")
        if settings.smtp_username and settings.smtp_security == "none" and not _loopback(settings.smtp_host):
            raise ConfigurationError(
                "smtp_username is set but smtp_security is none, so the password would cross the network in clear: "
                "set FIRSTLINE_SMTP_SECURITY to starttls or tls", key="smtp_security")
        return cls(settings.smtp_host.strip(), settings.smtp_port, settings.smtp_security, settings.smtp_username,
                   settings.smtp_password, settings.smtp_timeout_s, sender, public_url)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class SmtpTransport:
    """Sends one e-mail per call over a connection of its own (notifications are rare; no connection is kept)."""

    def __init__(self, config: SmtpConfig, context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.context = context or ssl.create_default_context()

    def send(self, message: EmailMessage) -> None:
        """Hand `message` to the mail server. DeliveryError saying what the server said, `permanent` when it
        refused the recipient or the message for good."""
        c = self.config
        try:
            if c.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=self.context)
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
            with smtp:
                if c.security == "starttls":
                    smtp.starttls(context=self.context)
                if c.username:
                    smtp.login(c.username, c.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            said = "; ".join(f"{code} {_text(reply)}" for code, reply in error.recipients.values())
            permanent = all(500 <= code < 600 for code, _ in error.recipients.values())
            raise DeliveryError(f"{c.where} refused the recipient: {said}", permanent=permanent) from None
        except smtplib.SMTPDataError as error:
            raise DeliveryError(f"{c.where} refused the message: {error.smtp_code} {_text(error.smtp_error)}",
                                permanent=500 <= error.smtp_code < 600) from None
        except smtplib.SMTPNotSupportedError as error:
            raise DeliveryError(f"{c.where} does not offer what smtp_security or smtp_username need: {error}") from None
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"{c.where} refused the login of smtp_username: {error.smtp_code} "
                                f"{_text(error.smtp_error)}") from None
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(f"{c.where} answered {error.smtp_code} {_text(error.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as error:  # refused, unreachable, timed out, TLS failed, hung up
            raise DeliveryError(f"could not talk to the mail server at {c.where}: {_reason(error)}") from None


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply).replace("\n", " ").strip()


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time (smtp_timeout_s)"
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
