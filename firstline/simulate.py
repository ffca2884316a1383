"""`firstline simulate [--days 30] [--users N] [--seed S] [--messages PATH] [--start DAY] [--json]`: a month of
traffic driven through the real product in simulated time, on the configured data folder (engine/traffic/), then
what the run did, the assumptions behind it, and the seed's metrics table read back from what it wrote."""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from pathlib import Path
from typing import Any

import click

from core.errors import InputError, StoreError
from core.settings import PROJECT_ROOT, Settings
from engine.analytics.metrics import METRIC_ROW_CAP, MetricsReader
from engine.store import DuckDBStore
from engine.traffic.messages import load_phrasings
from engine.traffic.parts import RunSpec, simulated_parts
from engine.traffic.report import SimulationReport
from engine.traffic.simulation import Simulation
from engine.traffic.users import DAY_S
from engine.wiring import Parts, build, load_pack
from firstline.admin import server_listening
from firstline.context import Context
from firstline.metrics import table_lines
from web.admin import admin_socket_path

DEFAULT_MESSAGES = PROJECT_ROOT / "data" / "simulation" / "messages.tsv"
EARLIEST_START = dt.date(2000, 1, 1)  # accounts begin up to 4 years before the run: never before 1970
FOLDER_NOTE = ("the table counts every row of the data folder from the run's first day on, earlier runs' "
               "included, also those dated after this run's end")
IN_USE = "stop the server or set FIRSTLINE_DATA_DIR to another folder"


class Refused(click.ClickException):
    """The data folder is in use (a server answers on it, or another process holds its database): the message on
    stderr, exit status 2, nothing written."""

    exit_code = 2


def _check_start(_ctx: click.Context, _param: click.Parameter, start: dt.datetime | None) -> dt.datetime | None:
    """`--start` is a day from EARLIEST_START to today (UTC), or BadParameter (a usage error, status 2)."""
    if start is None:
        return None
    today = dt.datetime.now(dt.UTC).date()
    if not EARLIEST_START <= start.date() <= today:
        raise click.BadParameter(f"{start.date()} is not a day from {EARLIEST_START} to today ({today}, UTC)")
    return start


@click.command("simulate", short_help="Drive simulated traffic through the real product, then print the metrics.")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True, help="Simulated days to run.")
@click.option("--users", type=click.IntRange(1, 10_000), default=40, show_default=True,
              help="Simulated users (each with an account) who open conversations.")
@click.option("--seed", type=int, default=None,
              help="Seed of every random choice of the run (default: the simulation_seed setting).")
@click.option("--messages", "messages", type=click.Path(path_type=Path), default=None,
              help="A text<TAB>label file of opening messages; labels are categories or playbook ids (default: "
                   "data/simulation/messages.tsv).")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, callback=_check_start,
              help=f"The first simulated day, YYYY-MM-DD (UTC), from {EARLIEST_START} to today; default: DAYS days "
                   "before today, so the run ends today at 00:00 UTC.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the run's figures and the metrics table.")
@click.pass_obj
def simulate_command(obj: Context, days: int, users: int, seed: int | None, messages: Path | None,
                     start: dt.datetime | None, as_json: bool) -> None:
    """Run DAYS of simulated traffic through the real product in simulated time, writing into the configured
    data folder: users chatting with the phrasings of a labelled set, faults injected into the simulated
    infrastructure and healed by the monitor, deciders answering business requests on the desk, users rating
    and confirming fixes (or not). Then print what the run did, its assumptions (docs/simulation.md), and the
    seed's metrics table measured on what it wrote. Run it on a data folder of its own: it stays there, with what
    the assistant learned from it. Refused (status 2) while a server uses the folder."""
    settings = obj.settings()
    spec = RunSpec(days, users, settings.simulation_seed if seed is None else seed, _start_s(start, days))
    _, playbooks = load_pack(settings)  # the pack's labels, before anything slow
    path = messages or DEFAULT_MESSAGES
    try:
        phrasings = load_phrasings(path, {pid: p.category for pid, p in playbooks.items()},
                                   settings.max_message_chars)
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="--messages") from None
    _refuse_if_in_use(settings)

    def progress(day: int, report: SimulationReport) -> None:
        when = dt.datetime.fromtimestamp(spec.start_s + (day - 1) * DAY_S, dt.UTC).date()
        click.echo(f"day {day}/{spec.days} ({when}): {report.conversations} conversations, {report.user_messages} "
                   f"user messages, {report.faults_injected} fault(s) so far", err=True)

    click.echo(f"simulating {spec.days} days from {_day(spec.start_s)} with {spec.users} users, seed {spec.seed}, "
               f"into {settings.data_dir} (loading the model, and building the index if the folder has none)",
               err=True)
    try:
        # progress: a fresh data folder builds the index first (a minute or two), with its progress bars.
        with simulated_parts(settings, spec, functools.partial(build, progress=True)) as (parts, clock):
            report = Simulation(parts, clock, spec, phrasings, progress=progress).run()
            metrics = _metrics_table(parts, spec.start_s)
    except StoreError as error:
        raise Refused(f"{error}") from None
    if as_json:
        click.echo(json.dumps({"simulation": report.to_json(), "messages": str(path), **metrics},
                              ensure_ascii=False, default=str))
        return
    for line in report_lines(report, path):
        click.echo(line)
    click.echo("")
    for line in metrics.get("lines", []):
        click.echo(line)


