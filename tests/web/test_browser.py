"""The chat page in a real headless Chromium (Debian's, driven by Playwright): a fix, a clarification, an
escalation decided by a person, a <script> shown as text, and delete my history."""

import os
import shutil
import time

import pytest

from engine.access.tokens import Role
from tests.conftest import build_parts, make_settings
from web.server import BackgroundServer, make_server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = "playwright is not installed" if sync_playwright is None else (
        f"{CHROMIUM} is missing" if not shutil.which(CHROMIUM) else None)
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; .ci/run installs it")
        pytest.skip(f"{missing} (pip install -e '.[dev]'; apt-get install chromium)")
    return sync_playwright


def wait_in_page(frame, predicate: str, timeout_s: float = 30.0) -> None:
    """Wait until the JavaScript function `predicate` ("() => ...") returns true in `frame` (a page or a frame).

    Playwright's wait_for_function compiles its predicate with `new Function` inside the page whenever the first
    check is false, and our pages' CSP (script-src 'self', no 'unsafe-eval') refuses that: the wait then fails or
    passes depending on timing. `evaluate` of a function goes through the DevTools protocol, which CSP does not
    govern, so polling it here is exact on every run."""
    deadline = time.monotonic() + timeout_s
    while not frame.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s:.0f} s: {predicate}")
        time.sleep(0.05)


@pytest.fixture
def served(tmp_path, knowledge):
    settings = make_settings(tmp_path, port=0, threads=4, simulation_faults=["slow_queries"])
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    yield server.url, parts
    server.stop()
    parts.close()


def test_a_whole_conversation_in_a_real_browser(served):
    sync_playwright = _browser_or_skip()
    url, parts = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(url)
            log = page.locator("#log")
            log.locator("li.assistant").first.wait_for()
            assert page.locator("#log").get_attribute("aria-live") == "polite"
            assert page.get_by_label("Your message").is_visible()

            def say(text, expect):
                count = log.locator("li.assistant").count()
                page.get_by_label("Your message").fill(text)
                page.keyboard.press("Enter")
                log.locator("li.assistant").nth(count).wait_for()
                wait_in_page(page, "() => document.getElementById('send').disabled === false")
                assert expect in log.inner_text()

            # A fix, checked with the user, then rated with a button.
            say("The dashboard is loading really slowly", "database queries")
            page.get_by_role("button", name="Yes, it works").click()
            page.get_by_role("button", name="5").wait_for()
            assert "glad" in log.inner_text().lower() or "happy" in log.inner_text().lower() or \
                "brilliant" in log.inner_text().lower()
            page.locator("li.assistant details").first.click()
            assert "kill_slow_queries" in log.inner_text()  # the technical detail, one click away
            for width in (1280, 390, 320):  # opened, it wraps: the page never scrolls sideways
                page.set_viewport_size({"width": width, "height": 800})
                assert page.evaluate("document.documentElement.scrollWidth") <= width, width
            page.set_viewport_size({"width": 1280, "height": 800})
            icon = page.locator("link[rel=icon]").get_attribute("href")
            assert page.request.get(url + icon).ok  # a favicon, served from the app itself
            page.get_by_role("button", name="5").click()
            page.get_by_text("feedback", exact=False).or_(page.get_by_text("Thanks, that helps")).first.wait_for()

            # A clarification, answered by choosing.
            say("something is wrong with my account", "?")
            locked = parts.dialogue.knowledge.playbooks["account_locked_after_attempts"].title
            page.get_by_role("button", name=locked).click()
            page.get_by_role("button", name="Partly").wait_for()
            assert "sign-in lock" in log.inner_text().lower()

            # A business request: a person decides, and the page shows it when it lands.
            say("Can we get a non-profit discount?", "team")
            escalation = parts.dialogue.escalations.find(["open"])[0]
            decider = parts.tokens.create("dana", Role.DECIDER)
            response = page.request.post(f"{url}/api/v1/escalations/{escalation.id}/decision",
                                         headers={"Authorization": f"Bearer {decider.token}"},
                                         data={"outcome": "approved", "note": "Half price from next month."})
            assert response.ok
            log.locator("li.team").wait_for()
            assert "Half price from next month." in log.locator("li.team").inner_text()

            # Script typed by a user is shown as text, never run.
            say("<script>window.pwned = 1</script><img src=x onerror=\"window.pwned=2\">", "")
            assert page.evaluate("window.pwned") is None
            assert "<script>window.pwned = 1</script>" in log.locator("li.user").last.inner_text()

            # History survives a reload; deleting it empties it.
            page.reload()
            log.locator("li.user").first.wait_for()
            assert "The dashboard is loading really slowly" in log.inner_text()
            page.on("dialog", lambda dialog: dialog.accept())
            page.get_by_role("button", name="Delete my history").click()
            page.get_by_text("Your history has been deleted.").wait_for()
            assert log.locator("li.user").count() == 0
            assert parts.store.execute("SELECT count(*) FROM messages WHERE text LIKE '%dashboard%'")[0][0] == 0
        finally:
            browser.close()


def test_a_curator_signs_in_reviews_a_learned_rule_and_approves_it(served):
    sync_playwright = _browser_or_skip()
    url, parts = served
    from engine.learning.ledger import Fix

    fix = Fix("dashboard_slow", "kill_slow_queries", "database", "database", "slow_queries")
    parts.dialogue.learning.ledger.record_resolution(fix, "conv-1", "ann")
    rule = parts.dialogue.learning.ledger.record_resolution(fix, "conv-2", "bob")
    token = parts.tokens.create("cora", Role.CURATOR).token
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{url}/curator/")
            page.get_by_label("token", exact=False).fill(token)
            page.keyboard.press("Enter")
            page.get_by_role("heading", name="Learned rules").wait_for()
            page.get_by_role("link", name=rule.name).click()
            page.get_by_role("heading", name="Example traces").wait_for()
            assert "conv-1, conv-2" in page.inner_text("main")  # its provenance
            page.get_by_role("button", name="approve").click()
            page.get_by_role("status").wait_for()
            assert "is active" in page.get_by_role("status").inner_text()
            assert parts.dialogue.learning.ledger.latest(rule.name).status == "active"
        finally:
            browser.close()
