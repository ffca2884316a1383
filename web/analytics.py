"""The analysts' page (/analytics/): the seed's metrics as tiles, each with its trend per day drawn as SVG on the
server (web/charts.py), its SQL one click away, a link that opens that SQL in the console, and .csv/.json twins;
and a read-only SQL console whose query lives in the URL (so it can be bookmarked and shared), with its `:name`
parameters as form fields, the result as a table and a chart, and downloads.

Sign-in is the desk's (web/staff.py): a staff user of role analyst, a session held on the server, the CSRF value
on every form. The JSON twins under /api/v1/analytics want an analyst's API token (401 without one, 403 with
another role's). Every query goes through `AnalystQueries` (engine/store/analyst.py), which runs one read-only
SELECT or refuses with an InputError saying why; a refusal is shown on the page in a box (400), or leaves the API
in the one error shape (400).

URLs (`since` is 7d, 30d, 90d, any `Nd`/`Nw`, or a date; 30d when absent):
- GET /analytics/                              the tiles; ?since=
- GET /analytics/metrics.json|.csv             every figure of the seed's table
- GET /analytics/metrics/<key>.json|.csv       one metric: its definition, figure(s) and trend per day
- GET /analytics/metrics/<key>/chart.svg       the tile's chart
- GET /analytics/console?sql=...&<param>=...   the console (a GET form); .csv, .json and /console/chart.svg take
                                               the same query string
- GET /api/v1/analytics/metrics, GET /api/v1/analytics/metrics/<key>/daily, POST /api/v1/analytics/query
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request, url_for

from core.errors import ForbiddenError, InputError, UnauthorizedError
from engine.access.tokens import Role
from engine.analytics.metrics import (
    METRIC_ROW_CAP,
    METRICS,
    Metric,
    MetricLine,
    MetricsReader,
    metric,
    parse_since,
)
from engine.store.analyst import AnalystQueries, QueryResult, json_value
from engine.wiring import Parts
from web.api import API, json_body, string_field
from web.charts import TILE_SIZE, WIDE_SIZE, Plan, daily_series, draw, plan
from web.errors import error_body, error_headers
from web.staff import add_sign_in_pages, check_csrf, csrf_token, signed_in

PERIODS = ("7d", "30d", "90d")
DEFAULT_SINCE = "30d"
SIGN_IN_NEEDED = "This page is for analysts: sign in with an analyst's name and password."
SVG = "image/svg+xml"


def _parts() -> Parts:
    return current_app.extensions["firstline"]


def queries() -> AnalystQueries:
    return _parts().analyst


def _today() -> dt.date:
    """Today in UTC by the store's clock (the metric views' days are UTC days)."""
    return dt.datetime.fromtimestamp(queries().clock(), dt.UTC).date()


def _since(text: str | None) -> tuple[str, dt.date]:
    """(the period as asked, its first day); InputError (code invalid_since) for one that is not a period."""
    asked = (text or "").strip() or DEFAULT_SINCE
    return asked, parse_since(asked, _today())


def reader() -> MetricsReader:
    """The seed's table, read through the console's checks (the tile, the console and the CLI run one query)."""
    return MetricsReader(lambda sql, params: queries().run(sql, params, row_cap=METRIC_ROW_CAP).to_json())


def analyst_named(name: str) -> str:
    """`name`, when a token's user may still act as an analyst: ForbiddenError when their staff account is
    disabled or is another role's (a token does not outlive its owner's account)."""
    staff = _parts().users.get(name)
    if staff is not None and (staff.disabled or staff.role is not Role.ANALYST):
        raise ForbiddenError(f"{name}'s staff account is disabled or is not an analyst's; it reads nothing here")
    return name


@dataclass(frozen=True)
class Tile:
    """One metric on the page: its definition and its figure(s) (one per business category for escalations)."""

    metric: Metric
    lines: list[MetricLine]


@dataclass(frozen=True)
class Console:
    """The console's query as the URL carries it: the SQL, its `:name` parameters in order and the values given
    for them (text, as typed)."""

    sql: str
    names: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [name for name in self.names if name not in self.values]

    def query_string(self) -> str:
        """The URL's query: `sql=...&name=value...` (what the page, its downloads and its chart share)."""
        return urlencode([("sql", self.sql), *((name, self.values.get(name, "")) for name in self.names)])

    def run(self) -> QueryResult:
        return queries().run(self.sql, self.values)


def console_from(args: Mapping[str, str]) -> Console:
    """The console's query from the URL's arguments; InputError for a parameter the URL cannot carry."""
    sql = args.get("sql", "").replace("\r\n", "\n")  # a form's textarea sends CRLF; keep links and files alike
    if not sql.strip():
        return Console(sql)
    names = queries().parameters(sql)
    if "sql" in names:
        raise InputError("the console's URL carries the query itself as `sql`, so a parameter cannot be named :sql; "
                         "rename it (e.g. :sql_text)", code="invalid_parameter")
    return Console(sql, names, {name: args[name] for name in names if name in args})


