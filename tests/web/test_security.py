"""Headers on every response, Secure cookies over HTTPS, and bodies nested too deep refused with 400."""

import re

import pytest

from engine.access.tokens import Role
from tests.conftest import build_parts, make_settings
from web import create_app
from web.security import HEADERS, MAX_JSON_DEPTH, json_depth


def route_requests(app):
    """One request per route and method of the app's URL map, with made-up values for its parts."""
    for rule in app.url_map.iter_rules():
        url = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: "x1" if m.group(1) != "filename" else "chat.css",
                     rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, url


def test_every_route_and_every_error_carries_the_security_headers(app, client):
    seen = set()
    for method, url in route_requests(app):
        with client.open(url, method=method, json={} if method in ("POST", "PUT", "PATCH") else None) as response:
            seen.add(response.status_code)
            for name, value in HEADERS.items():
                assert response.headers.get(name) == value, f"{method} {url} ({response.status_code}) lacks {name}"
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and all(missing.headers.get(n) == v for n, v in HEADERS.items())
    assert {200, 400, 401, 404} <= seen  # pages, refusals and errors all walked


def test_the_policy_forbids_framing_and_inline_script_and_no_page_needs_inline_code(client):
    policy = HEADERS["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy
    for path in ("/", "/curator/login"):
        html = client.get(path).get_data(as_text=True)
        assert "<style" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


def test_the_session_cookie_is_secure_over_https_only(client, tmp_path, knowledge):
    over_http = client.get("/api/v1/conversations").headers.get("Set-Cookie", "")
    over_https = client.get("/api/v1/conversations", base_url="https://localhost").headers.get("Set-Cookie", "")
    assert over_http and "Secure" not in over_http
    assert "Secure" in over_https and "HttpOnly" in over_https


def test_behind_a_believed_proxy_its_https_makes_the_cookie_secure(tmp_path, knowledge):
    settings = make_settings(tmp_path, proxy_hops=1)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        client = create_app(settings, parts).test_client()
        cookie = client.get("/api/v1/conversations", headers={"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]
        assert "Secure" in cookie
    finally:
        parts.close()


def test_a_proxy_header_is_not_believed_without_proxy_hops(client):
    cookie = client.get("/api/v1/conversations", headers={"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]
    assert "Secure" not in cookie


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/conversations", "/api/v1/alerts/alertmanager"])
def test_json_nested_100000_deep_is_a_400_not_a_500(client, parts, path):
    headers = {"Content-Type": "application/json"}
    if "alerts" in path:
        headers["Authorization"] = f"Bearer {parts.tokens.create('prometheus', Role.OPERATOR).token}"
    response = client.post(path, data=b'{"text": ' + deep(100_000) + b"}", headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert "nests deeper" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/conversations", "/api/v1/alerts/alertmanager"])
@pytest.mark.parametrize(("body", "said"), [
    (b'{"text": "hi", "x": 1' + b"0" * 5000 + b"}", "a number of more than 4,300 digits"),
    (b'{"truncatedAlerts": -' + b"9" * 4301 + b"}", "a number of more than 4,300 digits"),
    (b'{"text": "a\x01b"}', "Invalid control character at line 1, column 12"),
])
def test_a_body_python_cannot_read_as_json_is_a_400_saying_why(client, parts, path, body, said):
    headers = {"Content-Type": "application/json"}
    if "alerts" in path:
        headers["Authorization"] = f"Bearer {parts.tokens.create('prometheus', Role.OPERATOR).token}"
    response = client.post(path, data=body, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert said in response.get_json()["error"]["message"]


def test_depth_counts_brackets_outside_strings_only():
    assert json_depth(b'{"a": [1, {"b": 2}]}') == 3
    text = b'{"t": "' + b"[" * 500 + b'"}'
    assert json_depth(text) == 1
    assert json_depth(b'["\\"[[[", ' + deep(MAX_JSON_DEPTH + 1) + b"]") == MAX_JSON_DEPTH + 2
