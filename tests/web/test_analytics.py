"""The analysts' page over HTTP: sign-in with a password and 403 for everyone else (401 on the API without a
token), the metrics as tiles with an SVG chart, their SQL and their .csv/.json twins, the SQL console with its
query and parameters in the URL, and every refusal of the console as a clear message: 400 on the page and in the
error shape on the API."""

import csv
import io
import re
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from core.taxonomy import BUSINESS
from engine.access.tokens import Role
from engine.analytics.metrics import METRICS
from tests.conftest import ManualClock, build_parts, make_settings
from web import create_app

PASSWORD = "correct horse battery"
DAY = 86400.0
ROW_CAP = 50
TREND = METRICS[0]  # the AI resolution rate: its trend per day has a row for each of six days of the seeded week


# (days ago, category, decision, the user's verdict on the fix, their rating)
WEEK = [(1, "performance", "resolve", "fixed", 5), (2, "authentication", "resolve", "fixed", 3),
        (3, "performance", "resolve", None, None), (4, "out_of_scope", "decline", None, None),
        (5, "pricing", "escalate", None, None), (8, "policy", "escalate", None, None)]


def seed(parts, clock, days=tuple(WEEK)) -> None:
    """Conversations written straight into the store's tables, one a line of `days`. The default, a small week:
    three technical conversations the assistant answered (two confirmed by the user and rated, one left at the
    answer, so assumed resolved a day later), one declined, and two business requests on the desk (pricing, still
    open; policy, approved)."""
    now = clock()
    statements = []
    for i, (days_ago, category, decision, verdict, rating) in enumerate(days):
        at = now - days_ago * DAY
        conversation, user = f"c{i}", f"u{i}"
        statements += [
            ("INSERT INTO conversations VALUES (?, ?, 'web', ?)", (conversation, user, at)),
            ("INSERT INTO messages VALUES (?, ?, ?, 'user', 'help', ?)", (f"m{i}", conversation, user, at)),
            ("INSERT INTO messages VALUES (?, ?, ?, 'assistant', 'done', ?)", (f"a{i}", conversation, user, at + 2)),
            ("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, 'answer', 0.9, 'v1', false, 'done', '', 12.0, ?)",
             (f"d{i}", f"m{i}", conversation, user, decision, category,
              None if decision == "decline" else f"{category}_playbook", at + 1)),
        ]
        if verdict:
            statements.append(("INSERT INTO user_verdicts VALUES (?, ?, ?, ?, ?, ?)",
                               (f"v{i}", conversation, user, f"{category}_playbook", verdict, at + 600)))
        if rating:
            statements.append(("INSERT INTO feedback VALUES (?, ?, ?, ?, '', ?)",
                               (f"f{i}", conversation, user, rating, at + 700)))
        if decision == "escalate":
            status = "open" if category == "pricing" else "approved"
            statements.append(("INSERT INTO escalations VALUES (?, ?, ?, ?, ?, 'a request', ?, ?, ?, ?, NULL)",
                               (f"e{i}", f"d{i}", conversation, user, category, status, at + 1, at + 2 * DAY,
                                2 * DAY)))
    parts.store.transaction(statements)


def _app(tmp_path, knowledge, **overrides):
    clock = ManualClock()
    settings = make_settings(tmp_path, monitor_enabled=False, **overrides)
    parts = build_parts(settings, knowledge=knowledge, clock=clock)
    parts.users.create("ana", "analyst", PASSWORD)
    parts.users.create("dana", "decider", PASSWORD)
    seed(parts, clock)
    app = create_app(settings, parts)
    app.testing = True
    return app, parts


@pytest.fixture
def app(tmp_path, knowledge):
    app, parts = _app(tmp_path, knowledge, analyst_row_cap=ROW_CAP)
    yield app
    parts.close()


@pytest.fixture
def analyst(app):
    client, response = sign_in(app)
    assert response.status_code == 302
    return client


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


