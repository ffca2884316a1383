"""The analysts' page in a real headless Chromium (Debian's, driven by Playwright): an analyst signs in, sees every
metric's tile with its chart drawn, and no request of the page leaves 127.0.0.1; opens a tile's SQL in the
console, changes the `:since` parameter, runs it and downloads the result as CSV; both pages fit a phone's width
and a wide screen without scrolling sideways. Screenshots of the tiles and the console go to docs/ when
SCREENSHOTS_DIR names that folder."""

import csv
import io
import os
import random
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from engine.analytics.metrics import METRICS
from tests.conftest import ManualClock, build_parts, make_settings
from tests.web.test_analytics import PASSWORD, seed
from tests.web.test_browser import ARGS, CHROMIUM, _browser_or_skip, wait_in_page
from web.server import BackgroundServer, make_server

# (category, decision, the user's verdict on the fix, their rating), as `seed` takes them
KINDS = [("performance", "resolve", "fixed", 5), ("data_sync", "resolve", "fixed", 4),
         ("authentication", "resolve", None, None), ("performance", "resolve", "not_fixed", 2),
         ("business", "escalate", None, None), ("out_of_scope", "decline", None, None)]
BUSINESS = ("pricing", "hosting_capacity", "policy", "subscription_benefits")
# A function, not an expression: Playwright polls an expression with eval(), which the page's CSP refuses.
CHARTS_DRAWN = ("() => Array.from(document.querySelectorAll('img.chart'))"
                ".every(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().height > 0)")
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def month() -> list[tuple]:
    """A month with something every day, so the charts (and the screenshots in docs/) have lines to draw: one to
    four conversations a day, half an hour apart, of kinds drawn from a generator seeded with a constant, so the
    same on every run (`seed`'s lines)."""
    draw = random.Random(16)
    found = []
    for days_ago in range(1, 31):
        for n in range(draw.choice((1, 2, 2, 3, 4))):
            category, decision, verdict, rating = draw.choices(KINDS, weights=(4, 3, 3, 2, 2, 1))[0]
            if category == "business":
                category = draw.choice(BUSINESS)
            found.append((days_ago + n * 0.02, category, decision, verdict, rating))
    return found


@pytest.fixture
def served(tmp_path, knowledge):
    clock = ManualClock()
    settings = make_settings(tmp_path, port=0, threads=4, monitor_enabled=False)
    parts = build_parts(settings, knowledge=knowledge, clock=clock)
    parts.users.create("ana", "analyst", PASSWORD)
    seed(parts, clock, month())
    server = BackgroundServer(make_server(settings, parts)).start()
    yield server.url, parts
    server.stop()
    parts.close()


def _shots(tmp_path: Path) -> Path:
    folder = os.environ.get("SCREENSHOTS_DIR")
    return Path(folder) if folder else tmp_path


def test_an_analyst_reads_the_tiles_opens_a_query_changes_its_parameter_and_downloads_csv(served, tmp_path):
    sync_playwright = _browser_or_skip()
    url, _ = served
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("request", lambda r: requested.append(r.url))

            assert page.goto(f"{url}/analytics/").status == 403  # not signed in: the sign-in form, with 403
            page.get_by_label("Name").fill("ana")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Metrics since 2023-10-15").wait_for()

            # Every metric has its tile, and every tile's chart is drawn (an SVG of this server, loaded, with a size).
            tiles = page.locator("li.tile")
            assert tiles.count() == len(METRICS)
            assert tiles.locator("h2").all_inner_texts() == [m.label for m in METRICS]
            wait_in_page(page, CHARTS_DRAWN)
            box = tiles.first.locator("img.chart").bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
            assert page.evaluate(NO_SIDEWAYS_SCROLL)
            page.screenshot(path=str(_shots(tmp_path) / "analytics-tiles.png"), full_page=False)

            # The tile's SQL, one click away; then its trend in the console.
            tile = page.locator(f"li.tile#{METRICS[0].key}")
            tile.get_by_text("SQL", exact=True).click()
            assert tile.locator("details pre").first.is_visible()
            assert "metric_ai_resolution" in tile.locator("details pre").first.inner_text()
            tile.get_by_role("link", name="open it in the console").click()
            page.get_by_role("heading", name="SQL console").wait_for()
            assert page.get_by_label("Query").input_value() == METRICS[0].daily_sql
            since = page.get_by_label(":since")
            assert since.input_value() == "2023-10-15"
            page.get_by_role("status").filter(has_text="rows in").wait_for()

            since.fill("2023-11-01")  # a shorter period: the last 13 of the seeded days
            page.get_by_role("button", name="Run").click()
            page.get_by_text("13 rows in").wait_for()
            # The query is in the address (the form sends the text area's lines with CRLF, as HTML says).
            sent = parse_qs(urlparse(page.url).query)
            assert sent["sql"][0].replace("\r\n", "\n") == METRICS[0].daily_sql and sent["since"] == ["2023-11-01"]
            assert page.locator("table.rows tbody tr").count() == 13
            wait_in_page(page, CHARTS_DRAWN)  # the result's chart: days on x, the share on y
            assert page.evaluate(NO_SIDEWAYS_SCROLL)
            page.screenshot(path=str(_shots(tmp_path) / "analytics-console.png"), full_page=True)

            with page.expect_download() as download:
                page.get_by_role("link", name=".csv").click()
            saved = download.value
            assert saved.suggested_filename == "query.csv"
            rows = list(csv.reader(io.StringIO(Path(saved.path()).read_text(encoding="utf-8"))))
            assert rows[0] == ["day", "value"] and rows[1][0] == "2023-11-01" and len(rows) == 14

            # A phone's width: the tiles stack, and the table scrolls in its own box, not the page.
            page.set_viewport_size({"width": 320, "height": 800})
            assert page.evaluate(NO_SIDEWAYS_SCROLL)
            page.goto(f"{url}/analytics/?since=7d")
            wait_in_page(page, CHARTS_DRAWN)
            assert page.evaluate(NO_SIDEWAYS_SCROLL)
            page.set_viewport_size({"width": 1920, "height": 1000})
            assert page.evaluate(NO_SIDEWAYS_SCROLL)
        finally:
            browser.close()
    hosts = {urlparse(r).hostname for r in requested}
    assert requested and hosts == {"127.0.0.1"}, sorted(set(requested))
