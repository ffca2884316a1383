"""The /api/v1 conversation API: the OpenAPI document matches the routes; tokens, deciders, streams, errors."""

import json
import re

import pytest

from engine.access.tokens import Role
from firstline.cli import main
from tests.conftest import build_parts, make_settings
from web import create_app


@pytest.fixture
def app(tmp_path, knowledge):

    settings = make_settings(tmp_path, simulation_faults=["slow_queries"], rate_limit_messages=12)
    parts = build_parts(settings, knowledge=knowledge)
    app = create_app(settings, parts)
    app.testing = True
    yield app
    parts.close()


@pytest.fixture
def client(app):
    return app.test_client()


def parts_of(app):
    return app.extensions["firstline"]


def test_every_route_is_in_the_openapi_document_and_nothing_else(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    for path, item in document["paths"].items():
        for operation in item.values():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), path


def test_the_document_is_openapi_3_0_where_a_type_is_one_name(client):
    # OpenAPI 3.0 says `nullable: true`, not JSON Schema's `type: [..., "null"]` (the analysts' QueryResult had one).
    def types(node):
        if isinstance(node, dict):
            yield from ([node["type"]] if "type" in node else [])
            for value in node.values():
                yield from types(value)
        elif isinstance(node, list):
            for value in node:
                yield from types(value)

    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.0")
    assert all(isinstance(found, str) for found in types(document["components"]["schemas"]))
    assert all(isinstance(found, str) for found in types(document["paths"]))


def test_an_operators_token_on_a_chat_route_is_a_403_the_document_lists(app, client):
    # Found by the fuzz (test_api_fuzz.py): GET /api/v1/health with an operator's token answered 403, a status
    # the document listed only for the staff routes.
    operator = parts_of(app).tokens.create("prometheus", Role.OPERATOR).token
    refused = client.get("/api/v1/health", headers={"Authorization": f"Bearer {operator}"})
    assert refused.status_code == 403 and "operator's token" in refused.get_json()["error"]["message"]
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert all("403" in operation["responses"] for item in paths.values() for operation in item.values())


def test_a_conversation_over_the_api(client):
    created = client.post("/api/v1/conversations")
    assert created.status_code == 201
    conversation = created.get_json()["conversation_id"]
    turn = client.post(f"/api/v1/conversations/{conversation}/messages",
                       json={"text": "The dashboard is loading really slowly"}).get_json()
    assert turn["stage"] == "verifying" and turn["answer"]["decision"] == "resolve"
    assert turn["answer"]["actions"][0]["name"] == "kill_slow_queries" and turn["choices"]
    rated = client.post(f"/api/v1/conversations/{conversation}/feedback", json={"rating": 4, "comment": "quick"})
    assert rated.status_code == 200 and rated.get_json()["stage"] == "open"
    listed = client.get("/api/v1/conversations").get_json()["conversations"]
    assert [c["id"] for c in listed] == [conversation] and listed[0]["messages"] >= 3
    history = client.get(f"/api/v1/conversations/{conversation}/messages").get_json()
    assert history["stage"] == "open" and history["messages"][1]["text"] == "The dashboard is loading really slowly"
    bad = client.post(f"/api/v1/conversations/{conversation}/feedback", json={"rating": 9})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_body"


def test_progress_streams_while_the_turn_runs(client):
    conversation = client.post("/api/v1/conversations").get_json()["conversation_id"]
    response = client.post(f"/api/v1/conversations/{conversation}/messages", headers={"Accept": "text/event-stream"},
                           json={"text": "The dashboard is loading really slowly"})
    assert response.mimetype == "text/event-stream"
    events = [(block.split("\n")[0][7:], json.loads(block.split("\n")[1][6:]))
              for block in response.get_data(as_text=True).strip().split("\n\n")]
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "turn" and set(kinds[:-1]) == {"progress"}
    assert "Stopping stuck requests that slow everything down…" in [data["message"] for _, data in events[:-1]]
    assert events[-1][1]["stage"] == "verifying"


def test_a_flood_gets_429_with_retry_after_and_earlier_messages_stay(client):
    conversation = client.post("/api/v1/conversations").get_json()["conversation_id"]  # a write: 1 of 12
    for n in range(11):
        assert client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": f"hello {n}"}).status_code \
            == 200
    refused = client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": "hello 7"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["code"] == "rate_limited" and "wait" in refused.get_json()["error"]["message"]
    texts = [m["text"] for m in client.get(f"/api/v1/conversations/{conversation}/messages").get_json()["messages"]]
    assert [t for t in texts if t.startswith("hello")] == [f"hello {n}" for n in range(11)]


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"data": b'{"text": "caf\xe9"}', "content_type": "application/json"}, "invalid_body"),
    ({"data": "{broken", "content_type": "application/json"}, "invalid_body"),
    ({"json": {"text": 5}}, "invalid_body"),
    ({"json": {"text": "   "}}, "empty_message"),
    ({"json": {"text": "x" * 5000}}, "message_too_long"),
])
def test_bad_turns_get_a_clear_error_and_lose_nothing(client, kwargs, code):
    conversation = client.post("/api/v1/conversations").get_json()["conversation_id"]
    client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": "The dashboard is slow"})
    response = client.post(f"/api/v1/conversations/{conversation}/messages", **kwargs)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code
    texts = [m["text"] for m in client.get(f"/api/v1/conversations/{conversation}/messages").get_json()["messages"]]
    assert "The dashboard is slow" in texts