def sign_in(app, name="ana", password=PASSWORD, page="/analytics/login"):
    client = app.test_client()
    csrf = csrf_of(client.get(page).data)
    response = client.post(page, data={"name": name, "password": password, "csrf": csrf})
    return client, response


def token(app, name="ana", role=Role.ANALYST) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.extensions['firstline'].tokens.create(name, role).token}"}


def console(client, sql, **params):
    return client.get(f"/analytics/console?{urlencode({'sql': sql, **params})}")


def text_of(response) -> str:
    return response.get_data(as_text=True)


# -- who may -----------------------------------------------------------------------------------------------------


def test_only_analysts_sign_in_and_everyone_else_gets_403(app, caplog):
    pages = ["/analytics/", "/analytics/console?sql=select+1", "/analytics/metrics.json",
             f"/analytics/metrics/{TREND.key}.csv", f"/analytics/metrics/{TREND.key}/chart.svg",
             "/analytics/console.csv?sql=select+1"]
    anonymous = app.test_client()
    _, wrong = sign_in(app, password="not the password at all")
    assert wrong.status_code == 401 and "do not open the analysts" in text_of(wrong)
    decider, refused = sign_in(app, "dana")
    assert refused.status_code == 401 and "refused analytics sign-in for 'dana'" in caplog.text
    desk, opened = sign_in(app, "dana", page="/desk/login")
    assert opened.status_code == 302  # a decider with a live desk session is still not an analyst
    for client in (anonymous, decider, desk):
        for page in pages:
            response = client.get(page)
            assert response.status_code == 403 and "Sign in" in text_of(response), page
        assert client.post("/analytics/logout", data={}).status_code == 403
    client, accepted = sign_in(app)
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/analytics/"
    assert client.get("/analytics/").status_code == 200
    assert client.get("/desk/").status_code == 403  # and an analyst is not a decider


def test_signing_out_needs_the_csrf_value_and_ends_the_session(analyst):
    page = analyst.get("/analytics/").data
    assert analyst.post("/analytics/logout", data={}).status_code == 400  # no CSRF value: nothing happens
    assert analyst.get("/analytics/").status_code == 200
    assert analyst.post("/analytics/logout", data={"csrf": csrf_of(page)}).status_code == 302
    assert analyst.get("/analytics/").status_code == 403


def test_the_api_wants_an_analysts_token(app):
    client = app.test_client()
    calls = [("GET", "/api/v1/analytics/metrics", None), ("GET", f"/api/v1/analytics/metrics/{TREND.key}/daily", None),
             ("POST", "/api/v1/analytics/query", {"sql": "select 1 as one"})]
    decider = token(app, "dana", Role.DECIDER)
    for method, url, body in calls:
        missing = client.open(url, method=method, json=body)
        assert missing.status_code == 401 and "analyst's token" in missing.get_json()["error"]["message"], url
        assert client.open(url, method=method, json=body, headers=decider).status_code == 403, url
    analyst = token(app)
    for method, url, body in calls:
        assert client.open(url, method=method, json=body, headers=analyst).status_code == 200, url
    # A token outlives nothing: once its owner's staff account is disabled, it reads nothing.
    app.extensions["firstline"].users.disable("ana")
    assert client.get("/api/v1/analytics/metrics", headers=analyst).status_code == 403


# -- the tiles ---------------------------------------------------------------------------------------------------


def test_the_tiles_show_every_metric_with_its_figure_chart_sql_and_twins(analyst):
    response = analyst.get("/analytics/")
    page = text_of(response)
    assert response.status_code == 200
    assert "Metrics since 2023-10-15" in page  # 30 days back from the clock's 2023-11-14 (UTC)
    assert '<option value="30d" selected>' in page
    for m in METRICS:
        assert m.label in page, m.key
        assert f'src="/analytics/metrics/{m.key}/chart.svg?since=30d"' in page
        assert f'href="/analytics/metrics/{m.key}.csv?since=30d"' in page
        assert f'href="/analytics/metrics/{m.key}.json?since=30d"' in page
    assert page.count('<details class="sql"><summary>SQL</summary>') == len(METRICS)
    # The AI resolution rate: two confirmed and one assumed, of five decided (the two business requests count, the
    # declined message does not)...
    assert "60.0% (3 of 5)" in page
    assert "1 raised: 0 approved, 0 rejected, 0 expired, 1 waiting" in page  # ...and the pricing request waiting
    # "Open in the console" carries the metric's SQL and the period's first day.
    links = re.findall(r'class="open" href="([^"]+)"', page)
    assert len(links) == len(METRICS)
    query = parse_qs(urlparse(links[0].replace("&amp;", "&")).query)
    assert query == {"sql": [TREND.sql], "since": ["2023-10-15"]}
    assert "Metrics since 2023-11-07" in text_of(analyst.get("/analytics/?since=7d"))


