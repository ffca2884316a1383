"""The escalation desk in a real headless Chromium (Debian's, driven by Playwright), beside the user's chat: a
user asks for a non-profit discount; a decider signs in, finds it at the top of the queue with its countdown,
reads the facts before the recommendation and the precedents with their count, is refused a rejection without
a reason, rejects with one; the user's chat shows the answer; another request expires and its user is told.
Screenshots of the queue and the request go to docs/ when SCREENSHOTS_DIR names that folder."""

import os
from pathlib import Path

import pytest

from engine.desk.desk import Decider
from engine.store.decisions import Account
from tests.conftest import ManualClock, build_parts, make_settings
from tests.web.test_browser import ARGS, CHROMIUM, _browser_or_skip
from web.server import BackgroundServer, make_server

PASSWORD = "correct horse battery"


@pytest.fixture
def served(tmp_path, knowledge):
    clock = ManualClock()
    settings = make_settings(tmp_path, port=0, threads=4, monitor_enabled=False)
    parts = build_parts(settings, knowledge=knowledge, clock=clock)
    parts.users.create("dana", "decider", PASSWORD)
    server = BackgroundServer(make_server(settings, parts)).start()
    yield server.url, parts, clock
    server.stop()
    parts.close()


def _shots(tmp_path: Path) -> Path:
    folder = os.environ.get("SCREENSHOTS_DIR")
    return Path(folder) if folder else tmp_path


def test_a_decider_rejects_a_discount_with_a_reason_and_the_user_hears_it(served, tmp_path):
    sync_playwright = _browser_or_skip()
    url, parts, clock = served
    # One earlier decision of the same kind, so the request has a precedent to show.
    past = parts.dialogue.turn("Do you have discounts for charities?", "p1")
    (old,) = [r for r in parts.dialogue.escalations.find(["open"]) if r.conversation_id == past.conversation_id]
    parts.desk.decide(old.id, Decider("omar"), "approved", "Charity discount of 20% for a year.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            user = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            user.set_default_timeout(30_000)
            user.goto(url)
            log = user.locator("#log")
            log.locator("li.assistant").first.wait_for()
            user.get_by_label("Your message").fill("We're a small registered charity. Can we get a non-profit "
                                                   "discount on the Team plan?")
            user.keyboard.press("Enter")
            log.locator("li.assistant").nth(1).wait_for()
            asked = parts.dialogue.escalations.find(["open"])[0]  # the host app recorded the asker's account
            parts.assistant.store.set_account(asked.user_id, Account("Team", 12, "admin", "Hope for Paws",
                                                                     clock.now - 800 * 86400, 180.0))
            clock.advance(1800)  # the decider comes to it half an hour later

            desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            desk.set_default_timeout(30_000)
            assert desk.goto(f"{url}/desk/").status == 403  # not signed in: the sign-in form, with 403
            _sign_in(desk, url)
            first = desk.locator("table.queue tbody tr").first
            assert "registered charity" in first.inner_text()
            assert "left" in first.locator(".countdown").inner_text()
            desk.screenshot(path=str(_shots(tmp_path) / "desk-queue.png"), full_page=True)

            first.get_by_role("link").click()
            desk.get_by_role("heading", name="1. The facts").wait_for()
            headings = desk.locator("section h2").all_inner_texts()
            assert headings[:4] == ["1. The facts", "2. The options", "3. The recommendation", "4. Precedents"]
            assert not desk.locator("#recommendation details").evaluate("d => d.open")  # collapsed by default
            assert desk.locator(".precedent-line").inner_text() == "1 of 1 similar requests were approved."
            desk.screenshot(path=str(_shots(tmp_path) / "desk-request.png"), full_page=True)

            desk.get_by_role("radio", name="Reject").check()
            assert desk.locator("#consistency").is_visible()  # the consistency flag: against the precedent
            desk.get_by_role("button", name="Record decision").click()  # the browser asks for the reason first
            assert desk.evaluate("document.getElementById('reason').validity.valueMissing")
            desk.evaluate("document.getElementById('reason').required = false")  # the server refuses as well
            desk.get_by_role("button", name="Record decision").click()
            desk.get_by_role("alert").wait_for()
            assert "a reason is required" in desk.get_by_role("alert").inner_text()
            desk.get_by_role("radio", name="Reject").check()
            desk.get_by_label("Reason", exact=False).fill("Our charity discount needs a charity number; please "
                                                          "ask again with yours.")
            desk.get_by_role("button", name="Record decision").click()
            desk.get_by_role("status").first.wait_for()
            assert "rejected" in desk.get_by_role("status").first.inner_text()

            log.locator("li.team").wait_for()  # the chat looks now and then while a person decides
            assert "please ask again with yours" in log.locator("li.team").inner_text()
            user.get_by_role("button", name="Yes").wait_for()  # "does that answer your question?"

            # Another request nobody answers expires: closed, not approved, and its user is told.
            other = browser.new_context().new_page()
            other.set_default_timeout(30_000)
            other.goto(url)
            other_log = other.locator("#log")
            other_log.locator("li.assistant").first.wait_for()
            other.get_by_label("Your message").fill("Could you extend our trial by another two weeks?")
            other.keyboard.press("Enter")
            other_log.locator("li.assistant").nth(1).wait_for()
            clock.advance(parts.desk.deadlines_s["subscription_benefits"] + 1)
            assert len(parts.desk.expire_due()) == 1
            other.get_by_text("closed without approval", exact=False).wait_for()
            _sign_in(desk, url)  # two days later: the idle session has ended
            desk.goto(f"{url}/desk/?status=expired")
            assert "extend our trial" in desk.locator("table.queue").inner_text()
        finally:
            browser.close()


def _sign_in(page, url):
    page.goto(f"{url}/desk/login")
    page.get_by_label("Name").fill("dana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Requests waiting for a decision").wait_for()
