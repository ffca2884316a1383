"""The real server on loopback: waitress threads, a cookie-carrying HTTP client, concurrent users."""

import http.cookiejar
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import build_parts, make_settings
from web.server import BackgroundServer, make_server


@pytest.fixture
def base_url(tmp_path, knowledge):

    settings = make_settings(tmp_path, port=0, threads=4, simulation_faults=["slow_queries"])
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    yield f"http://127.0.0.1:{server.server.effective_port}"
    server.stop()
    parts.close()


def opener():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def post(client, url, body: bytes, content_type="application/json"):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with client.open(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_a_user_chats_over_http_and_the_fix_is_real(base_url):
    client = opener()
    with client.open(base_url + "/", timeout=10) as page:
        assert b"support" in page.read()
    status, body = post(client, base_url + "/api/v1/messages", b'{"text": "The dashboard is loading really slowly"}')
    assert status == 200
    assert body["decision"] == "resolve" and body["actions"][0]["name"] == "kill_slow_queries"
    assert body["actions"][0]["status"] == "succeeded"
    url = f"{base_url}/api/v1/conversations/{body['conversation_id']}/messages"
    with client.open(url, timeout=10) as response:
        assert len(json.loads(response.read())["messages"]) == 2


def test_not_utf8_body_is_a_clear_400(base_url):
    status, body = post(opener(), base_url + "/api/v1/messages", b'{"text": "caf\xe9"}')
    assert status == 400 and body["error"]["code"] == "invalid_body"


def test_concurrent_users_each_get_their_own_answers(base_url):
    def chat(text):
        client = opener()
        status, body = post(client, base_url + "/api/v1/messages", json.dumps({"text": text}).encode())
        return status, body["decision"], body["conversation_id"]

    texts = ["Can we get a non-profit discount?", "what's the capital of Peru"] * 4
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(chat, texts))
    assert [r[:2] for r in results] == [(200, "escalate"), (200, "decline")] * 4
    assert len({r[2] for r in results}) == len(texts)


def test_operator_endpoints_can_have_an_address_of_their_own(tmp_path, knowledge):
    from engine.access.tokens import Role

    settings = make_settings(tmp_path, port=0, ops_listen="127.0.0.1:0")
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    try:
        token = parts.tokens.create("prometheus", Role.OPERATOR).token

        def get(url, token=""):
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, error.read()

        assert server.ops_url != server.url
        assert get(server.url + "/metrics")[0] == 404  # not on the chat's address
        assert get(server.ops_url + "/metrics")[0] == 401
        status, body = get(server.ops_url + "/metrics", token)
        assert status == 200 and b"firstline_" in body
        assert get(server.ops_url + "/api/v1/health")[0] == 404  # and nothing else on the operators' one
        assert get(server.url + "/api/v1/health")[0] == 200
    finally:
        server.stop()
        parts.close()


@pytest.mark.parametrize("value", ["9180", "localhost:", ":9180", "127.0.0.1:99999", "host:port"])
def test_a_malformed_ops_address_is_a_clear_error(value):
    from core.errors import ConfigurationError
    from web.server import parse_listen

    with pytest.raises(ConfigurationError, match="ops_listen must be HOST:PORT"):
        parse_listen(value)