def test_a_period_that_is_not_one_is_a_clear_400(analyst, app):
    response = analyst.get("/analytics/?since=yesterday")
    assert response.status_code == 400 and "takes a number of days such as 30d" in text_of(response)
    refused = app.test_client().get("/api/v1/analytics/metrics?since=yesterday", headers=token(app))
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_since"


def test_a_tiles_data_comes_as_csv_and_json(analyst, app):
    data = analyst.get(f"/analytics/metrics/{TREND.key}.csv?since=30d")
    assert data.status_code == 200 and data.mimetype == "text/csv"
    assert "attachment" in data.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text_of(data))))
    assert rows[0] == ["day", "value"] and len(rows) == 7  # the six days with a conversation
    described = analyst.get(f"/analytics/metrics/{TREND.key}.json?since=30d").get_json()
    assert described["metric"]["sql"] == TREND.sql and described["since"] == "2023-10-15"
    assert described["lines"][0]["display"].startswith("60.0%") and len(described["daily"]) == 6
    table = analyst.get("/analytics/metrics.json?since=90d").get_json()
    assert table["since"] == "2023-08-16" and {line["key"] for line in table["metrics"]} == {m.key for m in METRICS}
    whole = list(csv.reader(io.StringIO(text_of(analyst.get("/analytics/metrics.csv")))))
    assert whole[0] == ["key", "label", "view", "value", "display"]
    # The JSON twins on the API, with an analyst's token.
    headers = token(app)
    client = app.test_client()
    listed = client.get("/api/v1/analytics/metrics?since=30d", headers=headers).get_json()
    assert listed["since"] == "2023-10-15" and listed["metrics"] == table["metrics"]
    daily = client.get("/api/v1/analytics/metrics/escalations_by_category/daily", headers=headers).get_json()
    assert {row["series"] for row in daily["daily"]} == set(BUSINESS)  # every category, a quiet day as 0
    assert {r["value"] for r in daily["daily"] if r["series"] == "hosting_capacity"} == {0}
    unknown = client.get("/api/v1/analytics/metrics/nope/daily", headers=headers)
    assert unknown.status_code == 404 and "the metrics are" in unknown.get_json()["error"]["message"]
    assert analyst.get("/analytics/metrics/nope.csv").status_code == 404


def test_charts_are_svg_with_no_css_one_line_per_category_and_an_empty_state(analyst):
    for m in METRICS:
        chart = analyst.get(f"/analytics/metrics/{m.key}/chart.svg?since=30d")
        svg = text_of(chart)
        assert chart.status_code == 200 and chart.mimetype == "image/svg+xml", m.key
        assert "<svg" in svg and "style" not in svg  # draws under the strict CSP, in an <img> or opened alone
        assert "<script" not in svg and not re.search(r'href="(?!#)', svg)  # nothing to run, nothing to fetch
    by_category = text_of(analyst.get("/analytics/metrics/escalations_by_category/chart.svg?since=30d"))
    assert ">pricing<" in by_category and ">policy<" in by_category  # the legend, one colour each
    trend = text_of(analyst.get(f"/analytics/metrics/{TREND.key}/chart.svg?since=30d"))
    assert ">day<" in trend and "%<" in trend  # dates on x, a share in per cent on y
    empty = text_of(analyst.get("/analytics/metrics/proactive_prevention_rate/chart.svg?since=30d"))
    assert "No data since 2023-10-15." in empty