def test_tokens_identify_integrations_and_only_deciders_decide(app, client):
    tokens = parts_of(app).tokens
    bot, decider = tokens.create("helpdesk-bot"), tokens.create("dana", Role.DECIDER)
    stored = parts_of(app).store.execute("SELECT hash, salt FROM api_tokens")
    assert all(bot.token.split("_", 2)[2] not in row[0] + row[1] for row in stored)  # only a salted hash is kept
    as_bot = {"Authorization": f"Bearer {bot.token}"}
    turn = client.post("/api/v1/messages", headers=as_bot, json={"text": "Can we get a non-profit discount?"})
    assert turn.status_code == 200 and turn.get_json()["decision"] == "escalate"
    conversation = client.post("/api/v1/conversations", headers=as_bot).get_json()["conversation_id"]
    asked = client.post(f"/api/v1/conversations/{conversation}/messages", headers=as_bot,
                        json={"text": "Can we get a non-profit discount?"}).get_json()
    assert asked["stage"] == "awaiting_decision"
    assert client.get("/api/v1/escalations", headers=as_bot).status_code == 403
    as_decider = {"Authorization": f"Bearer {decider.token}"}
    open_ones = client.get("/api/v1/escalations", headers=as_decider).get_json()["escalations"]
    mine = next(e for e in open_ones if e["conversation_id"] == conversation)
    decided = client.post(f"/api/v1/escalations/{mine['id']}/decision", headers=as_decider,
                          json={"outcome": "approved", "note": "20% off, starting next invoice."})
    assert decided.status_code == 200 and decided.get_json()["escalation"]["status"] == "approved"
    history = client.get(f"/api/v1/conversations/{conversation}/messages", headers=as_bot).get_json()
    assert history["stage"] == "checking_answer" and history["messages"][-2]["role"] == "team"
    again = client.post(f"/api/v1/escalations/{mine['id']}/decision", headers=as_decider,
                        json={"outcome": "declined", "note": "no"})
    assert again.status_code == 409
    wrong = client.get("/api/v1/conversations", headers={"Authorization": "Bearer fl_nope_nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "unauthorized"
    tokens.revoke(bot.id)
    assert client.get("/api/v1/conversations", headers=as_bot).status_code == 401


def test_delete_my_history_over_the_api_leaves_other_users_alone(app, client):
    other = app.test_client()
    for who in (client, other):
        conversation = who.post("/api/v1/conversations").get_json()["conversation_id"]
        who.post(f"/api/v1/conversations/{conversation}/messages", json={"text": "The dashboard is slow"})
    deleted = client.delete("/api/v1/history")
    assert deleted.status_code == 200 and deleted.get_json()["deleted"]["messages"] >= 3
    assert client.get("/api/v1/conversations").get_json()["conversations"] == []
    assert len(other.get("/api/v1/conversations").get_json()["conversations"]) == 1


def test_token_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FIRSTLINE_DATA_DIR", str(tmp_path))
    assert main(["token", "create", "--user", "bot", "--role", "decider"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("fl_")
    assert main(["token", "revoke", token.split("_")[1]]) == 0
    assert main(["token", "revoke", "missing"]) == 1


def test_a_token_whose_secret_holds_underscores_still_identifies(app, monkeypatch):
    import engine.access.tokens

    monkeypatch.setattr(engine.access.tokens.secrets, "token_urlsafe", lambda n: "_sec_ret_")
    tokens = parts_of(app).tokens
    issued = tokens.create("underscore-bot")
    assert issued.token.split("_", 2)[2] == "_sec_ret_"
    assert tokens.identify(issued.token).user_id == "underscore-bot"
    assert tokens.identify(issued.token[:-1]) is None


def test_a_conversation_has_one_rating_the_latest_and_a_comment_has_a_limit(client, app):
    conversation = client.post("/api/v1/conversations").get_json()["conversation_id"]
    url = f"/api/v1/conversations/{conversation}/feedback"
    assert client.post(url, json={"rating": 5, "comment": "great"}).status_code == 200
    for _ in range(3):  # rating again and again replaces; it never piles up
        assert client.post(url, json={"rating": 1}).status_code == 200
    store = parts_of(app).store
    assert store.execute("SELECT rating, comment FROM feedback WHERE conversation_id = ?", (conversation,)) == [
        (1, "")]
    huge = client.post(url, json={"rating": 3, "comment": "x" * 900_000})
    assert huge.status_code == 400 and "the limit is 2,000" in huge.get_json()["error"]["message"]
    assert store.execute("SELECT rating FROM feedback WHERE conversation_id = ?", (conversation,)) == [(1,)]
    # Rated by typing into the chat, the same conversation still has one rating.
    client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": "The dashboard is loading really "
                                                                           "slowly"})
    checked = client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": "yes, it works now"})
    assert checked.get_json()["stage"] == "rating"
    client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": "4 " + "thanks " * 500})
    rows = store.execute("SELECT rating, length(comment) FROM feedback WHERE conversation_id = ?", (conversation,))
    assert rows == [(4, 2000)]
