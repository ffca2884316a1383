"""The seed's success metrics, read and presented: each line is a query of `engine.store.metric_queries` on a
metric view (engine/store/metrics/*.sql, docs/metrics.md). `MetricsReader` runs them through any runner that
speaks the console's result shape (the store's `AnalystQueries.run`, or the running server's `/sql` over its
socket), so `firstline metrics` prints the same figures whether or not a server holds the database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from core.taxonomy import BUSINESS
from engine.store.metric_queries import BY_KEY, METRICS, Metric, metric

__all__ = ["BY_KEY", "METRICS", "Metric", "MetricLine", "MetricsReader", "metric", "parse_since", "records"]

# (sql, params) -> the console's result as JSON: {"columns": [...], "rows": [[...], ...], ...}
Runner = Callable[[str, Mapping[str, object]], Mapping[str, Any]]

SINCE = re.compile(r"(?P<n>[0-9]+)(?P<unit>[dw])")  # ASCII digits only: full-width ones are no period
MAX_DAYS = 3650
# Rows a metric's own query may return whatever the analysts' row cap: a per-day series of every business
# category over the longest period (10 years x 4) fits.
METRIC_ROW_CAP = 50_000


def parse_since(text: str, today: dt.date) -> dt.date:
    """The first UTC day of a period: `30d` is `today` minus 30 days (so the period holds those 30 days and
    today), `4w` the same in weeks, or an ISO date (`2026-11-01`). InputError, saying what is accepted, for
    anything else, a period of more than ten years, or a date after `today`."""
    cleaned = text.strip().lower()
    found = SINCE.fullmatch(cleaned)
    if found:
        days = int(found["n"]) * (7 if found["unit"] == "w" else 1)
        if not 1 <= days <= MAX_DAYS:
            raise InputError(f"the period to measure since must cover 1 to {MAX_DAYS} days; got {text!r}",
                             code="invalid_since")
        return today - dt.timedelta(days=days)
    try:
        day = dt.date.fromisoformat(cleaned) if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", cleaned) else None
        if day is None:
            raise ValueError(cleaned)
    except ValueError:
        raise InputError(f"the period to measure since takes a number of days such as 30d, of weeks such as 4w, "
                         f"or a date such as {today - dt.timedelta(days=30)}; got {text!r}",
                         code="invalid_since") from None
    if day > today:
        raise InputError(f"the period to measure since starts in the future ({text}; today is {today})",
                         code="invalid_since")
    if (today - day).days > MAX_DAYS:
        raise InputError(f"the period to measure since must cover 1 to {MAX_DAYS} days; got {text!r}",
                         code="invalid_since")
    return day


def records(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A console result's rows as dicts by column name."""
    columns = list(result["columns"])
    return [dict(zip(columns, row, strict=True)) for row in result["rows"]]


@dataclass(frozen=True)
class MetricLine:
    """One figure of the table: the metric, its value (None with no data) and its parts, and how it reads."""

    key: str
    label: str
    view: str
    value: float | None
    display: str
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "view": self.view, "value": self.value,
                "display": self.display, **self.detail}


class MetricsReader:
    """The seed's table over a period, from the metric views, through `run` (see `Runner`)."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def table(self, since: dt.date) -> list[MetricLine]:
        """Every line of the seed's table from `since` (a UTC day) on; escalations give one line per business
        category. InputError from the runner passes through."""
        lines: list[MetricLine] = []
        for m in METRICS:
            rows = records(_whole(self.run(m.sql, {"since": since.isoformat()}), m))
            lines += _category_lines(m, rows) if m.key == "escalations_by_category" else [_line(m, rows[0])]
        return lines

    def daily(self, key: str, since: dt.date) -> list[dict[str, Any]]:
        """The metric's trend: [{"day": "YYYY-MM-DD", "value": float | None, "series"?: str}, ...]."""
        found = metric(key)
        return records(_whole(self.run(found.daily_sql, {"since": since.isoformat()}), found))


def _whole(result: Mapping[str, Any], m: Metric) -> Mapping[str, Any]:
    """`result`, unless a limit of the console cut it: a figure from part of the rows would be wrong, silently."""
    if result.get("truncated"):
        limit = (f"the size cap of {result.get('max_result_mb')} MB; raise analyst_max_result_mb"
                 if result.get("truncated_reason") == "size" else
                 f"the row cap {result.get('row_cap')}; raise analyst_row_cap")
        raise InputError(f"{m.label}: the query's result was cut by {limit} to read this metric", code="truncated")
    return result


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _line(m: Metric, row: Mapping[str, Any]) -> MetricLine:
    value = _number(row.get("value"))
    detail = {k: (None if v is None else int(v) if float(v).is_integer() else float(v))
              for k, v in row.items() if k != "value"}
    return MetricLine(m.key, m.label, m.view, value, _display(m, value, detail), detail)


def _display(m: Metric, value: float | None, detail: Mapping[str, Any]) -> str:
    if m.unit == "share":
        if value is None:
            return "no data (nothing to divide by yet)"
        pending = f"; {detail['pending']} pending" if detail.get("pending") else ""
        return f"{value:.1%} ({detail['numerator']} of {detail['denominator']}{pending})"
    if m.unit == "minutes":
        return "no data" if value is None else f"{value:.1f} min (over {detail['denominator']} resolved)"
    if m.key == "handoffs_to_engineering":
        return (f"{value:.0f} ({detail['from_conversations']} from conversations, {detail['from_monitor']} from "
                f"the monitor)")
    if m.key == "learned_rules":
        return f"{value:.0f} promoted, {detail['retired']} retired ({detail['proposed']} proposed)"
    return "no data" if value is None else f"{value:g}"


def _category_lines(m: Metric, rows: Sequence[Mapping[str, Any]]) -> list[MetricLine]:
    found = {str(r["category"]): r for r in rows}
    lines = []
    for category in sorted(set(BUSINESS) | set(found)):
        row = {k: int(v or 0) for k, v in found.get(category, {}).items() if k != "category"}
        raised = row.get("raised", 0)
        followed = row.get("agreed", 0) + row.get("disagreed", 0)
        display = (f"{raised} raised: {row.get('approved', 0)} approved, {row.get('rejected', 0)} rejected, "
                   f"{row.get('expired', 0)} expired, {row.get('waiting', 0)} waiting"
                   + (f", {row['withdrawn']} withdrawn by the user" if row.get("withdrawn") else "")
                   + (f"; {row.get('agreed', 0)} of {followed} decided as recommended" if followed else ""))
        lines.append(MetricLine(m.key, f"{m.label}: {category}", m.view, float(raised), display,
                                {"category": category, **row}))
    return lines
