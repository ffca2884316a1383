"""The curator's pages: a curator's token signs in, forms need the session's CSRF token, rules change status
and are published, and the unmatched queue teaches playbooks or drafts new ones."""

import re

import pytest

from engine.access.tokens import Role
from engine.learning.ledger import Fix
from tests.conftest import build_parts, make_settings
from web import create_app

FIX = Fix("dashboard_slow", "kill_slow_queries", "database", "database", "slow_queries")


@pytest.fixture
def app(tmp_path, knowledge):
    settings = make_settings(tmp_path)
    parts = build_parts(settings, knowledge=knowledge)
    app = create_app(settings, parts)
    app.testing = True
    yield app
    parts.close()


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


def signed_in(app, role=Role.CURATOR):
    client = app.test_client()
    token = app.extensions["firstline"].tokens.create("cora", role).token
    csrf = csrf_of(client.get("/curator/login").data)
    response = client.post("/curator/login", data={"token": token, "csrf": csrf})
    return client, response


def test_pages_need_a_curators_token(app, caplog):
    client = app.test_client()
    assert client.get("/curator/").headers["Location"].endswith("/curator/login")
    _, refused = signed_in(app, Role.USER)
    assert refused.status_code == 401 and b"not a curator" in refused.data
    assert "refused POST /curator/login from 127.0.0.1" in caplog.text
    client, accepted = signed_in(app)
    assert accepted.status_code == 302 and client.get("/curator/").status_code == 200


def test_a_curators_staff_account_signs_in_with_its_password(app):
    users = app.extensions["firstline"].users
    users.create("cleo", "curator", "a long curator passphrase")
    users.create("dana", "decider", "a long decider passphrase")
    for name, password, status in (("cleo", "a long curator passphrase", 302), ("cleo", "wrong", 401),
                                   ("dana", "a long decider passphrase", 401)):
        client = app.test_client()
        csrf = csrf_of(client.get("/curator/login").data)
        response = client.post("/curator/login", data={"name": name, "password": password, "csrf": csrf})
        assert response.status_code == status, name
        assert client.get("/curator/").status_code == (200 if status == 302 else 302)


def test_a_form_without_the_csrf_token_changes_nothing(app):
    parts = app.extensions["firstline"]
    parts.dialogue.learning.ledger.record_resolution(FIX, "c1", "u1")
    rule = parts.dialogue.learning.ledger.record_resolution(FIX, "c2", "u2")
    client, _ = signed_in(app)
    response = client.post(f"/curator/rules/{rule.name}/approve", data={})
    assert response.status_code == 400 and b"reload the page" in response.data
    assert parts.dialogue.learning.ledger.latest(rule.name).status == "proposed"


def test_approving_a_rule_publishes_it_and_revert_needs_a_known_version(app, tmp_path):
    parts = app.extensions["firstline"]
    parts.dialogue.learning.ledger.record_resolution(FIX, "c1", "u1")
    rule = parts.dialogue.learning.ledger.record_resolution(FIX, "c2", "u2")
    client, _ = signed_in(app)
    page = client.get("/curator/")
    assert rule.name.encode() in page.data and b"2 users, 2 conversations" in page.data
    assert b"c1, c2" in client.get(f"/curator/rules/{rule.name}").data  # its provenance
    done = client.post(f"/curator/rules/{rule.name}/approve", data={"csrf": csrf_of(page.data)},
                       follow_redirects=True)
    assert b"version 2 is active" in done.data
    assert rule.name in (tmp_path / "learned_rules" / "active.yaml").read_text(encoding="utf-8")
    missing = client.post(f"/curator/rules/{rule.name}/revert", data={"csrf": csrf_of(page.data), "version": "9"})
    assert missing.status_code == 400 and b"versions: 1, 2" in missing.data


