"""The widget's server side: only its chat frame (/embed) may be framed, and only by the configured host apps; the
frame's session travels in a header, never a cookie; earlier replies come back with their technical detail."""

import re

import pytest

from core.errors import ConfigurationError
from engine.access.identity import user_hash
from tests.conftest import build_parts, make_settings
from web import create_app
from web.security import HEADERS, SESSION_HEADER

HOSTS = ["https://app.example.com", "http://127.0.0.1:8123"]
SECRET = "host-app-shared-secret-for-tests"


@pytest.fixture
def app(tmp_path, knowledge):
    settings = make_settings(tmp_path, widget_origins=HOSTS, identity_secret=SECRET,
                             simulation_faults=["slow_queries"])
    parts = build_parts(settings, knowledge=knowledge)
    yield create_app(settings, parts)
    parts.close()


def policy(response) -> dict[str, str]:
    """The Content-Security-Policy's directives by name."""
    pairs = (d.strip().partition(" ") for d in response.headers["Content-Security-Policy"].split(";"))
    return {name: value for name, _, value in pairs}


def test_the_frame_may_be_framed_by_the_configured_hosts_only(app):
    client = app.test_client()
    embed = client.get("/embed?host=https://app.example.com")
    assert embed.status_code == 200
    assert policy(embed)["frame-ancestors"] == "https://app.example.com http://127.0.0.1:8123"
    assert "X-Frame-Options" not in embed.headers  # its DENY would win over the policy in older browsers
    default = policy(type("R", (), {"headers": HEADERS})())
    assert {k: v for k, v in policy(embed).items() if k != "frame-ancestors"} == {
        k: v for k, v in default.items() if k != "frame-ancestors"}  # nothing else loosened
    for name in ("X-Content-Type-Options", "Referrer-Policy"):
        assert embed.headers[name] == HEADERS[name]


@pytest.mark.parametrize("path", ["/", "/widget.js", "/api/v1/conversations", "/curator/login", "/desk/",
                                  "/static/chat.js", "/no/such/page"])
def test_every_other_page_still_refuses_framing(app, path):
    with app.test_client().get(path) as response:
        assert policy(response)["frame-ancestors"] == "'none'", path
        assert response.headers["X-Frame-Options"] == "DENY", path


def test_without_configured_hosts_the_frame_refuses_framing_like_every_page(tmp_path, knowledge):
    settings = make_settings(tmp_path)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        embed = create_app(settings, parts).test_client().get("/embed?host=https://app.example.com")
        assert embed.status_code == 200
        assert all(embed.headers[name] == value for name, value in HEADERS.items())
        assert 'data-host=""' in embed.get_data(as_text=True)  # and it speaks to no host page
    finally:
        parts.close()


def test_the_frame_talks_back_only_to_an_allowed_host(app):
    client = app.test_client()
    allowed = client.get("/embed?host=http://127.0.0.1:8123").get_data(as_text=True)
    assert 'data-host="http://127.0.0.1:8123"' in allowed and 'class="embed"' in allowed
    for other in ("https://evil.example", "https://app.example.com.evil.example", "", "*"):
        html = client.get("/embed", query_string={"host": other}).get_data(as_text=True)
        assert 'data-host=""' in html, other
    # The frame is the chat page: no inline script, style or handler, as every page.
    assert "<style" not in allowed and not re.search(r"<script(?![^>]*\bsrc=)", allowed)
    assert not re.search(r"\son[a-z]+=", allowed)


