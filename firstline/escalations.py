"""`firstline escalations list|show|decide|ask`: the escalation desk from the command line, on the running
server (through its admin socket, DuckDB admitting one writing process) or, when none runs, on the data folder.

A decision from here is the named decider's (`--as NAME`, a decider's staff account or API token), with the
desk's every rule: categories, no self-approval, reasons, approvers, expiry."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import click

from core.settings import Settings
from engine.desk.desk import Decider, Desk, cli_decider
from engine.wiring import Parts, build
from firstline.admin import ServerAdmin, server_listening
from firstline.context import Context, echo_json_or_lines
from web.admin import admin_socket_path

# Ids are what the store makes (letters, digits, - and _); anything else names no request, and is refused here
# with the same words as an unknown id rather than reaching a URL as a path.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _escalation_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _ID.fullmatch(value):
        raise click.BadParameter(f"no escalation with id {value!r}; `firstline escalations list --status all` "
                                 "lists them", param_hint="ESCALATION_ID")
    return value


class DeskCalls(Protocol):
    def queue(self, name: str, status: str, category: str | None) -> list[dict[str, Any]]: ...

    def detail(self, name: str, escalation_id: str) -> dict[str, Any]: ...

    def decide(self, name: str, escalation_id: str, outcome: str, reason: str,
               digest: str | None, not_business: bool = False) -> dict[str, Any]: ...

    def ask(self, name: str, escalation_id: str, question: str, digest: str | None) -> dict[str, Any]: ...


class ServerDesk:
    """The desk asked of the running server over its admin socket."""

    def __init__(self, admin: ServerAdmin) -> None:
        self.admin = admin

    def queue(self, name: str, status: str, category: str | None) -> list[dict[str, Any]]:
        query = urlencode({"as": name, "status": status, **({"category": category} if category else {})})
        return self.admin._call("GET", f"/escalations?{query}")

    def detail(self, name: str, escalation_id: str) -> dict[str, Any]:
        return self.admin._call("GET", f"/escalations/{quote(escalation_id, safe='')}?{urlencode({'as': name})}")

    def decide(self, name: str, escalation_id: str, outcome: str, reason: str, digest: str | None,
               not_business: bool = False) -> dict[str, Any]:
        return self.admin._call("POST", f"/escalations/{quote(escalation_id, safe='')}/decision",
                                {"as": name, "outcome": outcome, "reason": reason, "digest": digest,
                                 "not_business": not_business})

    def ask(self, name: str, escalation_id: str, question: str, digest: str | None) -> dict[str, Any]:
        return self.admin._call("POST", f"/escalations/{quote(escalation_id, safe='')}/question",
                                {"as": name, "question": question, "digest": digest})


class LocalDesk:
    """The desk on the data folder, for when no server runs (builds the parts: a few seconds)."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    def _desk(self) -> Desk:
        assert self.parts.desk is not None  # every build makes one
        return self.parts.desk

    def _decider(self, name: str) -> Decider:
        return cli_decider(self.parts.users, self.parts.tokens, name)

    def queue(self, name: str, status: str, category: str | None) -> list[dict[str, Any]]:
        return self._desk().queue(self._decider(name), status, category)

    def detail(self, name: str, escalation_id: str) -> dict[str, Any]:
        return self._desk().detail(escalation_id, self._decider(name))

    def decide(self, name: str, escalation_id: str, outcome: str, reason: str, digest: str | None,
               not_business: bool = False) -> dict[str, Any]:
        return self._desk().decide(escalation_id, self._decider(name), outcome, reason, digest, not_business)

    def ask(self, name: str, escalation_id: str, question: str, digest: str | None) -> dict[str, Any]:
        return self._desk().ask(escalation_id, self._decider(name), question, digest)


@contextlib.contextmanager
def desk_access(settings: Settings) -> Iterator[DeskCalls]:
    """The running server's desk when it listens, else one built on the data folder (closed after)."""
    path = admin_socket_path(settings)
    if server_listening(path):
        yield ServerDesk(ServerAdmin(path))
        return
    parts = build(settings)  # the model loads only when no server can answer
    try:
        yield LocalDesk(parts)
    finally:
        parts.close()


DECIDER = click.option("--as", "name", required=True, metavar="NAME",
                       help="The decider acting: a decider's staff account (firstline user create) or API token user.")


@click.group("escalations")
def escalations_group() -> None:
    """Business escalations: list the queue, show one with its analysis, decide or ask (works while the server
    runs)."""


@escalations_group.command("list")
@DECIDER
@click.option("--status", default="open", show_default=True,
              help="open (open or asked), decided (approved or rejected), expired, all, or one status.")
@click.option("--category", default=None, help="Only this business category.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API returns.")
@click.pass_obj
def list_command(obj: Context, name: str, status: str, category: str | None, as_json: bool) -> None:
    """The requests NAME may decide, open ones by deadline (soonest first)."""
    with desk_access(obj.settings()) as desk:
        rows = desk.queue(name, status, category)
    echo_json_or_lines(as_json, {"escalations": rows}, _queue_lines(rows, status, category))


@escalations_group.command("show")
@DECIDER
@click.argument("escalation_id", callback=_escalation_id)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API returns.")
@click.pass_obj
def show_command(obj: Context, name: str, escalation_id: str, as_json: bool) -> None:
    """One request: the facts, the options, the recommendation, the precedents and the record."""
    with desk_access(obj.settings()) as desk:
        found = desk.detail(name, escalation_id)
    echo_json_or_lines(as_json, found, _detail_lines(found))


