"""One limiter for every write: per user and per client address, 429 with Retry-After, nothing stored past it;
counts shared through a real Redis when the storage is moved there."""

import uuid

import pytest
import redis

from engine.access.tokens import Role
from tests.conftest import build_parts, make_settings
from tests.web.test_ops import FIRING
from web import create_app


@pytest.fixture
def limited(tmp_path, knowledge):
    """An app factory with tight limits (the parts are closed after the test)."""
    made = []

    def make(**overrides):
        settings = make_settings(tmp_path / f"d{len(made)}", **overrides)
        parts = build_parts(settings, knowledge=knowledge)
        made.append(parts)
        app = create_app(settings, parts)
        return app, parts
    yield make
    for parts in made:
        parts.close()


def user_messages(parts) -> int:
    return parts.store.execute("SELECT count(*) FROM messages WHERE role = 'user'")[0][0]


def test_45_rapid_posts_on_the_single_shot_endpoint_get_429_after_the_limit(limited):
    app, parts = limited()  # the defaults: 30 writes a minute per user
    client = app.test_client()
    codes = [client.post("/api/v1/messages", json={"text": f"is the site up? ({n})"}).status_code for n in range(45)]
    assert codes == [200] * 30 + [429] * 15
    assert user_messages(parts) == 30


def test_creating_conversations_ratings_and_messages_share_one_allowance(limited):
    app, _parts = limited(rate_limit_messages=4)
    client = app.test_client()
    conversation = client.post("/api/v1/conversations").get_json()["conversation_id"]
    assert client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": "hi"}).status_code == 200
    assert client.post(f"/api/v1/conversations/{conversation}/feedback", json={"rating": 5}).status_code == 200
    assert client.post("/api/v1/messages", json={"text": "hello"}).status_code == 200
    refused = client.post("/api/v1/conversations")
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1 and "wait" in refused.get_json()["error"]["message"]
    assert len(client.get("/api/v1/conversations").get_json()["conversations"]) == 2  # reads are not counted


def test_a_burst_of_new_conversations_is_cut_at_the_limit(limited):
    app, parts = limited(rate_limit_messages=7)
    client = app.test_client()
    codes = [client.post("/api/v1/conversations").status_code for _ in range(40)]
    assert codes.count(201 if 201 in codes else 200) == 7 and codes.count(429) == 33
    assert parts.store.execute("SELECT count(*) FROM conversations")[0][0] == 7


def test_dropping_the_cookie_meets_the_addresses_allowance(limited):
    app, parts = limited(rate_limit_messages=3, rate_limit_per_address=8)
    accepted = 0
    for _ in range(6):  # six "new users" from one address, each a fresh cookie jar
        client = app.test_client()
        accepted += sum(client.post("/api/v1/messages", json={"text": "hello"}).status_code == 200
                        for _ in range(3))
    assert accepted == 8 and user_messages(parts) == 8
    other = app.test_client()
    far = other.post("/api/v1/messages", json={"text": "hello"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert far.status_code == 200  # another address has its own allowance


def test_deleting_history_does_not_give_a_fresh_allowance(limited):
    app, _ = limited(rate_limit_messages=4)
    client = app.test_client()
    for _ in range(3):
        client.post("/api/v1/messages", json={"text": "hello"})
    assert client.delete("/api/v1/history").status_code == 200  # the fourth write: still allowed, and done
    assert client.post("/api/v1/messages", json={"text": "hello"}).status_code == 429


def test_staff_sign_in_attempts_are_limited(limited):
    app, _ = limited(rate_limit_messages=5)
    client = app.test_client()
    page = client.get("/curator/login").data.decode()
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    codes = [client.post("/curator/login", data={"token": f"fl_guess{n}_x", "csrf": csrf}).status_code
             for n in range(8)]
    assert codes == [401] * 5 + [429] * 3
    token = app.extensions["firstline"].tokens.create("cora", Role.CURATOR).token
    assert client.post("/curator/login", data={"token": token, "csrf": csrf}).status_code == 429


def test_reads_and_the_operators_endpoints_are_not_counted(limited):
    app, _parts = limited(rate_limit_messages=2, operator_auth=False)
    client = app.test_client()
    assert all(client.get("/api/v1/health").status_code == 200 for _ in range(20))
    codes = [client.post("/api/v1/alerts/alertmanager", json=FIRING).status_code for _ in range(5)]
    assert codes == [200] * 5
    assert client.post("/api/v1/messages", json={"text": "hello"}).status_code == 200


def test_with_redis_storage_two_processes_share_the_counts(limited):
    prefix = f"firstline-test-{uuid.uuid4().hex}"
    store = redis.Redis(host="127.0.0.1", port=6379)
    try:
        store.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (the machine's Redis, which this test needs)")
    try:
        settings = {"limit_storage_uri": "redis://127.0.0.1:6379", "limit_key_prefix": prefix,
                    "rate_limit_per_address": 5}
        first, _ = limited(**settings)
        second, _ = limited(**settings)
        codes = [first.test_client().post("/api/v1/messages", json={"text": "hello"}).status_code for _ in range(3)]
        codes += [second.test_client().post("/api/v1/messages", json={"text": "hello"}).status_code
                  for _ in range(3)]
        assert codes == [200] * 5 + [429]
        assert list(store.scan_iter(f"*{prefix}*"))  # the counts are in Redis, not in either process
    finally:
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)
        store.close()