def test_the_script_and_the_frame_hand_out_no_cookie(app):
    client = app.test_client()
    with client.get("/widget.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"
        assert "postMessage" in script.get_data(as_text=True)
    for path in ("/widget.js", "/embed?host=https://app.example.com", "/static/chat.js"):
        with client.get(path) as response:
            assert "Set-Cookie" not in response.headers, path
    assert "Set-Cookie" in client.get("/").headers  # the page itself still identifies its user by cookie


@pytest.mark.parametrize("origins", [["https://app.example.com/"], ["https://app.example.com/path"], ["*"],
                                     ["app.example.com"], ["javascript:alert(1)"], ["https://a.example; script-src *"]])
def test_a_widget_origin_must_be_an_origin(tmp_path, origins):
    with pytest.raises(ConfigurationError, match="widget_origins"):
        make_settings(tmp_path, widget_origins=origins)


def test_widget_origins_come_from_the_environment(tmp_path):
    from core.settings import load_settings

    settings = load_settings(environ={"FIRSTLINE_WIDGET_ORIGINS": "https://App.example.com:443, http://[::1]:8080, "
                                                                  "http://localhost:80, https://b.example:8443"},
                             default_file=None, data_dir=tmp_path)
    assert settings.widget_origins == ("https://app.example.com", "http://[::1]:8080", "http://localhost",
                                       "https://b.example:8443")  # as browsers write them


def framed(client, method, path, session, **kwargs):
    """A request as the widget's frame sends it: the session in the header, no cookie."""
    client.delete_cookie("session", domain="localhost")
    response = client.open(path, method=method, headers={SESSION_HEADER: session}, **kwargs)
    assert "Set-Cookie" not in response.headers, path
    return response, response.headers.get(SESSION_HEADER, "")


def test_the_frames_session_travels_in_a_header_and_never_in_a_cookie(app):
    client = app.test_client()
    created, session = framed(client, "POST", "/api/v1/conversations", "new")
    assert created.status_code == 201 and session
    assert SESSION_HEADER in created.headers.get("Vary", "")
    conversation = created.get_json()["conversation_id"]
    # The same session: the same user, who sees their conversation; without it, or with a forged one, nobody does.
    listed, renewed = framed(client, "GET", "/api/v1/conversations", session)
    assert [c["id"] for c in listed.get_json()["conversations"]] == [conversation] and renewed
    for other in ("new", "", session[:-4] + "AAAA", "eyJ1c2VyX2lkIjoiYW5uIn0.x.y"):
        listed, _ = framed(client, "GET", "/api/v1/conversations", other)
        assert listed.get_json()["conversations"] == [], other
    assert app.test_client().get("/api/v1/conversations").get_json()["conversations"] == []  # a cookie user
    # The header is for the API only: a page still identifies by cookie.
    assert "Set-Cookie" in app.test_client().get("/", headers={SESSION_HEADER: session}).headers


def test_the_host_app_vouches_for_its_user_inside_the_frame(app):
    client = app.test_client()
    _, session = framed(client, "GET", "/api/v1/conversations", "new")
    vouched, session = framed(client, "POST", "/api/v1/identity", session,
                              json={"user_id": "u-1042", "user_hash": user_hash(SECRET, "u-1042")})
    assert vouched.get_json() == {"user_id": "u-1042", "verified": True}
    created, _ = framed(client, "POST", "/api/v1/conversations", session)
    # A browser of the same user vouched for on the full page sees the same conversation.
    page = app.test_client()
    page.post("/api/v1/identity", json={"user_id": "u-1042", "user_hash": user_hash(SECRET, "u-1042")})
    listed = page.get("/api/v1/conversations").get_json()["conversations"]
    assert [c["id"] for c in listed] == [created.get_json()["conversation_id"]]
    forgot, anonymous = framed(client, "DELETE", "/api/v1/identity", session)
    assert forgot.get_json() == {"verified": False}
    assert framed(client, "GET", "/api/v1/conversations", anonymous)[0].get_json()["conversations"] == []


def test_earlier_replies_come_back_with_their_decision_and_technical_detail(app):
    client = app.test_client()
    conversation = client.post("/api/v1/conversations").get_json()["conversation_id"]
    turn = client.post(f"/api/v1/conversations/{conversation}/messages",
                       json={"text": "The dashboard is loading really slowly"}).get_json()
    answer = turn["answer"]
    messages = client.get(f"/api/v1/conversations/{conversation}/messages").get_json()["messages"]
    decided = [m for m in messages if m["decision_id"]]
    assert len(decided) == 1 and decided[0]["decision_id"] == turn["decision_id"]
    (reply,) = decided
    assert reply["role"] == "assistant" and reply["text"] == answer["reply"]
    assert reply["detail"] == {key: answer[key] for key in ("decision", "category", "playbook", "confidence",
                                                            "rules_fired", "actions")}
    assert {"name": "kill_slow_queries", "target": "database", "status": "succeeded"} in reply["detail"]["actions"]
    others = [m for m in messages if m is not reply]
    assert others and all(m["decision_id"] is None and m["detail"] is None for m in others)
    assert all(isinstance(m["at"], float) for m in messages)
    # Nobody else reads them: someone else's conversation does not exist.
    assert app.test_client().get(f"/api/v1/conversations/{conversation}/messages").status_code == 404
