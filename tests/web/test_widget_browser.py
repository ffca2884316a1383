"""The widget and the chat page in a real headless Chromium (Debian's, driven by Playwright).

A plain host page on another port of 127.0.0.1, with a strict Content-Security-Policy of its own that names
Firstline's origin only in script-src and frame-src, loads /widget.js; its launcher opens the chat, which holds a
conversation of two turns as the user the host page vouches for, with the typing indicator and a time on every
message, no request to any third origin, no cookie and no CSP violation; Escape closes it and the keyboard opens
it again; on a 320 px phone it is the whole screen. On a 390 px phone the chat page keeps the progress line and
then the reply in view, and after a reload an earlier reply still has its technical detail. Screenshots
(docs/chat-desktop.png, docs/chat-phone.png, docs/widget.png) go to the folder SCREENSHOTS_DIR names."""

import os
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engine.access.identity import user_hash
from tests.conftest import build_parts, make_settings
from tests.peers import LoopbackServer, QuietHandler
from tests.web.test_browser import ARGS, CHROMIUM, _browser_or_skip, wait_in_page
from web.server import BackgroundServer, make_server

SECRET = "host-app-shared-secret-for-tests"
USER = "u-1042"
PROBLEM = "the dashboard is really slow"
FOLLOW_UP = "yes, it works now"
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
# Every frame records the policy violations it sees (an init script, which no page's policy governs).
WATCH_CSP = ("window.__csp = []; document.addEventListener('securitypolicyviolation', "
             "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
# How many times the typing bubble was added to the conversation.
WATCH_TYPING = """() => {
    window.__typing = 0;
    new MutationObserver((changes) => {
        for (const change of changes) for (const node of change.addedNodes)
            if (node.classList && node.classList.contains('typing')) window.__typing += 1;
    }).observe(document.getElementById('log'), { childList: true });
}"""
# Where the progress line was each time its text changed (observers run after the page's own script of that turn).
WATCH_PROGRESS = """() => {
    window.__progress = [];
    const status = document.getElementById('status');
    new MutationObserver(() => {
        const box = status.getBoundingClientRect();
        if (status.textContent) window.__progress.push(
            { text: status.textContent, top: box.top, bottom: box.bottom, height: window.innerHeight });
    }).observe(status, { childList: true, characterData: true, subtree: true });
}"""
SHOW_THE_DETAIL = """() => {
    const thread = document.getElementById('thread');
    const reply = document.querySelector('#log li.assistant details').closest('li');
    thread.scrollTop += reply.getBoundingClientRect().top - thread.getBoundingClientRect().top - 8;
}"""
IN_VIEW = """(element) => {
    const box = element.getBoundingClientRect();
    return box.top >= 0 && box.top < window.innerHeight && (box.bottom <= window.innerHeight || box.top === 0 ||
        box.height > window.innerHeight);
}"""


def _shots(tmp_path: Path) -> Path:
    folder = os.environ.get("SCREENSHOTS_DIR")
    return Path(folder) if folder else tmp_path


class _HostPage(QuietHandler):
    """A product's own page: its text, the widget's tag and a policy that trusts Firstline's origin for the script
    and the frame only (everything else from itself, no style at all)."""

    firstline = ""

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        hash_ = user_hash(SECRET, USER)
        body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>Acme jobs</title>'
                f'</head><body><h1>Acme job board</h1><p>Your saved jobs, your interviews, your offers.</p>'
                f'<script src="{self.firstline}/widget.js" defer data-title="Acme support" data-colour="#0a6e4f" '
                f'data-user-id="{USER}" data-user-hash="{hash_}"></script></body></html>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy",
                         f"default-src 'self'; script-src {self.firstline}; frame-src {self.firstline}; "
                         "style-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def served(tmp_path, knowledge):
    with LoopbackServer(type("Host", (_HostPage,), {})) as host:  # a subclass per run: `firstline` is set on it
        settings = make_settings(tmp_path, port=0, threads=4, simulation_faults=["slow_queries"],
                                 monitor_enabled=False, identity_secret=SECRET, widget_origins=[host.url])
        parts = build_parts(settings, knowledge=knowledge)
        server = BackgroundServer(make_server(settings, parts)).start()
        host.server.RequestHandlerClass.firstline = server.url
        yield host.url, server.url, parts
        server.stop()
        parts.close()


def say(chat, text):
    """Type a message into `chat` (a page or a frame), send it with Enter and wait for the turn to finish."""
    replies = chat.locator("#log li.assistant")
    count = replies.count()
    chat.get_by_label("Your message").fill(text)
    chat.get_by_label("Your message").press("Enter")
    replies.nth(count).wait_for()
    chat.locator("#send:enabled").wait_for()
    chat.locator("#log li.typing").wait_for(state="detached")
    return replies.nth(count)


def assert_stamped(chat):
    """Every message carries its local time, with the full date in its title."""
    year = str(datetime.now().year)
    for item in chat.locator("#log li.user, #log li.assistant").all():
        stamp = item.locator("time.at")
        assert stamp.count() == 1, item.inner_text()
        assert datetime.fromisoformat(stamp.get_attribute("datetime").replace("Z", "+00:00"))
        assert year in (stamp.get_attribute("title") or "")
        assert ":" in stamp.inner_text()


def test_the_widget_holds_a_conversation_on_another_sites_page(served, tmp_path):
    sync_playwright = _browser_or_skip()
    host_url, firstline, parts = served
    origins = {host_url, firstline}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(WATCH_CSP)
            requested, console = [], []
            context.on("request", lambda r: requested.append(r.url))
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.goto(host_url)

            launcher = page.get_by_role("button", name="Open Acme support")
            assert launcher.get_attribute("aria-expanded") == "false"
            launcher.click()
            panel = page.get_by_role("dialog", name="Acme support")
            panel.wait_for()
            frame_element = page.locator("iframe[title='Acme support']")
            chat = frame_element.content_frame
            chat.locator("#log li.assistant").first.wait_for()
            frame = frame_element.element_handle().content_frame()
            assert frame.url.startswith(f"{firstline}/embed?host=")
            wait_in_page(frame, "() => document.activeElement !== null && document.activeElement.id === 'message'")
            assert page.get_by_role("button", name="Close Acme support").get_attribute("aria-expanded") == "true"

            # Two turns: a technical problem, then the answer to the assistant's question.
            frame.evaluate(WATCH_TYPING)
            say(chat, PROBLEM)
            detail = chat.locator("#log li.assistant details").last
            detail.locator("summary").click()  # the technical detail, one click away
            assert "kill_slow_queries" in detail.inner_text()
            follow = say(chat, FOLLOW_UP)
            assert follow.inner_text().strip()
            assert frame.evaluate("window.__typing") >= 2  # the dots showed while each turn ran
            assert [PROBLEM in t for t in chat.locator("#log li.user").all_inner_texts()] == [True, False]
            assert_stamped(chat)

            # The host app vouched for its user: the conversation is theirs, and the frame set no cookie anywhere.
            (mine,) = parts.dialogue.conversations(USER)
            assert mine.messages >= 5
            assert context.cookies() == []
            # Only the conversation scrolls in the frame: its header and its message box stay put.
            assert frame.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")
            assert chat.get_by_role("heading").is_visible() and chat.get_by_label("Your message").is_visible()
            frame.evaluate(SHOW_THE_DETAIL)
            page.screenshot(path=str(_shots(tmp_path) / "widget.png"))

            # Escape closes it and gives the focus back to the launcher; the keyboard opens it again.
            chat.get_by_label("Your message").press("Escape")
            panel.wait_for(state="hidden")
            assert page.evaluate("document.activeElement.shadowRoot.activeElement.id") == "firstline-launcher"
            page.keyboard.press("Enter")
            panel.wait_for()
            wait_in_page(frame, "() => document.activeElement !== null && document.activeElement.id === 'message'")
            chat.get_by_role("button", name="Close the chat").click()
            panel.wait_for(state="hidden")

            # On a 320 px phone the open chat is the whole screen, and nothing scrolls sideways.
            page.set_viewport_size({"width": 320, "height": 640})
            page.get_by_role("button", name="Open Acme support").click()
            panel.wait_for()
            assert frame_element.bounding_box() == {"x": 0, "y": 0, "width": 320, "height": 640}
            assert page.evaluate(NO_SIDEWAYS_SCROLL) and frame.evaluate(NO_SIDEWAYS_SCROLL)
            assert chat.get_by_label("Your message").is_visible() and chat.locator("#send").is_visible()

            # After a reload of the host page the same conversation comes back, its reply with its detail.
            page.reload()
            page.get_by_role("button", name="Open Acme support").click()
            chat.locator("#log li.assistant details").first.wait_for()
            chat.locator("#log li.assistant details summary").first.click()
            assert "kill_slow_queries" in chat.locator("#log li.assistant details").first.inner_text()
            assert chat.locator("#log li.user").count() == 2

            assert {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in requested} <= origins, requested
            assert context.cookies() == []
            for each in page.frames:
                assert each.evaluate("window.__csp") == [], each.url
            assert not [m for m in console if m[0] == "error" or "Content Security Policy" in m[1]], console
        finally:
            browser.close()


def test_on_a_phone_progress_and_reply_stay_in_view_and_earlier_detail_survives_a_reload(served, tmp_path):
    sync_playwright = _browser_or_skip()
    _, firstline, _ = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 390, "height": 700}).new_page()
            page.set_default_timeout(30_000)
            page.goto(firstline)
            page.locator("#log li.assistant").first.wait_for()
            page.evaluate(WATCH_PROGRESS)
            for text in (PROBLEM, FOLLOW_UP, "search is slow as well"):
                reply = say(page, text)
                assert page.evaluate(IN_VIEW, reply.element_handle()), text  # the reply, from its start
            # By the last turns the conversation was taller than the screen, and every progress line was in view.
            assert page.evaluate("document.documentElement.scrollHeight") > 700
            progress = page.evaluate("window.__progress")
            assert len(progress) >= 3
            assert all(p["top"] >= 0 and p["bottom"] <= p["height"] for p in progress), progress
            assert page.evaluate(NO_SIDEWAYS_SCROLL)

            page.reload()
            earlier = page.locator("#log li.assistant", has=page.locator("details")).first
            earlier.locator("summary").click()
            assert "kill_slow_queries" in earlier.locator("details").inner_text()
            assert_stamped(page)
            page.evaluate("document.querySelector('#log li.user').scrollIntoView()")  # the problem, then the answer
            page.screenshot(path=str(_shots(tmp_path) / "chat-phone.png"))

            page.set_viewport_size({"width": 1280, "height": 800})
            assert page.evaluate(NO_SIDEWAYS_SCROLL)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(_shots(tmp_path) / "chat-desktop.png"))
        finally:
            browser.close()