@escalations_group.command("decide")
@DECIDER
@click.argument("escalation_id", callback=_escalation_id)
@click.option("--outcome", required=True, type=click.Choice(["approved", "rejected"]), help="The decision.")
@click.option("--reason", default="", help="Why (required to reject, and to go against the recommendation or the "
              "precedent majority); the user is told it.")
@click.option("--digest", default=None, help="The digest `show` printed: refused if the request changed since.")
@click.option("--not-business", "not_business", is_flag=True,
              help="With --outcome rejected: it was no business decision and should not have come to a person "
                   "(counted as a false escalation).")
@click.pass_obj
def decide_command(obj: Context, name: str, escalation_id: str, outcome: str, reason: str,
                   digest: str | None, not_business: bool) -> None:
    """Approve or reject ESCALATION_ID as NAME; the user is told in their conversation."""
    with desk_access(obj.settings()) as desk:
        done = desk.decide(name, escalation_id, outcome, reason, digest, not_business)
    click.echo(f"{done['id']}: {done['status']}. {done['message']}")


@escalations_group.command("ask")
@DECIDER
@click.argument("escalation_id", callback=_escalation_id)
@click.option("--question", required=True, help="What the user should tell you; posted into their conversation.")
@click.option("--digest", default=None, help="The digest `show` printed: refused if the request changed since.")
@click.pass_obj
def ask_command(obj: Context, name: str, escalation_id: str, question: str, digest: str | None) -> None:
    """Ask the user of ESCALATION_ID for more information."""
    with desk_access(obj.settings()) as desk:
        done = desk.ask(name, escalation_id, question, digest)
    click.echo(f"{done['id']}: {done['status']}. {done['message']}")


def _left(seconds: float) -> str:
    if seconds <= 0:
        return "past its deadline"
    hours = round(seconds / 3600, 1)  # the unit follows what is printed: 47.97 h reads "2.0 days", never "48.0 h"
    return f"{hours / 24:.1f} days left" if hours >= 48 else f"{hours:.1f} h left"


def _who(who: dict[str, Any]) -> str:
    if not who["recorded"]:
        return f"asked by {who['user']} (no account recorded)"
    return (f"asked by {who['user']}: {who['organisation'] or 'account'}, {who['plan']}, {who['seats']} seats, "
            f"customer for {who['tenure']}")


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _queue_lines(rows: list[dict[str, Any]], status: str, category: str | None) -> Iterator[str]:
    """What `list` prints: each request with its time left, words and asker (and its decision once made), or one
    line saying there are none."""
    if not rows:
        yield f"no {status} escalations" + (f" in {category}" if category else "")
    for row in rows:
        left = _left(row["remaining_s"]) if row["remaining_s"] is not None else row["status"]
        warn = f" [{row['warning']} of the time used]" if row["warning"] else ""
        if row["status"] == "asked":
            left += f" for the user to answer (your clock paused at {_left(row['decider_remaining_s'])})"
        yield f"{row['id']}  {row['category']:<21} {left}{warn}\n    {row['request']}\n    {_who(row['who'])}"
        if row.get("decision"):
            decision = row["decision"]
            by = "" if decision["by"] == "system" else f" by {decision['by']}"
            yield f"    {decision['outcome']}{by} {_when(decision['at'])}: {decision['reason']}"


def _detail_lines(found: dict[str, Any]) -> Iterator[str]:
    """What `show` prints (a generator: nothing is formatted under --json)."""
    e, f = found["escalation"], found["facts"]
    lines = [f"{e['topic']} ({e['category']}), {e['status']}" +
             (f", {_left(e['remaining_s'])}" if e["remaining_s"] is not None else ""), _who(e["who"]), "",
             "Facts:"]
    lines += [f"  {m['role']}: {m['text']}" for m in f["messages"]]
    for measure in (f.get("capacity") or {}).get("measures", []):
        days = f"{measure['days_to_limit']} days to the limit" if measure["days_to_limit"] is not None else \
            measure["note"]
        lines.append(f"  {measure['service']} {measure['metric']}: {measure['now']} of {measure['limit']} "
                     f"{measure['unit']}, {measure['growth_per_day']} a day, {days}")
    if f.get("pricing"):
        lines.append(f"  price: {f['pricing']['note']}")
    lines += [f"  policy: {g['text']} ({'applies' if g['applies'] else 'does not apply'})" for g in f["policy"]]
    lines += ["", "Options:"] + [f"  {o['label']}: {o['effect']}" for o in found["options"]]
    rec = found["recommendation"]
    lines += ["", f"Recommendation: {rec['outcome'] or 'none'} ({rec['confidence']:.0%})"]
    lines += [f"  {reason}" for reason in rec["reasons"]]
    lines += ["", f"Precedents: {found['precedents']['line']}"]
    lines += [f"  {c['outcome']}: {c['request']} ({c['decided_by']}, {_when(c['decided_at'])}: {c['reason']})"
              for c in found["precedents"]["cases"]]
    lines += ["", "Record:"] + [f"  {_when(r['at'])} {r['actor']}: {r['kind']} {r['outcome']} {r['reason']}".rstrip()
                                for r in found["record"]]
    lines += ["", f"digest: {found['digest']}"]
    yield from lines
