"""The decider desk over HTTP: sign-in with a password, 403 for everyone else on every page (401 on the API
without a token), CSRF on every form, the JSON twins (and the first API's words still accepted), and the desk's
refusals as clear messages that change nothing."""

import re

import pytest

from engine.access.tokens import Role
from tests.conftest import ManualClock, build_parts, make_settings
from web import create_app

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path, knowledge):
    settings = make_settings(tmp_path, monitor_enabled=False)
    parts = build_parts(settings, knowledge=knowledge, clock=ManualClock())
    parts.users.create("dana", "decider", PASSWORD)
    parts.users.create("pat", "decider", PASSWORD, categories=("pricing",))
    parts.users.create("cora", "curator", PASSWORD)
    app = create_app(settings, parts)
    app.testing = True
    yield app
    parts.close()


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()


def digest_of(page: bytes) -> str:
    return re.search(rb'name="digest" value="([^"]+)"', page).group(1).decode()


def sign_in(app, name="dana", password=PASSWORD):
    client = app.test_client()
    csrf = csrf_of(client.get("/desk/login").data)
    response = client.post("/desk/login", data={"name": name, "password": password, "csrf": csrf})
    return client, response


def escalate(app, user, text):
    parts = app.extensions["firstline"]
    exchange = parts.dialogue.turn(text, user)
    (row,) = [r for r in parts.dialogue.escalations.find(["open"]) if r.conversation_id == exchange.conversation_id]
    return row.id, exchange.conversation_id


def test_only_deciders_sign_in_and_everyone_else_gets_403_everywhere(app, caplog):
    escalation_id, _ = escalate(app, "eve", "Can we get a non-profit discount?")
    anonymous = app.test_client()
    pages = ["/desk/", f"/desk/{escalation_id}", "/desk/?status=decided"]
    forms = [f"/desk/{escalation_id}/decision", f"/desk/{escalation_id}/question", "/desk/logout"]
    _, wrong = sign_in(app, password="not the password")
    assert wrong.status_code == 401 and b"do not open the desk" in wrong.data
    curator, refused = sign_in(app, "cora")
    assert refused.status_code == 401
    assert "refused desk sign-in for 'cora'" in caplog.text
    token = app.extensions["firstline"].tokens.create("cy", Role.CURATOR).token
    for client in (anonymous, curator):
        for page in pages:
            response = client.get(page)
            assert response.status_code == 403 and b"Sign in" in response.data, page
        for form in forms[:2]:
            assert client.post(form, data={"outcome": "approved"}).status_code == 403
    for url in ("/api/v1/escalations", f"/api/v1/escalations/{escalation_id}"):
        assert anonymous.get(url).status_code == 401  # no token: sign in with one
        assert anonymous.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 403  # the wrong one
    refused = anonymous.post(f"/api/v1/escalations/{escalation_id}/decision", json={"outcome": "approved"})
    assert refused.status_code == 401 and "decider's token" in refused.get_json()["error"]["message"]
    client, accepted = sign_in(app)
    assert accepted.status_code == 302 and client.get("/desk/").status_code == 200


def test_every_form_needs_the_csrf_value_and_a_refusal_changes_nothing(app):
    parts = app.extensions["firstline"]
    escalation_id, _ = escalate(app, "eve", "Can we get a non-profit discount?")
    client, _ = sign_in(app)
    page = client.get(f"/desk/{escalation_id}").data
    digest = digest_of(page)
    no_csrf = client.post(f"/desk/{escalation_id}/decision", data={"outcome": "rejected", "reason": "no",
                                                                   "digest": digest})
    assert no_csrf.status_code == 400 and b"reload the page" in no_csrf.data
    csrf = csrf_of(page)
    empty = client.post(f"/desk/{escalation_id}/decision", data={"outcome": "rejected", "reason": " ",
                                                                 "digest": digest, "csrf": csrf})
    assert empty.status_code == 400 and b"a reason is required to reject" in empty.data
    tampered = client.post(f"/desk/{escalation_id}/decision", data={"outcome": "approved", "reason": "fine",
                                                                    "digest": "f" * 32, "csrf": csrf})
    assert tampered.status_code == 409 and b"changed since your page was loaded" in tampered.data
    assert parts.dialogue.escalations.get(escalation_id).status == "open"
    done = client.post(f"/desk/{escalation_id}/decision", data={"outcome": "rejected", "digest": digest,
                                                                "reason": "For registered charities only.",
                                                                "csrf": csrf})
    assert done.status_code == 302
    again = client.post(f"/desk/{escalation_id}/decision", data={"outcome": "approved", "reason": "oops",
                                                                 "digest": digest, "csrf": csrf})
    assert again.status_code == 409 and b"already rejected by dana" in again.data
    assert client.get("/desk/nope").status_code == 404


def test_a_decider_limited_to_pricing_cannot_decide_a_policy_request(app):
    policy_id, _ = escalate(app, "eve", "Please delete all of our data and close the account.")
    pricing_id, _ = escalate(app, "fay", "Can we get a non-profit discount?")
    client, _ = sign_in(app, "pat")
    queue = client.get("/desk/?status=all").data
    assert pricing_id.encode() in queue and policy_id.encode() not in queue
    assert client.get(f"/desk/{policy_id}").status_code == 403
    csrf = csrf_of(client.get(f"/desk/{pricing_id}").data)
    refused = client.post(f"/desk/{policy_id}/decision", data={"outcome": "approved", "reason": "ok", "csrf": csrf})
    assert refused.status_code == 403
    assert app.extensions["firstline"].dialogue.escalations.get(policy_id).status == "open"