# -- the console -------------------------------------------------------------------------------------------------


def test_the_console_runs_the_query_in_the_url_with_its_parameters(analyst):
    response = console(analyst, TREND.daily_sql, since="2023-11-10")
    page = text_of(response)
    assert response.status_code == 200
    assert re.search(r'<label for="param-1">:since</label>\s*<input id="param-1" name="since" value="2023-11-10"',
                     page)
    assert "4 rows in" in page and " ms" in page  # the days from 2023-11-10 on with a conversation
    assert "<td>2023-11-11</td>" in page and "<td>2023-11-12</td>" in page
    # The result has a date and a number: a chart of it, from the same query string; and the downloads.
    query_string = urlencode({"sql": TREND.daily_sql, "since": "2023-11-10"}).replace("&", "&amp;")
    assert f'src="/analytics/console/chart.svg?{query_string}"' in page
    assert f'href="/analytics/console.csv?{query_string}"' in page
    assert f'href="/analytics/console.json?{query_string}"' in page
    chart = analyst.get(f"/analytics/console/chart.svg?{urlencode({'sql': TREND.daily_sql, 'since': '2023-11-10'})}")
    assert chart.mimetype == "image/svg+xml" and ">value<" in text_of(chart)
    # Without a date column there is no chart, and the page says why.
    headline = text_of(console(analyst, TREND.sql, since="2023-11-10"))
    assert "No chart: the result has no DATE or TIMESTAMP column" in headline


def test_a_new_parameter_gets_its_field_before_the_query_runs(analyst):
    response = console(analyst, "SELECT count(*) AS n FROM decisions WHERE category = :category")
    page = text_of(response)
    assert response.status_code == 200 and "Fill in :category, then run the query." in page
    assert 'name="category" value=""' in page and "<table" not in page
    ran = text_of(console(analyst, "SELECT count(*) AS n FROM decisions WHERE category = :category",
                          category="performance"))
    assert "1 row in" in ran and "<td>2</td>" in ran


def test_the_console_shows_every_value_as_text_never_as_markup(analyst):
    page = text_of(console(analyst, "SELECT '<script>alert(1)</script>' AS \"<b>x</b>\", NULL AS nothing"))
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and '<td class="null">null</td>' in page


def test_the_console_downloads_csv_and_json(analyst):
    query = urlencode({"sql": TREND.daily_sql, "since": "2023-11-01"})
    data = analyst.get(f"/analytics/console.csv?{query}")
    assert data.status_code == 200 and data.mimetype == "text/csv"
    assert data.headers["Content-Disposition"] == 'attachment; filename="query.csv"'
    rows = list(csv.reader(io.StringIO(text_of(data))))
    assert rows[0] == ["day", "value"] and rows[1][0] == "2023-11-06" and len(rows) == 7
    body = analyst.get(f"/analytics/console.json?{query}").get_json()
    assert list(body) == ["sql", "params", "columns", "types", "rows", "truncated", "row_cap", "elapsed_ms",
                          "truncated_reason", "max_result_mb"]
    assert body["params"] == {"since": "2023-11-01"} and body["types"] == ["DATE", "DOUBLE"]
    assert body["rows"][0][0] == "2023-11-06" and body["truncated"] is False and body["row_cap"] == ROW_CAP
    refused = analyst.get(f"/analytics/console.json?{urlencode({'sql': 'DROP TABLE decisions'})}")
    assert refused.status_code == 400 and set(refused.get_json()["error"]) == {"code", "message"}


def test_the_api_runs_a_query_with_named_parameters(app):
    client = app.test_client()
    answer = client.post("/api/v1/analytics/query", headers=token(app), json={
        "sql": "SELECT category, count(*) AS n FROM decisions WHERE created_at >= :from GROUP BY ALL ORDER BY 1",
        "params": {"from": 0}})
    body = answer.get_json()
    assert answer.status_code == 200 and list(body) == ["columns", "types", "rows", "truncated", "row_cap",
                                                        "elapsed_ms", "truncated_reason", "max_result_mb"]
    assert body["columns"] == ["category", "n"] and ["performance", 2] in body["rows"]


