import pytest

from core.errors import StoreError
from web import create_app


@pytest.fixture
def client(settings, parts):
    app = create_app(settings, parts)
    app.testing = True
    return app.test_client()


def test_chat_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200
    assert b"Job Tracker Pro support" in page.data and b"chat.js" in page.data
    with client.get("/static/chat.js") as script:
        assert script.status_code == 200


def test_post_a_message_and_read_the_conversation(client):
    response = client.post("/api/v1/messages", json={"text": "The dashboard is loading really slowly"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["decision"] == "resolve" and body["reply"]
    history = client.get(f"/api/v1/conversations/{body['conversation_id']}/messages").get_json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
    follow = client.post("/api/v1/messages", json={"text": "thanks", "conversation_id": body["conversation_id"]})
    assert follow.get_json()["conversation_id"] == body["conversation_id"]


def test_another_user_cannot_read_or_write_a_conversation(client, settings, parts):
    conversation = client.post("/api/v1/messages", json={"text": "I can't log in"}).get_json()["conversation_id"]
    stranger = create_app(settings, parts).test_client()
    response = stranger.get(f"/api/v1/conversations/{conversation}/messages")
    assert response.status_code == 404
    assert response.get_json() == {"error": {"code": "not_found", "message": "no such conversation"}}
    assert stranger.post("/api/v1/messages", json={"text": "hi", "conversation_id": conversation}).status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"data": "not json", "content_type": "text/plain"}, "invalid_body"),
        ({"data": "{broken", "content_type": "application/json"}, "invalid_body"),
        ({"json": ["a", "list"]}, "invalid_body"),
        ({"json": {"txt": "typo"}}, "invalid_body"),
        ({"json": {"text": ""}}, "empty_message"),
        ({"json": {"text": "x" * 5000}}, "message_too_long"),
        ({"json": {"text": "hi", "conversation_id": 5}}, "invalid_body"),
    ],
)
def test_bad_requests_get_one_json_error_shape(client, kwargs, code):
    response = client.post("/api/v1/messages", **kwargs)
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]


def test_unknown_api_path_and_method_are_json_errors(client):
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.get("/api/v1/messages")
    assert wrong.status_code == 405 and "error" in wrong.get_json()


def test_html_in_a_message_comes_back_as_text_not_markup(client):
    body = client.post("/api/v1/messages", json={"text": "<script>alert(1)</script> dashboard slow"}).get_json()
    history = client.get(f"/api/v1/conversations/{body['conversation_id']}/messages").get_json()
    assert history["messages"][0]["text"] == "<script>alert(1)</script> dashboard slow"
    with client.get("/static/chat.js") as script:
        assert "innerHTML" not in script.data.decode()  # the page inserts text only


def test_internal_errors_do_not_leak_tracebacks(client, parts, monkeypatch):
    def broken(_text):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(parts.assistant.knowledge, "match", broken)
    response = client.post("/api/v1/messages", json={"text": "The dashboard is slow"})
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "internal_error"