def test_the_json_twins_answer_with_a_deciders_token(app):
    parts = app.extensions["firstline"]
    escalation_id, conversation_id = escalate(app, "eve", "Can we get a non-profit discount?")
    headers = {"Authorization": f"Bearer {parts.tokens.create('dana', Role.DECIDER).token}"}
    client = app.test_client()
    listed = client.get("/api/v1/escalations", headers=headers).get_json()["escalations"]
    assert [r["id"] for r in listed] == [escalation_id]
    assert {"request", "topic", "who", "due_at", "remaining_s", "warning"} <= set(listed[0])
    detail = client.get(f"/api/v1/escalations/{escalation_id}", headers=headers).get_json()
    assert list(detail)[:3] == ["escalation", "facts", "options"] and detail["digest"]
    assert client.get("/api/v1/escalations?status=done", headers=headers).status_code == 400
    assert client.get("/api/v1/escalations/nope", headers=headers).status_code == 404
    asked = client.post(f"/api/v1/escalations/{escalation_id}/question", headers=headers,
                        json={"question": "How many seats?"})
    assert asked.status_code == 200 and asked.get_json()["escalation"]["status"] == "asked"
    # The first API's words still work: outcome "declined" and the reason as "note".
    decided = client.post(f"/api/v1/escalations/{escalation_id}/decision", headers=headers,
                          json={"outcome": "declined", "note": "Only for registered charities."})
    assert decided.status_code == 200 and decided.get_json()["escalation"]["status"] == "rejected"
    assert [r["id"] for r in client.get("/api/v1/escalations?status=decided", headers=headers)
            .get_json()["escalations"]] == [escalation_id]
    texts = [m["text"] for m in parts.assistant.history(conversation_id, "eve")]
    assert "How many seats?" in texts and any("Only for registered charities." in t for t in texts)
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    one = "/api/v1/escalations/{escalation_id}"
    assert {"/api/v1/escalations", one, f"{one}/decision", f"{one}/question"} <= set(paths)


def test_bad_bodies_get_clear_messages(app):
    parts = app.extensions["firstline"]
    escalation_id, _ = escalate(app, "eve", "Can we get a non-profit discount?")
    headers = {"Authorization": f"Bearer {parts.tokens.create('dana', Role.DECIDER).token}"}
    client = app.test_client()
    url = f"/api/v1/escalations/{escalation_id}/decision"
    for body, status, words in (({}, 400, "`outcome` is required"), ({"outcome": "yes"}, 400, '"approved" or'),
                                ({"outcome": "rejected"}, 400, "reason is required"),
                                ({"outcome": "approved", "reason": 5}, 400, "`reason` must be a string"),
                                ({"outcome": "approved", "reason": "x" * 2001}, 400, "limit is 2,000"),
                                ({"outcome": "rejected", "reason": "no", "not_business": "yes"}, 400,
                                 "`not_business` must be true or false"),
                                ({"outcome": "approved", "not_business": True}, 400, "only a rejected request"),
                                ({"outcome": "approved", "digest": "abc"}, 409, "changed since")):
        response = client.post(url, headers=headers, json=body)
        assert response.status_code == status and words in response.get_json()["error"]["message"], body
    assert parts.dialogue.escalations.get(escalation_id).status == "open"


def test_a_capacity_request_page_shows_usage_growth_and_time_to_the_limit(app):
    parts = app.extensions["firstline"]
    now = parts.desk.clock()
    for day in range(8):  # the database pool fills 3 points a day from 50%; its limit is 90%
        parts.healing.ledger.record_samples(now - (7 - day) * 86400, {"database": {"pool_used_pct": 50.0 + 3 * day}},
                                            "test")
    escalation_id, _ = escalate(app, "acme", "We are onboarding 8,000 users next month. Can the servers handle it?")
    client, _ = sign_in(app)
    page = client.get(f"/desk/{escalation_id}").data.decode()
    assert "Measured usage (telemetry)" in page
    row = page[page.index("database pool used pct"):]
    row = row[:row.index("</tr>")]
    assert "71 percent (79% of limit)" in row and "+3 percent" in row and "fitted over 7 days" in row
    assert "6.3 days" in row


def test_a_disabled_deciders_token_decides_nothing_and_notices_come_only_from_the_server(app):
    parts = app.extensions["firstline"]
    escalation_id, _ = escalate(app, "eve", "Can we get a non-profit discount?")
    headers = {"Authorization": f"Bearer {parts.tokens.create('pat', Role.DECIDER).token}"}
    parts.users.disable("pat")
    client = app.test_client()
    refused = client.post(f"/api/v1/escalations/{escalation_id}/decision", headers=headers,
                          json={"outcome": "approved", "reason": "ok"})
    assert refused.status_code == 403 and "disabled" in refused.get_json()["error"]["message"]
    assert parts.dialogue.escalations.get(escalation_id).status == "open"
    signed, _ = sign_in(app)
    page = signed.get("/desk/?notice=Legal+says+approve+it+now").data
    assert b"Legal says approve it now" not in page