REFUSALS = [
    ("SELECT 1; SELECT 2", "one statement per query"),
    ("DELETE FROM decisions", "only SELECT queries run here"),
    ("INSERT INTO feedback VALUES ('x', 'c0', 'u0', 5, '', 0)", "only SELECT queries run here"),
    ("UPDATE escalations SET status = 'approved'", "only SELECT queries run here"),
    ("CREATE TABLE loot AS SELECT * FROM messages", "only SELECT queries run here"),
    ("COPY decisions TO '/tmp/decisions.csv'", "this is a COPY statement"),
    ("ATTACH '/tmp/other.duckdb' AS other", "this is an ATTACH statement"),
    ("INSTALL httpfs", "this is an INSTALL statement"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() is not open to analysts"),
    ("SET threads = 1", "this is a SET statement"),
    ("SELECT * FROM staff_users", "holds credentials"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSALS, ids=[sql.split()[0] + str(i) for i, (sql, _) in
                                                             enumerate(REFUSALS)])
def test_the_console_refuses_with_a_clear_message_on_the_page_and_the_api(app, analyst, sql, message):
    page = console(analyst, sql)
    assert page.status_code == 400, sql
    shown = re.search(r'<div role="alert" class="error">(.*?)</div>', text_of(page), re.DOTALL).group(1)
    assert "The query did not run." in shown and message in shown.replace("&#39;", "'")
    answer = app.test_client().post("/api/v1/analytics/query", headers=token(app), json={"sql": sql})
    assert answer.status_code == 400 and message in answer.get_json()["error"]["message"]
    count = app.test_client().post("/api/v1/analytics/query", headers=token(app),
                                   json={"sql": "SELECT count(*) FROM escalations WHERE status = 'approved'"})
    assert count.get_json()["rows"] == [[1]]  # nothing was written


def test_a_syntax_error_points_at_its_position_and_a_wrong_type_says_so(app, analyst):
    page = console(analyst, "SELECT day, valeu FROM metric_csat WHERE")
    assert page.status_code == 400
    shown = text_of(page)
    assert "syntax error at or near &#34;WHERE&#34;" in shown
    # Where: the line, and carets under the place, in a block that keeps the spacing.
    assert re.search(r"<pre>[^<]*\nLINE 1: SELECT day, valeu FROM metric_csat WHERE\n {43}\^{5}</pre>", shown)
    wrong_type = console(analyst, "SELECT * FROM decisions WHERE created_at > CAST(:after AS DOUBLE)",
                         after="last tuesday")
    assert wrong_type.status_code == 400 and "Could not convert string &#39;last tuesday&#39;" in text_of(wrong_type)
    api = app.test_client()
    headers = token(app)
    for body, message in [({"sql": "SELEC 1"}, "LINE 1: SELEC 1"),
                          ({"sql": "SELECT CAST(:n AS INTEGER)", "params": {"n": "ten"}}, "Could not convert"),
                          ({"sql": "SELECT :n", "params": {"n": [1]}}, "must be text, a number"),
                          ({"sql": "SELECT :n"}, "needs a value for :n"),
                          ({"sql": "SELECT 1", "params": [1]}, "`params` must be an object"),
                          ({"query": "SELECT 1"}, "`sql` is required")]:
        answer = api.post("/api/v1/analytics/query", headers=headers, json=body)
        assert answer.status_code == 400, body
        error = answer.get_json()["error"]
        assert set(error) == {"code", "message"} and message in error["message"], body


def test_a_parameter_named_sql_cannot_live_in_the_url(analyst):
    page = console(analyst, "SELECT :sql AS x")
    assert page.status_code == 400 and "cannot be named :sql" in text_of(page)


def test_a_long_query_is_stopped_and_a_big_result_is_cut_and_says_so(tmp_path, knowledge):
    app, parts = _app(tmp_path, knowledge, analyst_time_limit_s=0.3, analyst_row_cap=5)
    try:
        client, _ = sign_in(app)
        slow = "SELECT sum(a.range * b.range) AS s FROM range(100000000) a, range(100000) b"
        page = console(client, slow)
        assert page.status_code == 400
        assert "The query was stopped." in text_of(page) and "ran past the 0.3 s limit" in text_of(page)
        answer = app.test_client().post("/api/v1/analytics/query", headers=token(app), json={"sql": slow})
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "query_timeout"
        big = text_of(console(client, "SELECT range AS n FROM range(100)"))
        assert "5 rows in" in big and "truncated at the row cap of 5" in big and big.count("<tr>") == 6
        cut = app.test_client().post("/api/v1/analytics/query", headers=token(app),
                                     json={"sql": "SELECT range AS n FROM range(100)"}).get_json()
        assert cut["truncated"] is True and len(cut["rows"]) == 5 and cut["row_cap"] == 5
    finally:
        parts.close()


def test_the_api_is_in_the_openapi_document(app):
    paths = app.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/analytics/metrics", "/api/v1/analytics/metrics/{key}/daily",
            "/api/v1/analytics/query"} <= set(paths)
    assert paths["/api/v1/analytics/query"]["post"]["security"] == [{"bearer": []}]


# -- the limits, and errors in the shape each address promises ---------------------------------------------------


def test_a_deep_query_a_system_view_and_a_value_that_is_not_finite_are_400_never_500(app, analyst):
    headers = token(app)
    api = app.test_client()
    for sql, message in [("SELECT " + " || ".join(["'a'"] * 900), "nested too deeply to check; simplify it"),
                         ("SELECT " + "+".join(["1"] * 900), "nested too deeply to check; simplify it"),
                         ("SELECT * FROM pragma_database_list", "pragma_database_list shows the server's files"),
                         ("SELECT current_setting('temp_directory')", "current_setting() shows the server's"),
                         ("SELECT * FROM duckdb_settings()", "duckdb_settings() shows the server's"),
                         ("SELECT * FROM pg_settings", "pg_settings shows the server's"),
                         ("SELECT path FROM duckdb_databases()", "duckdb_databases() shows the server's")]:
        answer = api.post("/api/v1/analytics/query", headers=headers, json={"sql": sql})
        assert answer.status_code == 400 and message in answer.get_json()["error"]["message"], sql
        page = console(analyst, sql)
        assert page.status_code == 400 and message in text_of(page).replace("&#39;", "'"), sql
    for raw in ('{"sql": "SELECT :d AS d", "params": {"d": NaN}}', '{"sql": "SELECT :d AS d", "params": {"d": 1e400}}',
                '{"sql": "SELECT :d AS d", "params": {"d": -Infinity}}'):
        answer = api.post("/api/v1/analytics/query", headers=headers, data=raw, content_type="application/json")
        assert answer.status_code == 400, raw
        assert answer.get_json()["error"]["message"] == "the value of :d must be a finite number"
    schema = api.post("/api/v1/analytics/query", headers=headers, json={
        "sql": "SELECT count(*) FROM information_schema.columns, duckdb_tables(), duckdb_views() LIMIT 1"})
    assert schema.status_code == 200


def test_the_json_and_csv_twins_answer_errors_in_their_own_shape(analyst):
    for url, status, code in [("/analytics/metrics.json?since=abc", 400, "invalid_since"),
                              (f"/analytics/metrics/{TREND.key}.json?since=abc", 400, "invalid_since"),
                              ("/analytics/metrics/nope.json", 404, "not_found"),
                              ("/analytics/console.json?" + urlencode({"sql": "SELECT 1; SELECT 2"}), 400, None),
                              ("/analytics/console.json?" + urlencode({"sql": "SELECT :sql"}), 400, None),
                              ("/analytics/nothing-here.json", 404, None)]:
        answer = analyst.get(url)
        assert answer.status_code == status and answer.mimetype == "application/json", url
        error = answer.get_json()["error"]
        assert set(error) == {"code", "message"} and "<html" not in text_of(answer), url
        assert code is None or error["code"] == code, url
    refused = analyst.get("/analytics/console.json?" + urlencode({"sql": "SELECT 1; SELECT 2"}))
    assert refused.get_json()["error"]["message"] == "one statement per query: found 2"
    for url, status, message in [("/analytics/metrics.csv?since=abc", 400, "takes a number of days"),
                                 ("/analytics/metrics/nope.csv", 404, "the metrics are"),
                                 ("/analytics/console.csv?" + urlencode({"sql": "DROP TABLE decisions"}), 400,
                                  "only SELECT queries run here")]:
        answer = analyst.get(url)
        assert answer.status_code == status and answer.mimetype == "text/plain", url
        assert message in text_of(answer) and "<" not in text_of(answer), url
        assert "attachment" not in answer.headers.get("Content-Disposition", ""), url
    assert "<html" in text_of(analyst.get("/analytics/?since=abc")).lower()  # the pages stay pages


def test_a_busy_console_answers_429_on_the_page_the_twins_and_the_api(app, analyst):
    queries = app.extensions["firstline"].analyst
    queries.queue_wait_s = 0.05
    for _ in range(queries.concurrency):  # the test holds every slot: as many queries are running
        queries.slots.acquire()
    try:
        message = f"the console is already running {queries.concurrency} queries; try again in a moment"
        page = console(analyst, "SELECT 1 AS one")
        assert page.status_code == 429 and message in text_of(page) and page.headers["Retry-After"] == "1"
        twin = analyst.get("/analytics/console.json?" + urlencode({"sql": "SELECT 1 AS one"}))
        assert twin.status_code == 429 and twin.get_json()["error"] == {"code": "rate_limited", "message": message}
        assert twin.headers["Retry-After"] == "1"
        download = analyst.get("/analytics/console.csv?" + urlencode({"sql": "SELECT 1 AS one"}))
        assert download.status_code == 429 and download.mimetype == "text/plain" and message in text_of(download)
        api = app.test_client().post("/api/v1/analytics/query", headers=token(app), json={"sql": "SELECT 1"})
        assert api.status_code == 429 and api.get_json()["error"]["code"] == "rate_limited"
    finally:
        for _ in range(queries.concurrency):
            queries.slots.release()
    assert console(analyst, "SELECT 1 AS one").status_code == 200


def test_a_result_past_the_size_cap_says_so_on_the_page_and_in_json(tmp_path, knowledge):
    app, parts = _app(tmp_path, knowledge, analyst_max_result_mb=0.01, analyst_row_cap=3)
    try:
        client, _ = sign_in(app)
        sql = "SELECT range AS n, repeat('x', 4000) AS x FROM range(10)"
        page = text_of(console(client, sql))
        assert "2 rows in" in page and '<strong class="truncated">truncated at 0.01 MB</strong>' in page
        assert "row cap" not in page
        body = app.test_client().post("/api/v1/analytics/query", headers=token(app), json={"sql": sql}).get_json()
        assert body["truncated"] is True and body["truncated_reason"] == "size" and body["max_result_mb"] == 0.01
        assert len(body["rows"]) == 2 and body["row_cap"] == 3
        capped = app.test_client().post("/api/v1/analytics/query", headers=token(app),
                                        json={"sql": "SELECT * FROM range(5)"}).get_json()
        assert capped["truncated_reason"] == "row cap" and len(capped["rows"]) == 3
        assert "truncated at the row cap of 3" in text_of(console(client, "SELECT * FROM range(5)"))
    finally:
        parts.close()


def test_a_refusal_wraps_on_a_narrow_screen(app):
    css = app.test_client().get("/static/analytics.css")
    rule = re.search(r"\.error pre \{([^}]*)\}", text_of(css)).group(1)
    css.close()
    assert "white-space: pre-wrap" in rule and "overflow-wrap: anywhere" in rule
