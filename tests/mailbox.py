"""A real SMTP server on loopback for tests: aiosmtpd's Controller on 127.0.0.1 and a free port, keeping every
e-mail it accepts, which can be stopped (the mail server is down) and started again on the same port, or told to
refuse recipients. The `mailbox` fixture (tests/conftest.py) gives a test one, started; `mailbox.settings(url)` are
the settings that make Firstline send its e-mails there."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

SENDER = "Job Tracker Pro support <support@jtp.example>"  # the From of the e-mails the tests' settings send


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    """One e-mail as the server got it: the envelope's recipients and the parsed message."""

    recipients: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        return str(self.message.get_content())


@dataclass
class Mailbox:
    """The server's side of the conversation (aiosmtpd's handler) and its controls."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    refuse_with: str = ""  # e.g. "550 5.1.1 no such user": every RCPT is answered this, nothing is accepted
    _controller: Controller | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def settings(self, public_url: str) -> dict[str, object]:
        """Setting overrides that send Firstline's e-mails here, in clear, from SENDER, linking to `public_url`."""
        return {"smtp_host": self.host, "smtp_port": self.port, "smtp_security": "none", "smtp_from": SENDER,
                "public_url": public_url}

    def start(self) -> Mailbox:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append(Received(list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        return "250 OK: queued"
