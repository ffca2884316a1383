"""Charts drawn on the server as SVG with matplotlib: a metric's trend per day, and any console result that has a
date or time column and a number. No JavaScript, no font or script fetched from anywhere: an <img> of our own URL.

The SVG carries no CSS. matplotlib writes `style="fill: ...; stroke: ..."` attributes and a `<style>` element;
both are rewritten as SVG presentation attributes (`fill="..."`), so the image draws the same under the app's
strict Content-Security-Policy (`style-src 'self'`, no `'unsafe-inline'`) whether it is shown in an <img> or
opened on its own.

What a chart shows (`plan`):
- x: the first column of type DATE or TIMESTAMP (the store keeps times as epoch seconds, so a query turns them
  into dates with `metric_day(created_at)` or `to_timestamp(created_at)`);
- y: with a text column named `series` (the metrics' convention), or exactly one text column, the first numeric
  column, one line per distinct text value; otherwise every numeric column, one line each;
- at most `MAX_SERIES` lines (the largest by total), said in the note under the chart.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# Okabe and Ito's palette: told apart with every common colour-vision deficiency (its yellow is left out, too
# light on white).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999999")
MAX_SERIES = len(COLOURS)
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "UHUGEINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL")
TILE_SIZE = (4.8, 2.6)  # inches (the SVG is in points, 72 an inch; the page scales it to the tile's width)
WIDE_SIZE = (9.0, 3.6)
FONT_SIZE = 9  # points

_STYLE_ATTRIBUTE = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"<style[^>]*>\s*\*\{([^}]*)\}\s*</style>\s*", re.DOTALL)
_SVG_OPEN = re.compile(r"<svg\b")


@dataclass(frozen=True)
class Series:
    """One line: its legend label ("" for the only line) and its points (x a date or datetime, y a number or
    None for a gap)."""

    name: str
    points: tuple[tuple[dt.date, float | None], ...]


@dataclass(frozen=True)
class Plan:
    """What a result's chart shows, or why there is none (`why_not`, a sentence for the page)."""

    x: str = ""
    y: str = ""
    series: tuple[Series, ...] = ()
    note: str = ""
    why_not: str = ""


def is_temporal(duckdb_type: str) -> bool:
    return duckdb_type == "DATE" or duckdb_type.startswith("TIMESTAMP")


def is_numeric(duckdb_type: str) -> bool:
    return duckdb_type.split("(")[0] in NUMERIC


