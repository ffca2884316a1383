"""`firstline handoffs list|show|close`: the problems the automation handed to engineering, on the running server
(through its admin socket, DuckDB admitting one writing process) or, when none runs, on the data folder (no model
is loaded).

Closing one is the named engineer's (`--as NAME`: an engineer's staff account or API token): the note is posted
into the user's conversation in the assistant's voice, and e-mailed to them if they have left the chat.
(`firstline handoff close --fix ACTION --target SERVICE` records the fix that worked, for the learned rules.)"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import click

from core.settings import Settings
from engine.access.tokens import TokenBook
from engine.access.users import UserBook
from engine.desk.handoffs import STATUSES, HandoffDesk, cli_engineer
from engine.store import StaffUsers, Tokens
from firstline.admin import ServerAdmin, outreach_access
from firstline.context import Context, echo_json_or_lines

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what the store makes; anything else names no hand-off


def _handoff_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _ID.fullmatch(value):
        raise click.BadParameter(f"no hand-off with id {value!r}; `firstline handoffs list --status all` lists them",
                                 param_hint="HANDOFF_ID")
    return value


class HandoffCalls(Protocol):
    def listing(self, status: str) -> list[dict[str, Any]]: ...

    def detail(self, handoff_id: str) -> dict[str, Any]: ...

    def close(self, name: str, handoff_id: str, note: str) -> dict[str, Any]: ...


class ServerHandoffs:
    """Hand-offs asked of the running server over its admin socket."""

    def __init__(self, admin: ServerAdmin) -> None:
        self.admin = admin

    def listing(self, status: str) -> list[dict[str, Any]]:
        return self.admin._call("GET", f"/handoffs?{urlencode({'status': status})}")

    def detail(self, handoff_id: str) -> dict[str, Any]:
        return self.admin._call("GET", f"/handoffs/{quote(handoff_id, safe='')}")

    def close(self, name: str, handoff_id: str, note: str) -> dict[str, Any]:
        return self.admin._call("POST", f"/handoffs/{quote(handoff_id, safe='')}/close", {"as": name, "note": note})


class LocalHandoffs:
    """Hand-offs on the data folder, for when no server runs."""

    def __init__(self, desk: HandoffDesk, users: UserBook, tokens: TokenBook) -> None:
        self.desk = desk
        self.users = users
        self.tokens = tokens

    def listing(self, status: str) -> list[dict[str, Any]]:
        return self.desk.listing(status)

    def detail(self, handoff_id: str) -> dict[str, Any]:
        return self.desk.detail(handoff_id)

    def close(self, name: str, handoff_id: str, note: str) -> dict[str, Any]:
        return self.desk.close(handoff_id, cli_engineer(self.users, self.tokens, name), note)


@contextlib.contextmanager
def handoff_access(settings: Settings) -> Iterator[HandoffCalls]:
    """The running server's hand-offs when it listens, else the data folder's (closed after); a data folder with no
    database is refused, never created."""
    def remote(admin: ServerAdmin) -> HandoffCalls:
        return ServerHandoffs(admin)

    def local(outreach: Any, store: Any) -> HandoffCalls:
        return LocalHandoffs(outreach.handoffs, UserBook(StaffUsers(store)), TokenBook(Tokens(store)))

    with outreach_access(settings, remote, local) as calls:
        yield calls


@click.group("handoffs")
def handoffs_group() -> None:
    """Problems handed to engineering: list them, show one with its diagnostics, close one with a note for the user
    (works while the server runs)."""


@handoffs_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), default="open", show_default=True,
              help="open (oldest first), closed (latest first) or all.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API returns (with the diagnostics).")
@click.pass_obj
def list_command(obj: Context, status: str, as_json: bool) -> None:
    """Hand-offs to engineering: id, when, the problem, whose conversation, and for closed ones who and the note."""
    with handoff_access(obj.settings()) as handoffs:
        rows = handoffs.listing(status)
    echo_json_or_lines(as_json, {"handoffs": rows}, _listing_lines(rows, status))


@handoffs_group.command("show")
@click.argument("handoff_id", callback=_handoff_id)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API returns.")
@click.pass_obj
def show_command(obj: Context, handoff_id: str, as_json: bool) -> None:
    """One hand-off with everything the automation found (its diagnostics)."""
    with handoff_access(obj.settings()) as handoffs:
        found = handoffs.detail(handoff_id)
    echo_json_or_lines(as_json, found, _detail_lines(found))


@handoffs_group.command("close")
@click.argument("handoff_id", callback=_handoff_id)
@click.option("--as", "name", required=True, metavar="NAME",
              help="The engineer closing it: an engineer's staff account (firstline user create NAME --role engineer) "
                   "or API token user.")
@click.option("--note", required=True, help="What was found or done, in words the user understands; posted into "
                                            "their conversation and e-mailed if they have left.")
@click.pass_obj
def close_command(obj: Context, handoff_id: str, name: str, note: str) -> None:
    """Close HANDOFF_ID as NAME, telling its user NOTE."""
    with handoff_access(obj.settings()) as handoffs:
        done = handoffs.close(name, handoff_id, note)
    click.echo(f"{done['id']}: {done['status']}. {done['message']}")


def _listing_lines(rows: list[dict[str, Any]], status: str) -> Iterator[str]:
    """What `list` prints: each hand-off's lines, or one line saying there are none."""
    if not rows:
        yield f"no {'' if status == 'all' else status + ' '}hand-offs"
    for row in rows:
        yield from _lines(row)


def _detail_lines(found: dict[str, Any]) -> Iterator[str]:
    """What `show` prints: the hand-off's lines, then its diagnostics as JSON."""
    yield from _lines(found)
    yield json.dumps(found["diagnostics"], indent=2, ensure_ascii=False)


def _lines(row: dict[str, Any]) -> list[str]:
    who = f"user {row['user_id']}, conversation {row['conversation_id']}" if row["conversation_id"] else "the monitor"
    lines = [f"{row['id']}  {_when(row['created_at'])}  {row['playbook'] or '-'}  ({who})", f"    {row['summary']}"]
    if row["status"] == "closed" and row["closed_at"] is not None:
        lines.append(f"    closed by {row['closed_by']} {_when(row['closed_at'])}: {row['note']}")
    elif row["status"] == "closed":  # by `firstline handoff close --fix`: the fix recorded, nobody told
        lines.append(f"    closed by {row['closed_by']} with the fix that worked (no note to the user)")
    return lines


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")
