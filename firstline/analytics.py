"""`firstline sql QUERY [--param NAME=VALUE ...] [--format table|csv|json]`: an analyst's read-only query on the
event store, through the running server's admin socket (its own database connection: DuckDB admits one writing
process) or, when no server runs, straight on the database file. Either way the same checks and limits apply
(`engine.store.analyst`): one SELECT, no credentials tables, no files, a time limit and a row cap."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from core.errors import InputError
from engine.store.analyst import NOT_UTF8, SIZE_CAP
from firstline.admin import analyst
from firstline.context import Context

MAX_CELL_CHARS = 80  # the table is for reading; csv and json carry every character


class QueryRefused(click.ClickException):
    """A query the console refused or DuckDB could not run: the message on stderr, exit status 2 (the input
    was wrong, as for a bad command line)."""

    exit_code = 2


def _params(values: tuple[str, ...]) -> dict[str, str]:
    """`--param NAME=VALUE` options as {NAME: VALUE} (a leading colon on NAME is dropped); BadParameter for one
    without `=`, without a name, or given twice."""
    found: dict[str, str] = {}
    for value in values:
        name, equals, text = value.partition("=")
        name = name.strip().removeprefix(":")
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, e.g. --param since=2024-01-01; got {value!r}",
                                     param_hint="--param")
        if name in found:
            raise click.BadParameter(f":{name} is given twice", param_hint="--param")
        found[name] = text
    return found


@click.command("sql")
@click.argument("query")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A value for the query's :NAME parameter (repeatable), e.g. --param since=2024-01-01.")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="table: aligned text with a row count; csv, json: the data only.")
@click.pass_obj
def sql_command(obj: Context, query: str, params: tuple[str, ...], output: str) -> None:
    """Run one read-only QUERY on the event store (works while the server runs; QUERY - reads it from standard
    input).

    One select (or explain of one) per call; parameters are written :name. The tables are described in
    docs/schema.md and the metric views in docs/metrics.md. For example:

    \b
        firstline sql "select decision, count(*) from decisions
                       where created_at > :since group by all" --param since=1700000000
    """
    values = _params(params)
    try:
        if query == "-":
            query = read_stdin()
        if not _utf8(query) or not all(_utf8(value) for value in values.values()):
            raise InputError(NOT_UTF8 if not _utf8(query) else "a --param value is not valid UTF-8 text")
        with analyst(obj.settings()) as console:
            result = console.sql(query, values)
    except InputError as error:
        raise QueryRefused(str(error)) from None
    if output == "json":
        click.echo(json.dumps(result, ensure_ascii=False))
    elif output == "csv":
        click.echo(csv_text(result), nl=False)
        if result["truncated"]:
            click.echo(f"firstline: note: only the first {len(result['rows'])} rows ({_truncation(result)})",
                       err=True)
    else:
        for line in table_lines(result):
            click.echo(line)


def read_stdin() -> str:
    """Standard input as text; InputError when its bytes are not UTF-8."""
    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is not None:
            return stream.read().decode("utf-8")
        return sys.stdin.read()
    except UnicodeDecodeError:
        raise InputError(NOT_UTF8) from None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # argv's undecodable bytes arrive as lone surrogates
        return False
    return True


def _truncation(result: dict[str, Any]) -> str:
    """Why the rows stop where they do: the row cap, or the size cap ("truncated at 20 MB")."""
    if result.get("truncated_reason") == SIZE_CAP:
        return f"truncated at {result.get('max_result_mb') or 0:g} MB, the size cap"
    return f"truncated at the row cap of {result['row_cap']}"


def csv_text(result: dict[str, Any]) -> str:
    """The result's header and rows as CSV (the same as `QueryResult.to_csv`, from its JSON form)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(result["columns"])
    writer.writerows([_field(value) for value in row] for row in result["rows"])
    return out.getvalue()


def _field(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")  # one row, one line
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS - 1] + "…"


def _numeric(values: list[object]) -> bool:
    """A column of numbers (and nulls), aligned to the right."""
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)


def table_lines(result: dict[str, Any]) -> list[str]:
    """The result as an aligned text table (numbers to the right), then "(N rows)", saying so when the row
    cap cut it short."""
    columns = [str(c) for c in result["columns"]]
    rows = [[_cell(v) for v in row] for row in result["rows"]]
    numeric = [_numeric([row[i] for row in result["rows"]]) for i in range(len(columns))]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(w) if right else cell.ljust(w)
                         for cell, w, right in zip(cells, widths, numeric, strict=True)).rstrip()

    lines = [line(columns), "  ".join("-" * w for w in widths)] + [line(row) for row in rows]
    count = len(rows)
    noun = "row" if count == 1 else "rows"
    if result["truncated"]:
        lines.append(f"({count} {noun}, {_truncation(result)})")
    else:
        lines.append(f"({count} {noun})")
    return lines
