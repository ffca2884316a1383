"""`firstline metrics [--since 30d] [--json]`: the seed's table of success metrics, each line read from its metric
view (engine/store/metrics/, docs/metrics.md), on the running server's data without stopping it (through its
admin socket) or straight on the database file when no server runs."""

from __future__ import annotations

import datetime as dt
import json
import time

import click

from core.errors import InputError
from engine.analytics.metrics import MetricLine, MetricsReader, parse_since
from firstline.admin import analyst
from firstline.analytics import QueryRefused
from firstline.context import Context


def _since(ctx: click.Context, param: click.Parameter, value: str) -> dt.date:
    try:
        return parse_since(value, dt.datetime.fromtimestamp(time.time(), dt.UTC).date())
    except InputError as error:
        raise click.BadParameter(str(error), ctx, param) from None


@click.command("metrics")
@click.option("--since", default="30d", show_default=True, callback=_since,
              help="The period: days (30d), weeks (4w) or a first day (2026-11-01), in UTC days.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: the period and every line's figures.")
@click.pass_obj
def metrics_command(obj: Context, since: dt.date, as_json: bool) -> None:
    """The seed's success metrics over a period: AI resolution rate, time to resolution, CSAT, proactive
    prevention, escalations and the rest, each line naming the view it comes from."""
    with analyst(obj.settings()) as console:
        try:
            lines = MetricsReader(console.sql).table(since)
        except InputError as error:
            raise QueryRefused(str(error)) from None
    if as_json:
        click.echo(json.dumps({"since": since.isoformat(), "metrics": [line.to_json() for line in lines]},
                              ensure_ascii=False))
        return
    for text in table_lines(since, lines):
        click.echo(text)


def table_lines(since: dt.date, lines: list[MetricLine]) -> list[str]:
    """The table as text: a heading with the period, then `label  figure  [view]` per line, aligned."""
    width = max(len(line.label) for line in lines)
    figure = max(len(line.display) for line in lines)
    return [f"Success metrics since {since.isoformat()} (UTC days; definitions in docs/metrics.md)", ""] + [
        f"{line.label.ljust(width)}  {line.display.ljust(figure)}  [{line.view}]" for line in lines]