def test_a_decision_can_carry_its_trace_and_be_explained_later(client, settings, parts):
    plain = client.post("/api/v1/messages", json={"text": "Can we get a non-profit discount?"}).get_json()
    assert "trace" not in plain and plain["decision_id"]
    body = client.post("/api/v1/messages", json={"text": "Can we get a non-profit discount?", "explain": True})
    trace = body.get_json()["trace"]
    assert [f["rule"] for f in trace["fired"]] == ["business_request_goes_to_a_person"]
    assert trace["fired"][0]["facts"] == {"match": "f1"}
    later = client.get(f"/api/v1/decisions/{plain['decision_id']}/trace?why_not=unsure_match_asks_which")
    assert later.status_code == 200
    (report,) = later.get_json()["why_not"]
    assert report["rule"] == "unsure_match_asks_which" and report["fired"] is False
    stranger = create_app(settings, parts).test_client()
    assert stranger.get(f"/api/v1/decisions/{plain['decision_id']}/trace").status_code == 404
    unknown = client.get(f"/api/v1/decisions/{plain['decision_id']}/trace?why_not=no_such_rule")
    assert unknown.status_code == 404 and "no rule named" in unknown.get_json()["error"]["message"]
    bad = client.post("/api/v1/messages", json={"text": "hi", "explain": "yes"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_body"


def test_anonymous_explain_shows_the_users_own_answer_not_other_services_telemetry(client, parts):
    parts.infrastructure.inject("slow_queries@database", ramp_s=0)  # the rules rest on the database's readings
    body = client.post("/api/v1/messages", json={"text": "The dashboard is loading really slowly",
                                                 "explain": True}).get_json()
    shown = body["trace"]
    used = {fid for f in shown["fired"] for fid in (*f["facts"].values(), *f["asserted"])}
    telemetry = [f for f in shown["facts"] if f["type"] in ("metric", "service", "signal", "hypothesis")]
    assert telemetry and all(f["id"] in used for f in telemetry)  # only what the fired rules rested on
    full = parts.assistant.trace(body["decision_id"])  # what staff see
    services = {f["fields"].get("service") or f["fields"].get("name") for f in full["facts"] if f["type"] == "metric"}
    shown_services = {f["fields"].get("service") for f in shown["facts"] if f["type"] == "metric"}
    assert len(services) > len(shown_services)  # the other services' readings stayed with staff
    later = client.get(f"/api/v1/decisions/{body['decision_id']}/trace").get_json()
    assert {f["id"] for f in later["facts"]} == {f["id"] for f in shown["facts"]}


def test_the_single_shot_endpoint_obeys_the_same_per_user_limit(tmp_path, knowledge):
    from tests.conftest import build_parts, make_settings

    settings = make_settings(tmp_path, rate_limit_messages=5, rate_limit_window_s=60)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        client = create_app(settings, parts).test_client()
        codes = [client.post("/api/v1/messages", json={"text": f"hello {n}"}).status_code for n in range(8)]
        assert codes == [200] * 5 + [429] * 3
        refused = client.post("/api/v1/messages", json={"text": "hello again"})
        assert int(refused.headers["Retry-After"]) >= 1 and refused.get_json()["error"]["code"] == "rate_limited"
        count = parts.store.execute("SELECT count(*) FROM messages WHERE role = 'user'")[0][0]
        assert count == 5  # a refused message runs nothing and is not taken
    finally:
        parts.close()


def test_a_users_why_not_is_asked_of_the_facts_they_may_see(client, parts):
    import json
    import re

    parts.infrastructure.inject("slow_queries@database", ramp_s=0)
    body = client.post("/api/v1/messages", json={"text": "The dashboard is loading really slowly"}).get_json()
    rules = ("performance_cold_cache", "memory_heading_for_its_limit", "data_sync_jobs_failing")
    trace = client.get(f"/api/v1/decisions/{body['decision_id']}/trace?"
                       + "&".join(f"why_not={r}" for r in rules)).get_json()
    visible = {f["id"] for f in trace["facts"]}
    hidden = {f["id"] for f in parts.assistant.trace(body["decision_id"])["facts"]} - visible
    assert hidden  # there was something to keep back
    named = set(re.findall(r"\bf\d+\b", json.dumps(trace["why_not"])))
    assert named and named <= visible
    metrics = sum(f["type"] == "metric" for f in trace["facts"])
    counted = {int(n) for n in re.findall(r"none of (\d+) metric facts", json.dumps(trace["why_not"]))}
    assert counted == {metrics}  # the hidden readings are not even counted


def test_a_lone_surrogate_in_a_json_body_is_a_400_and_nothing_is_stored(client, parts):
    # Found by the fuzz (test_api_fuzz.py): a `\ud800` escape with no partner parsed into a string DuckDB cannot
    # encode, and rating a conversation with it answered 500 with the database's path in the message.
    conversation = client.post("/api/v1/messages", json={"text": "I can't log in"}).get_json()["conversation_id"]
    rated = client.post(f"/api/v1/conversations/{conversation}/feedback", content_type="application/json",
                        data='{"rating": 4, "comment": "quick \\ud800"}')
    assert rated.status_code == 400 and rated.get_json()["error"]["code"] == "invalid_body"
    assert "not valid Unicode" in rated.get_json()["error"]["message"]
    assert parts.store.execute("SELECT count(*) FROM feedback")[0][0] == 0
    key = client.post("/api/v1/conversations", content_type="application/json", data='{"\\udc00": 1}')
    assert key.status_code == 400  # keys too, on every route that reads a JSON body
    paired = client.post(f"/api/v1/conversations/{conversation}/feedback", content_type="application/json",
                         data='{"rating": 4, "comment": "quick \\ud83d\\ude00"}')  # an escaped emoji is fine
    assert paired.status_code == 200


def test_a_body_past_one_mib_is_413_in_the_error_shape_and_documented(client):
    # Found by the fuzz: a message of 100,000 characters (the documented maximum) written as \u escapes is past
    # the app's 1 MiB body limit, and the 413 was in no operation's responses.
    too_big = client.post("/api/v1/messages", content_type="application/json",
                          data='{"text": "' + "\\u00e9" * 200_000 + '"}')
    assert too_big.status_code == 413 and too_big.get_json()["error"]["code"] == "request_entity_too_large"
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert all("413" in operation["responses"] for item in paths.values()
               for method, operation in item.items() if method == "post")


def test_a_store_failure_is_a_500_that_names_no_file_and_no_sql(client, parts, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise StoreError("could not write to /srv/firstline/var/firstline.duckdb: SELECT * FROM secrets")

    monkeypatch.setattr(parts.dialogue, "conversations", broken)
    response = client.get("/api/v1/conversations")
    assert response.status_code == 500
    body = response.get_json()["error"]
    assert body["code"] == "unavailable" and "logged" in body["message"]
    assert "duckdb" not in response.get_data(as_text=True) and "SELECT" not in response.get_data(as_text=True)
    assert any("firstline.duckdb" in r.getMessage() for r in caplog.records)  # the operator still sees it