def console_url(sql: str, **values: str) -> str:
    """The console with `sql` and its parameters' values filled in."""
    return f"{url_for('analytics.console')}?{urlencode([('sql', sql), *values.items()])}"


def shown(value: object) -> str | None:
    """A cell as the page shows it: None for null (styled apart), JSON for lists, structs and booleans, else
    text."""
    found = json_value(value)
    if found is None:
        return None
    if isinstance(found, list | dict | bool):
        return json.dumps(found, ensure_ascii=False)
    return str(found)


def _download(text: str, mimetype: str, filename: str) -> Response:
    return Response(text, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _svg(text: str) -> Response:
    # Drawn from live data: a reload must draw it again.
    return Response(text, mimetype=SVG, headers={"Cache-Control": "no-store"})


def _metric_chart(m: Metric, since: dt.date) -> str:
    """The tile's chart: the metric's value each UTC day from `since` to today (SVG text)."""
    rows = reader().daily(m.key, since)
    y_label = "requests raised" if m.key == "escalations_by_category" else m.unit
    return draw(daily_series(rows), y_label=y_label, unit=m.unit, period=(since, _today()), size=TILE_SIZE,
                empty=f"No data since {since.isoformat()}.")


def _metric_json(m: Metric, since: dt.date) -> dict[str, Any]:
    lines = [line.to_json() for line in reader().table(since) if line.key == m.key]
    return {"metric": {"key": m.key, "label": m.label, "view": m.view, "unit": m.unit, "about": m.about,
                       "sql": m.sql, "daily_sql": m.daily_sql},
            "since": since.isoformat(), "lines": lines, "daily": reader().daily(m.key, since)}


def make_analytics_blueprint() -> Blueprint:
    """The analysts' pages under /analytics (see the module's docstring)."""
    pages = Blueprint("analytics", __name__, url_prefix="/analytics")

    @pages.before_request
    def guard():
        if request.endpoint in ("analytics.login", "analytics.sign_in"):
            return None
        staff = signed_in(Role.ANALYST)
        if staff is None:
            if request.method == "POST":  # a form from an ended session (or another role's) changes nothing
                raise ForbiddenError("your analyst session has ended or you are not an analyst; sign in again at "
                                     "/analytics/login")
            return render_template("analytics_login.html", error=SIGN_IN_NEEDED, csrf=csrf_token(),
                                   back=request.full_path), 403
        g.analyst = staff.user_id
        if request.method == "POST":
            check_csrf()
        return None

    add_sign_in_pages(pages, Role.ANALYST, "analytics_login.html", "analytics.tiles",
                      "That name and password do not open the analysts' page: check them, or ask an administrator "
                      "for an analyst account (firstline user create NAME --role analyst).")

    @pages.get("/")
    def tiles():
        try:
            asked, since = _since(request.args.get("since"))
        except InputError as error:
            return _tiles_page(request.args.get("since", ""), None, [], str(error)), _status(error)
        lines = reader().table(since)
        found = [Tile(m, [line for line in lines if line.key == m.key]) for m in METRICS]
        return _tiles_page(asked, since, found, None)

    @pages.get("/metrics.json")
    def table_json():
        _, since = _since(request.args.get("since"))
        return jsonify({"since": since.isoformat(), "metrics": [line.to_json() for line in reader().table(since)]})

    @pages.get("/metrics.csv")
    def table_csv():
        _, since = _since(request.args.get("since"))
        rows = [[line.key, line.label, line.view, line.value, line.display] for line in reader().table(since)]
        return _download(_csv(["key", "label", "view", "value", "display"], rows), "text/csv",
                         f"metrics-since-{since.isoformat()}.csv")

    @pages.get("/metrics/<key>.json")
    def metric_json(key: str):
        _, since = _since(request.args.get("since"))
        return jsonify(_metric_json(metric(key), since))

    @pages.get("/metrics/<key>.csv")
    def metric_csv(key: str):
        m = metric(key)
        _, since = _since(request.args.get("since"))
        result = queries().run(m.daily_sql, {"since": since.isoformat()}, row_cap=METRIC_ROW_CAP)
        return _download(result.to_csv(), "text/csv", f"{m.key}-daily-since-{since.isoformat()}.csv")

    @pages.get("/metrics/<key>/chart.svg")
    def metric_chart(key: str):
        m = metric(key)
        _, since = _since(request.args.get("since"))
        return _svg(_metric_chart(m, since))

    @pages.get("/console")
    def console():
        try:
            query = console_from(request.args)
        except InputError as error:
            return _console_page(Console(request.args.get("sql", "")), error=str(error)), _status(error)
        if not query.sql.strip() or query.missing:
            notice = (f"Fill in {', '.join(':' + n for n in query.missing)}, then run the query."
                      if query.sql.strip() else None)
            return _console_page(query, notice=notice)
        try:
            result = query.run()
        except InputError as error:  # 400; 429 (and Retry-After) when the console is busy
            return (_console_page(query, error=str(error), timed_out=error.code == "query_timeout"),
                    _status(error), error_headers(error))
        return _console_page(query, result=result)

    @pages.get("/console.csv")
    def console_csv():
        result = console_from(request.args).run()
        return _download(result.to_csv(), "text/csv", "query.csv")

    @pages.get("/console.json")
    def console_json():
        # A refusal leaves through the app's error handler, which answers every /analytics/*.json in the one error
        # shape (and every .csv as plain text), never with a page.
        query = console_from(request.args)
        result = query.run()
        return jsonify({"sql": query.sql, "params": query.values, **result.to_json()})

    @pages.get("/console/chart.svg")
    def console_chart():
        result = console_from(request.args).run()
        chosen = plan(result.columns, result.types, result.rows)
        if chosen.why_not:
            return _svg(draw([], y_label="", empty=chosen.why_not.split(":")[0] + ".", size=WIDE_SIZE))
        return _svg(draw(chosen.series, y_label=chosen.y, x_label=chosen.x, size=WIDE_SIZE))

    return pages


def _status(error: InputError) -> int:
    """The HTTP status of a refusal shown on a page: 400, or 429 when the console is busy."""
    return error_body(error)[1]


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def _tiles_page(asked: str, since: dt.date | None, found: list[Tile], error: str | None) -> str:
    periods = list(PERIODS) + ([asked] if asked and asked not in PERIODS else [])
    return render_template("analytics.html", analyst=g.analyst, csrf=csrf_token(), tiles=found, since=asked,
                           since_day=since.isoformat() if since else "", periods=periods, error=error,
                           console_url=console_url)


def _console_page(query: Console, result: QueryResult | None = None, error: str | None = None,
                  notice: str | None = None, timed_out: bool = False) -> str:
    chosen: Plan | None = plan(result.columns, result.types, result.rows) if result is not None else None
    rows = [[shown(value) for value in row] for row in result.rows] if result is not None else []
    examples = [(m.label, console_url(m.daily_sql, since=(_today() - dt.timedelta(days=30)).isoformat()))
                for m in METRICS]
    return render_template("analytics_console.html", analyst=g.analyst, csrf=csrf_token(), query=query,
                           result=result, rows=rows, chart=chosen, error=error, notice=notice, timed_out=timed_out,
                           query_string=query.query_string() if query.sql.strip() else "", examples=examples)


def make_analytics_api() -> Blueprint:
    """The JSON twins, for an analyst's API token (`Authorization: Bearer`)."""
    api = Blueprint("analytics_api", __name__, url_prefix=f"{API}/analytics")

    @api.before_request
    def need_an_analyst():
        _analyst()

    @api.get("/metrics")
    def metrics():
        _, since = _since(request.args.get("since"))
        return jsonify({"since": since.isoformat(), "metrics": [line.to_json() for line in reader().table(since)]})

    @api.get("/metrics/<key>/daily")
    def daily(key: str):
        m = metric(key)
        _, since = _since(request.args.get("since"))
        return jsonify({"key": m.key, "label": m.label, "unit": m.unit, "since": since.isoformat(),
                        "daily": reader().daily(m.key, since)})

    @api.post("/query")
    def query():
        body = json_body()
        sql = string_field(body, "sql") or ""
        params = body.get("params")
        if params is not None and not isinstance(params, dict):
            raise InputError("`params` must be an object of name -> value, e.g. {\"since\": \"2024-01-01\"}",
                             code="invalid_body")
        return jsonify(queries().run(sql, params).to_json())

    return api


def _analyst() -> str:
    if g.channel != "api":  # no token at all (a chat cookie is not one): 401, as every endpoint wanting one answers
        raise UnauthorizedError("the analytics endpoints want an analyst's token: send it as Authorization: Bearer "
                                "TOKEN (firstline token create --user NAME --role analyst), or use the page at "
                                "/analytics/")
    if g.role is not Role.ANALYST:
        raise ForbiddenError("only analysts may do this: send an analyst's API token as Authorization: Bearer TOKEN "
                             "(firstline token create --user NAME --role analyst), or use the page at /analytics/")
    return analyst_named(g.user_id)