def _start_s(start: dt.datetime | None, days: int) -> float:
    """The run's first instant (epoch s, a UTC midnight): `start`, or `days` before today. A run may not reach
    past today: BadParameter."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = start.replace(tzinfo=dt.UTC) if start is not None else today - dt.timedelta(days=days)
    if first + dt.timedelta(days=days) > today:
        raise click.BadParameter(f"{first.date()} plus {days} days reaches past today ({today.date()}); the "
                                 "simulated days must be over by today", param_hint="--start")
    return first.timestamp()


def _refuse_if_in_use(settings: Settings) -> None:
    """Refused when a server answers on the folder's admin socket, or another process holds its database."""
    socket = admin_socket_path(settings)
    if server_listening(socket):
        raise Refused(f"a Firstline server is running on {settings.data_dir} (it answers on {socket}); {IN_USE}")
    try:
        DuckDBStore(settings.database_path).close()
    except StoreError as error:
        raise Refused(f"{error}".rstrip(".") + f" ({IN_USE})") from None


def _day(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).date().isoformat()


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def report_lines(report: SimulationReport, messages: Path) -> list[str]:
    """What the run did, then its assumptions, as text."""
    r = report.to_json()
    faults = r["faults"]
    rated = f"{r['ratings']} (mean {r['mean_rating']})" if r["ratings"] else "none"
    lines = [
        f"Simulated {r['days']} days ({_day(r['start_s'])} to {_day(r['end_s'])} UTC), {r['users']} users, "
        f"seed {r['seed']}, messages from {messages}; {r['wall_s']:.0f} s of wall time",
        f"  conversations       {r['conversations']} ({r['returning']} coming back about a problem not solved, "
        f"{r['complaints']} about an injected fault)",
        f"  messages            {r['user_messages']} from users, {r['assistant_replies']} replies from the assistant",
        f"  decisions           {_counts(r['decisions']) or 'none'}",
        f"  how users left      {_counts(r['outcomes']) or 'nobody came'} (the simulation's truth, which the "
        "product does not see)",
        f"  ratings             {rated}",
        f"  faults              {faults['injected']} injected: {faults['healed']} cleared by a remediation, "
        f"{faults['by_hand']} fixed by hand, {faults['open']} still there at the end",
        f"  remediations        {sum(r['remediations'].values())} ({_counts(r['remediations']) or 'none'}), "
        f"{r['remediations_from_chat']} from conversations",
        f"  escalations         {sum(r['escalations'].values())} ({_counts(r['escalations']) or 'none'}); "
        f"{r['questions_asked']} questions to users, {r['questions_answered']} answered; {r['desk_conflicts']} "
        "found expired or decided by the time a decider acted",
    ]
    if r["errors"]:
        lines.append(f"  refused             {r['errors']} turns or desk actions (see the log)")
    lines += ["", "Assumptions (the figures are only as good as these; docs/simulation.md):"]
    lines += [f"  - {line}" for line in report.assumptions]
    return lines


def _metrics_table(parts: Parts, since_s: float) -> dict[str, Any]:
    """The seed's metrics table from `since_s` (epoch s) on, read from the metric views of what the run wrote, at
    the simulated clock's end. The views have no upper bound: rows of earlier runs on the same folder count too,
    even those dated after this run's end (FOLDER_NOTE says so under the table; docs/simulation.md). Returns
    {"since", "metrics": [line JSON], "lines": [text]}.

    The one call site of the analytics room (engine/analytics/metrics.py, firstline/metrics.py), imported here
    so that the simulation's own figures print whatever state that room is in."""
    since = dt.datetime.fromtimestamp(since_s, dt.UTC).date()
    started = time.perf_counter()
    lines = MetricsReader(
        lambda sql, params: parts.analyst.run(sql, params, row_cap=METRIC_ROW_CAP).to_json()).table(since)
    text = [*table_lines(since, lines), f"(read in {time.perf_counter() - started:.1f} s; {FOLDER_NOTE})"]
    return {"since": since.isoformat(), "metrics": [line.to_json() for line in lines], "lines": text}