def when(value: object) -> dt.date | None:
    """A DATE or TIMESTAMP value as DuckDB returned it, or as ISO text (a result's JSON); None if it is neither."""
    if isinstance(value, dt.date):  # a datetime is a date too
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def number(value: object) -> float | None:
    """A numeric cell as a float; None (a gap in the line) for null, NaN or anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        found = float(value)  # type: ignore[arg-type]  # int, float, Decimal
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) else None


def plan(columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]) -> Plan:
    """Which columns a result's chart draws (see the module's docstring), or why it draws none."""
    x = next((i for i, t in enumerate(types) if is_temporal(t)), None)
    if x is None:
        return Plan(why_not="No chart: the result has no DATE or TIMESTAMP column for the x axis (times are stored "
                            "as epoch seconds; select metric_day(created_at) or to_timestamp(created_at)).")
    numbers = [i for i, t in enumerate(types) if is_numeric(t) and i != x]
    if not numbers:
        return Plan(why_not=f"No chart: the result has no numeric column to draw against {columns[x]}.")
    if not rows:
        return Plan(why_not="No chart: the query returned no rows.")
    texts = [i for i, t in enumerate(types) if t == "VARCHAR"]
    named = [i for i in texts if columns[i] == "series"]
    by = named[0] if named else texts[0] if len(texts) == 1 else None
    if by is not None:
        y = numbers[0]
        groups: dict[str, list[tuple[dt.date, float | None]]] = {}
        for row in rows:
            at = when(row[x])
            if at is not None:
                groups.setdefault(str(row[by]), []).append((at, number(row[y])))
        lines = [Series(name, tuple(points)) for name, points in groups.items()]
        label = columns[y]
    else:
        lines = []
        for y in numbers:
            points = tuple((at, number(row[y])) for row in rows if (at := when(row[x])) is not None)
            lines.append(Series(columns[y] if len(numbers) > 1 else "", points))
        label = columns[numbers[0]] if len(numbers) == 1 else "value"
    kept, note = _largest(lines)
    if by is not None:
        note = " ".join(filter(None, [f"One line per {columns[by]}.", note]))
    return Plan(columns[x], label, tuple(kept), note)


def _largest(lines: list[Series]) -> tuple[list[Series], str]:
    if len(lines) <= MAX_SERIES:
        return lines, ""
    total = {line.name: sum(abs(y) for _, y in line.points if y is not None) for line in lines}
    kept = sorted(lines, key=lambda line: -total[line.name])[:MAX_SERIES]
    order = {line.name: i for i, line in enumerate(lines)}
    kept.sort(key=lambda line: order[line.name])
    return kept, f"The {MAX_SERIES} largest of {len(lines)} lines are drawn."


def daily_series(rows: Iterable[Mapping[str, Any]]) -> tuple[Series, ...]:
    """A metric's trend (`MetricsReader.daily`: {"day", "value", "series"?} rows) as lines: one per `series`
    value, or one unnamed line."""
    groups: dict[str, list[tuple[dt.date, float | None]]] = {}
    for row in rows:
        at = when(row.get("day"))
        if at is not None:
            groups.setdefault(str(row.get("series") or ""), []).append((at, number(row.get("value"))))
    return tuple(Series(name, tuple(points)) for name, points in groups.items())


@dataclass(frozen=True)
class _Matplotlib:
    Figure: Any
    dates: Any
    ticker: Any


@cache
def _matplotlib() -> _Matplotlib:
    """matplotlib, imported and set up on the first chart rather than when the web app starts: its import reads
    its settings and font list from disk. Text stays text in the SVG (`svg.fonttype: none`: the browser draws it
    with its own sans-serif, nothing is fetched), and element ids are the same from one drawing to the next."""
    import matplotlib
    from matplotlib import dates, ticker
    from matplotlib.figure import Figure

    # The SVG writer reads these two from the global settings, and they touch nothing but SVG output. No backend
    # is chosen: a Figure saved as SVG needs none (no display, no GUI toolkit).
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "firstline"})
    return _Matplotlib(Figure, dates, ticker)


def draw(series: Sequence[Series], *, y_label: str, x_label: str = "day", unit: str = "",
         period: tuple[dt.date, dt.date] | None = None, empty: str = "No data for this period.",
         size: tuple[float, float] = TILE_SIZE) -> str:
    """`series` as an SVG line chart (text): time on x, with `period` (first and last day) as its range when
    given; `unit` `share` shows y as a percentage, `count` with whole numbers; a legend when there are several
    lines, one colour each; `empty` written in the middle when there is no point to draw."""
    mpl = _matplotlib()
    mdates, ticker = mpl.dates, mpl.ticker
    # A Figure of its own, never pyplot's global state: requests draw in parallel threads.
    figure = mpl.Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=FONT_SIZE)
    drawn = [s for s in series if any(y is not None for _, y in s.points)]
    if not drawn:
        axes.set_axis_off()
        axes.text(0.5, 0.5, empty, ha="center", va="center", transform=axes.transAxes, color="#555555",
                  fontsize=FONT_SIZE + 1, wrap=True)
        return _svg(figure)
    for colour, line in zip(COLOURS, drawn, strict=False):
        points = sorted(line.points, key=lambda p: _sortable(p[0]))
        axes.plot([p[0] for p in points], [math.nan if p[1] is None else p[1] for p in points], color=colour,
                  linewidth=1.8, marker="o", markersize=2.5, label=line.name or y_label)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if period is not None and period[0] < period[1]:  # the whole period, even days with nothing recorded
        axes.set_xlim(*period)
    if unit == "share":
        axes.yaxis.set_major_formatter(ticker.PercentFormatter(xmax=1.0, decimals=0))
    elif unit == "count":
        axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    if all(y >= 0 for line in drawn for _, y in line.points if y is not None):
        axes.set_ylim(bottom=0)  # from zero, so a flat or small change does not fill the chart's height
    axes.set_xlabel(x_label, fontsize=FONT_SIZE)
    axes.set_ylabel({"share": "share of the whole", "minutes": "minutes"}.get(unit, y_label), fontsize=FONT_SIZE)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    if len(drawn) > 1:
        columns = 2 if len(drawn) == 4 else min(len(drawn), 3)  # two rows of two rather than three and one
        figure.legend(loc="outside lower center", ncols=columns, frameon=False, fontsize=FONT_SIZE)
    return _svg(figure)


def _sortable(at: dt.date) -> tuple[dt.date, float]:
    # Dates and datetimes do not compare with each other; a column holds one kind, but be safe.
    if isinstance(at, dt.datetime):
        return at.date(), at.timestamp() % 86400
    return at, 0.0


def _svg(figure: Any) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return without_css(out.getvalue())


def without_css(svg: str) -> str:
    """`svg` with every `style="a: b; c: d"` attribute written as attributes `a="b" c="d"`, and matplotlib's one
    `<style>` rule for every element (`*{...}`) moved onto the root <svg>, whose children inherit it."""
    default = _STYLE_ELEMENT.search(svg)
    if default is not None:
        svg = svg[:default.start()] + svg[default.end():]
        svg = _SVG_OPEN.sub("<svg" + _attributes(default.group(1)), svg, count=1)
    return _STYLE_ATTRIBUTE.sub(lambda found: _attributes(found.group(1)), svg)


def _attributes(declarations: str) -> str:
    found = []
    for declaration in declarations.split(";"):
        name, colon, value = declaration.partition(":")
        if colon and name.strip():
            found.append(f' {name.strip()}="{value.strip()}"')
    return "".join(found)
