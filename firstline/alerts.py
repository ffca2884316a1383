"""`firstline alerts dead-letters|dead-letter|incidents`: what the Alertmanager receiver refused (Alertmanager never
retries a 4xx, so these are the only trace) and the alert storms it turned into incidents.

Read on the running server's data without stopping it (through its admin socket and the analysts' read-only
console, as `firstline metrics` does) or straight on the database file when no server runs; a data folder with no
database is refused, never created. The queries are the store's (engine/store/alert_intake.py); the same rows
answer `GET /api/v1/alerts/dead-letters` with an operator's token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from core.errors import InputError
from engine.healing.incidents import listed_services
from engine.store.alert_intake import (
    DEAD_LETTER_SQL,
    DEAD_LETTERS_SQL,
    INCIDENTS_SQL,
    DeadLetter,
    Incident,
    dead_letter_from_row,
    incident_from_row,
)
from firstline.admin import analyst
from firstline.analytics import QueryRefused
from firstline.context import Context, echo_json_or_lines

_PERIOD = re.compile(r"(\d{1,6})([mhdw])")
_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _since(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """`30m`, `24h`, `7d` or `2w` before now, as epoch seconds."""
    found = _PERIOD.fullmatch(value.strip())
    if found is None:
        raise click.BadParameter(f"a period such as 30m, 24h, 7d or 2w, got {value!r}", ctx, param)
    return time.time() - int(found.group(1)) * _SECONDS[found.group(2)]


def _letter_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _ID.fullmatch(value):
        raise click.BadParameter(f"no dead letter with id {value!r}; `firstline alerts dead-letters` lists them",
                                 param_hint="LETTER_ID")
    return value


def _rows(obj: Context, sql: str, params: dict[str, Any]) -> list[list[Any]]:
    with analyst(obj.settings()) as console:
        try:
            return console.sql(sql, params)["rows"]
        except InputError as error:
            raise QueryRefused(str(error)) from None


@click.group("alerts")
def alerts_group() -> None:
    """The Alertmanager receiver: the notifications it refused (dead letters) and the alert storms it made into
    incidents (works while the server runs)."""


@alerts_group.command("dead-letters")
@click.option("--since", default="7d", show_default=True, callback=_since,
              help="How far back: 30m, 24h, 7d, 2w.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, each dead letter as the API gives it "
                                                     "(the body cut to a preview).")
@click.pass_obj
def dead_letters_command(obj: Context, since: float, limit: int, as_json: bool) -> None:
    """Refused alert notifications, newest first: when, from where, the answer and why, the body's start."""
    letters = [dead_letter_from_row(r) for r in _rows(obj, DEAD_LETTERS_SQL, {"since": since, "limit": limit})]
    echo_json_or_lines(as_json, {"dead_letters": [d.to_json() for d in letters]}, _listing_lines(letters))


@alerts_group.command("dead-letter")
@click.argument("letter_id", callback=_letter_id)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON the API gives.")
@click.option("--body", "body_only", is_flag=True, help="Print the kept body alone (to fix it and post it again).")
@click.pass_obj
def dead_letter_command(obj: Context, letter_id: str, as_json: bool, body_only: bool) -> None:
    """One refused notification with all of its body that was kept (to post it again once it is fixed)."""
    rows = _rows(obj, DEAD_LETTER_SQL, {"id": letter_id})
    if not rows:
        raise click.ClickException(f"no dead letter with id {letter_id!r}; `firstline alerts dead-letters` lists them")
    letter = dead_letter_from_row(rows[0])
    if body_only:
        click.echo(letter.body, nl=False)
        return
    echo_json_or_lines(as_json, letter.to_json(), _letter_lines(letter))


@alerts_group.command("incidents")
@click.option("--since", default="7d", show_default=True, callback=_since, help="How far back: 30m, 24h, 7d, 2w.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every incident.")
@click.pass_obj
def incidents_command(obj: Context, since: float, limit: int, as_json: bool) -> None:
    """Alert storms made into one incident each, newest first: alerts, services, root causes, the hand-off."""
    found = [incident_from_row(r) for r in _rows(obj, INCIDENTS_SQL, {"since": since, "limit": limit})]
    echo_json_or_lines(as_json, {"incidents": [i.to_json() for i in found]}, _incident_lines(found))


def _listing_lines(letters: list[DeadLetter]) -> Iterator[str]:
    """What `dead-letters` prints: each letter's lines and the start of its body, or one line saying there are
    none."""
    if not letters:
        yield "no refused alert notifications in that period"
    for letter in letters:
        yield from _lines(letter)
        if letter.body:
            yield f"    {_one_line(letter.body)}"


def _letter_lines(letter: DeadLetter) -> Iterator[str]:
    """What `dead-letter` prints: the letter's lines, then all of its kept body."""
    yield from _lines(letter)
    yield letter.body


def _incident_lines(found: list[Incident]) -> Iterator[str]:
    """What `incidents` prints: three lines an incident, or one line saying there are none."""
    if not found:
        yield "no incidents in that period"
    for incident in found:
        state = f"closed {_when(incident.closed_at)}" if incident.closed_at is not None else "open"
        services = listed_services(incident.services)  # hundreds of odd services printed a megabyte
        yield f"{incident.id}  {_when(incident.opened_at)}  {incident.kind}  {state}"
        yield (f"    {incident.alerts} alerts ({incident.truncated} truncated by Alertmanager, "
               f"{incident.summarised} summarised) across {services}")
        yield (f"    root causes: {', '.join(incident.root_causes) or '-'}; hand-off: "
               f"{incident.handoff_id or 'not yet'} (firstline handoffs show ID)")


def _lines(letter: DeadLetter) -> list[str]:
    who = f"{letter.sender or 'unknown address'}" + (f" ({letter.caller})" if letter.caller else "")
    kept = ("body not kept: the sender was not let in" if not letter.kept_bytes and letter.body_bytes
            else f"{letter.kept_bytes:,} of {letter.body_bytes:,} bytes kept")
    return [f"{letter.id}  {_when(letter.received_at)}  from {who}  {letter.status} {letter.code}  {kept}",
            f"    {letter.reason}"]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:160]


def _when(epoch_s: float | None) -> str:
    return "-" if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