def test_the_unmatched_queue_teaches_a_playbook_or_drafts_a_new_one(app, tmp_path):
    parts = app.extensions["firstline"]
    declined = parts.assistant.answer("my pet hamster ate the office plant", "sam")
    unsure = parts.assistant.answer("the thing with the stuff is weird", "sam")
    client, _ = signed_in(app)
    page = client.get("/curator/")
    assert b"hamster" in page.data
    csrf = csrf_of(page.data)
    client.post(f"/curator/unmatched/{declined.decision_id}/add", data={"csrf": csrf, "playbook": "dashboard_slow"})
    learned = [e.text for e in parts.assistant.knowledge.examples.values() if e.playbook == "dashboard_slow"]
    assert "my pet hamster ate the office plant" in learned
    assert b"hamster" not in client.get("/curator/").data  # handled: off the queue
    drafted = client.post(f"/curator/unmatched/{unsure.decision_id}/new", follow_redirects=True,
                          data={"csrf": csrf, "id": "weird_stuff", "title": "Weird stuff", "category": "bug_error"})
    assert b"draft playbook written" in drafted.data
    assert "the thing with the stuff is weird" in (tmp_path / "drafts" / "weird_stuff.yaml").read_text()
    bad = client.post(f"/curator/unmatched/{unsure.decision_id}/new",
                      data={"csrf": csrf, "id": "X", "category": "bug_error"})
    assert bad.status_code == 400 and b"lowercase" in bad.data
    # The taught example belongs to its writer: deleting their history removes it from the index.
    parts.dialogue.forget("sam")
    assert "my pet hamster ate the office plant" not in [e.text for e in parts.assistant.knowledge.examples.values()]


def test_a_revoked_tokens_session_is_refused_on_its_next_request(app, caplog):
    parts = app.extensions["firstline"]
    parts.dialogue.learning.ledger.record_resolution(FIX, "c1", "u1")
    rule = parts.dialogue.learning.ledger.record_resolution(FIX, "c2", "u2")
    client = app.test_client()
    issued = parts.tokens.create("cora", Role.CURATOR)
    client.post("/curator/login", data={"token": issued.token, "csrf": csrf_of(client.get("/curator/login").data)})
    csrf = csrf_of(client.get("/curator/").data)
    parts.tokens.revoke(issued.id)
    assert client.get("/curator/").headers["Location"].endswith("/curator/login")
    refused = client.post(f"/curator/rules/{rule.name}/approve", data={"csrf": csrf, "reason": "ok"})
    assert refused.status_code == 401 and b"session has ended" in refused.data
    assert parts.dialogue.learning.ledger.latest(rule.name).status == "proposed"
    assert f"refused POST /curator/rules/{rule.name}/approve from 127.0.0.1" in caplog.text


def test_signing_out_ends_the_session_on_the_server_not_only_in_this_browser(app):
    client, _ = signed_in(app)
    copied = app.test_client()  # the same cookie, as a stolen or second copy would carry it
    copied.set_cookie("session", client.get_cookie("session").value)
    assert copied.get("/curator/").status_code == 200
    client.post("/curator/logout", data={"csrf": csrf_of(client.get("/curator/").data)})
    assert copied.get("/curator/").status_code == 302
    assert client.get("/curator/").status_code == 302


def test_signing_out_everywhere_ends_the_other_browsers_sessions(app):
    parts = app.extensions["firstline"]
    token = parts.tokens.create("cora", Role.CURATOR).token
    browsers = [app.test_client() for _ in range(2)]
    for browser in browsers:
        browser.post("/curator/login", data={"token": token, "csrf": csrf_of(browser.get("/curator/login").data)})
        assert browser.get("/curator/").status_code == 200
    laptop, phone = browsers
    laptop.post("/curator/logout", data={"csrf": csrf_of(laptop.get("/curator/").data), "everywhere": "1"})
    assert phone.get("/curator/").status_code == 302


def test_signing_in_renews_the_csrf_value(app):
    client = app.test_client()
    before = csrf_of(client.get("/curator/login").data)
    token = app.extensions["firstline"].tokens.create("cora", Role.CURATOR).token
    client.post("/curator/login", data={"token": token, "csrf": before})
    assert csrf_of(client.get("/curator/").data) != before


def test_a_session_left_idle_ends(tmp_path, knowledge, clock):
    settings = make_settings(tmp_path, staff_idle_s=900)
    parts = build_parts(settings, knowledge=knowledge, clock=clock)
    try:
        app = create_app(settings, parts)
        client, _ = signed_in(app)
        clock.advance(800)
        assert client.get("/curator/").status_code == 200  # used: the idle time starts again
        clock.advance(800)
        assert client.get("/curator/").status_code == 200
        clock.advance(901)
        assert client.get("/curator/").headers["Location"].endswith("/curator/login")
    finally:
        parts.close()


@pytest.mark.parametrize("sent", ["é", "ünïcødé-value", "💥"])
def test_a_csrf_value_past_ascii_is_refused_not_a_500(app, sent):
    """hmac.compare_digest raises on non-ASCII strings: every staff form must answer 400, never 500."""
    client = app.test_client()
    for path in ("/curator/login", "/desk/login", "/analytics/login"):
        client.get(path)
        response = client.post(path, data={"name": "x", "password": "y", "csrf": sent})
        assert response.status_code == 400 and b"reload the page" in response.data, path
