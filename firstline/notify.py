"""`firstline notify status|send|retry`: the outbox of e-mails telling users a person answered (engine/notify/),
on the running server (through its admin socket: its outbox and its mail settings) or, when none runs, on the data
folder with this command's settings (no model is loaded)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import click

from core.settings import Settings
from engine.notify.sender import Sender
from firstline.admin import ServerAdmin, outreach_access
from firstline.context import Context, echo_json_or_lines


class OutboxCalls(Protocol):
    def status(self) -> dict[str, Any]: ...

    def send(self) -> dict[str, list[str]]: ...

    def retry(self, notice_id: str | None) -> dict[str, Any]: ...


class ServerOutbox:
    def __init__(self, admin: ServerAdmin) -> None:
        self.admin = admin

    def status(self) -> dict[str, Any]:
        return self.admin._call("GET", "/notify")

    def send(self) -> dict[str, list[str]]:
        return self.admin._call("POST", "/notify/send", {})

    def retry(self, notice_id: str | None) -> dict[str, Any]:
        return self.admin._call("POST", "/notify/retry", {"id": notice_id})


class LocalOutbox:
    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    def status(self) -> dict[str, Any]:
        return self.sender.status()

    def send(self) -> dict[str, list[str]]:
        return self.sender.send_due().to_json()

    def retry(self, notice_id: str | None) -> dict[str, Any]:
        return self.sender.retry(notice_id)


@contextlib.contextmanager
def outbox_access(settings: Settings) -> Iterator[OutboxCalls]:
    """The running server's outbox when it listens, else the data folder's (closed after); a data folder with no
    database is refused, never created."""
    def remote(admin: ServerAdmin) -> OutboxCalls:
        return ServerOutbox(admin)

    def local(outreach: Any, _store: Any) -> OutboxCalls:
        return LocalOutbox(outreach.sender)

    with outreach_access(settings, remote, local) as calls:
        yield calls


@click.group("notify")
def notify_group() -> None:
    """E-mails telling users a person answered while they were away: the outbox's state, a pass now, failed ones
    again (works while the server runs)."""


@notify_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def status_command(obj: Context, as_json: bool) -> None:
    """Whether e-mail is on, notices per status, and the latest not sent with their last error."""
    with outbox_access(obj.settings()) as outbox:
        found = outbox.status()
    echo_json_or_lines(as_json, found, _status_lines(found))


@notify_group.command("send")
@click.pass_obj
def send_command(obj: Context) -> None:
    """Work through the outbox now (the server does every FIRSTLINE_NOTIFY_INTERVAL_S by itself)."""
    with outbox_access(obj.settings()) as outbox:
        done = outbox.send()
    click.echo(", ".join(f"{outcome} {len(ids)}" for outcome, ids in done.items()))


@notify_group.command("retry")
@click.argument("notice_id", required=False)
@click.pass_obj
def retry_command(obj: Context, notice_id: str | None) -> None:
    """Queue failed notices (or NOTICE_ID) again, with their attempts counted afresh."""
    with outbox_access(obj.settings()) as outbox:
        done = outbox.retry(notice_id)
    requeued = done["requeued"]
    click.echo(f"queued again: {', '.join(requeued)}" if requeued else
               "nothing to queue again" + (f": no failed notice {notice_id!r}" if notice_id else ""))


def _status_lines(found: dict[str, Any]) -> Iterator[str]:
    """What `status` prints: whether e-mail is on, the count per status, then the latest notices not sent."""
    off = " (set FIRSTLINE_SMTP_HOST, FIRSTLINE_SMTP_FROM and FIRSTLINE_PUBLIC_URL to turn it on)"
    yield f"e-mail is {found['email']}" + ("" if found["email"] == "on" else off)
    yield "  ".join(f"{status} {count}" for status, count in found["counts"].items())
    for row in found["recent"]:
        when = f" next try {_when(row['next_at'])}" if row["next_at"] else ""
        yield (f"{row['id']}  {row['kind']:<18} {row['status']:<8} attempts {row['attempts']}{when}  "
               f"user {row['user_id']}" + (f"\n    {row['last_error']}" if row["last_error"] else ""))


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
