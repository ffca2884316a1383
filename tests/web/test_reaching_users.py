"""Reaching users later, over HTTP: the host app gives the user's e-mail address with a signature that binds it to
the user (a forged one is refused and changes nothing), the conversation list marks an answer not read yet, and
engineers list and close hand-offs with their token."""

import pytest

from engine.access.identity import email_hash, user_hash
from engine.access.tokens import Role
from engine.desk.desk import Decider
from tests.conftest import ManualClock, build_parts, make_settings
from tests.engine.desk.test_reaching_users import handed_off
from web import create_app

SECRET = "host-app-shared-secret-for-tests"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def app(tmp_path, knowledge, clock):
    settings = make_settings(tmp_path, identity_secret=SECRET, monitor_enabled=False,
                             simulation_faults=["slow_queries"])
    parts = build_parts(settings, knowledge=knowledge, clock=clock)
    app = create_app(settings, parts)
    app.testing = True
    yield app
    parts.close()


def parts_of(app):
    return app.extensions["firstline"]


def identify(client, user="u-1042", email=None, signed_for=None, extra=None):
    body = {"user_id": user, "user_hash": user_hash(SECRET, user), **(extra or {})}
    if email is not None:
        body |= {"email": email, "email_hash": email_hash(SECRET, user, signed_for or email)}
    return client.post("/api/v1/identity", json=body)


def test_the_host_app_gives_an_address_signed_for_its_user(app):
    client = app.test_client()
    vouched = identify(client, email="ann@example.org")
    assert vouched.status_code == 200
    assert vouched.get_json() == {"user_id": "u-1042", "verified": True, "email": "ann@example.org"}
    assert parts_of(app).outreach.identities.email("u-1042") == "ann@example.org"
    again = identify(client)  # without an address: the one kept stays
    assert again.get_json() == {"user_id": "u-1042", "verified": True}
    assert parts_of(app).outreach.identities.email("u-1042") == "ann@example.org"
    identify(client, email="ann.new@example.org")
    assert parts_of(app).outreach.identities.email("u-1042") == "ann.new@example.org"


def test_a_forged_address_signature_is_refused_and_changes_nothing(app, caplog):
    client = app.test_client()
    # Mallory holds a valid user_hash for herself but a signature for her own address, not the stranger's.
    forged = identify(client, "u-7", email="stranger@example.org", signed_for="mallory@example.org")
    assert forged.status_code == 401
    error = forged.get_json()["error"]
    assert error["code"] == "unauthorized" and "`email_hash` does not match `user_id` and `email`" in error["message"]
    assert "refused POST /api/v1/identity" in caplog.text
    # Nor does another user's signature of that address carry over to her.
    other = client.post("/api/v1/identity", json={"user_id": "u-7", "user_hash": user_hash(SECRET, "u-7"),
                                                  "email": "stranger@example.org",
                                                  "email_hash": email_hash(SECRET, "u-8", "stranger@example.org")})
    assert other.status_code == 401
    assert parts_of(app).store.execute("SELECT count(*) FROM user_contacts") == [(0,)]
    assert client.post("/api/v1/conversations").status_code == 201  # still anonymous: refused whole, id included
    assert not parts_of(app).dialogue.conversations("u-7")


@pytest.mark.parametrize(("extra", "code", "fragment"), [
    ({"email": "ann@example.org"}, "invalid_body", "`email_hash` must come with `email`"),
    ({"email_hash": "ab" * 32}, "invalid_email", "`email` must be the user's e-mail address"),
    ({"email": "Ann <ann@example.org>", "email_hash": "ab"}, "invalid_email", "plain name@example.com"),
    ({"email": "ann@example.org\r\nBcc: x@y.org", "email_hash": "ab"}, "invalid_email", "plain name@example.com"),
    ({"email": "a" * 250 + "@x.org", "email_hash": "ab"}, "invalid_email", "at most 254"),
    ({"email": 7, "email_hash": "ab"}, "invalid_email", "non-empty string"),
])
def test_a_malformed_address_or_a_missing_signature_is_400_with_what_to_send(app, extra, code, fragment):
    refused = identify(app.test_client(), "u-9", extra=extra)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == code and fragment in refused.get_json()["error"]["message"]
    assert parts_of(app).outreach.identities.email("u-9") is None


def test_the_conversation_list_marks_an_answer_not_read_yet(app, clock):
    client = app.test_client()
    identify(client, email="ann@example.org")
    conversation = client.post("/api/v1/conversations").get_json()["conversation_id"]
    turn = client.post(f"/api/v1/conversations/{conversation}/messages",
                       json={"text": "We're a registered charity. Can we get a non-profit discount?"}).get_json()
    assert turn["stage"] == "awaiting_decision", turn
    listed = client.get("/api/v1/conversations").get_json()["conversations"]
    assert [(c["id"], c["unseen_answer"], c["answered_at"]) for c in listed] == [(conversation, False, None)]
    clock.advance(3600)
    (row,) = parts_of(app).dialogue.escalations.find(["open"])
    parts_of(app).desk.decide(row.id, Decider("dana"), "approved", "Granted for a year.")
    clock.advance(60)
    (listed,) = client.get("/api/v1/conversations").get_json()["conversations"]
    assert listed["unseen_answer"] is True and listed["answered_at"] == clock.now - 60
    history = client.get(f"/api/v1/conversations/{conversation}/messages").get_json()
    assert "Granted for a year." in history["messages"][-1]["text"] + history["messages"][-2]["text"]
    (listed,) = client.get("/api/v1/conversations").get_json()["conversations"]
    assert listed["unseen_answer"] is False
    assert parts_of(app).outreach.sender.send_due().seen  # read in the chat: no e-mail for it


def test_engineers_list_and_close_handoffs_with_their_token_and_nobody_else_does(app):
    parts = parts_of(app)
    user = app.test_client()
    user.get("/api/v1/conversations")  # the chat's cookie: this browser's user
    with user.session_transaction() as cookie:
        user_id = cookie["user_id"]
    row, conversation = handed_off(parts, user_id)
    engineer = parts.tokens.create("sam", Role.ENGINEER).token
    decider = parts.tokens.create("dana", Role.DECIDER).token

    anonymous = app.test_client().get("/api/v1/handoffs")
    assert anonymous.status_code == 401 and "engineer's token" in anonymous.get_json()["error"]["message"]
    wrong = app.test_client().post(f"/api/v1/handoffs/{row['id']}/close", json={"note": "x"},
                                   headers={"Authorization": f"Bearer {decider}"})
    assert wrong.status_code == 403 and "only engineers" in wrong.get_json()["error"]["message"]

    auth = {"Authorization": f"Bearer {engineer}"}
    listed = app.test_client().get("/api/v1/handoffs", headers=auth).get_json()["handoffs"]
    assert [h["id"] for h in listed] == [row["id"]] and listed[0]["conversation_id"] == conversation
    empty = app.test_client().post(f"/api/v1/handoffs/{row['id']}/close", json={"note": ""}, headers=auth)
    assert empty.status_code == 400 and "a note is required" in empty.get_json()["error"]["message"]
    closed = app.test_client().post(f"/api/v1/handoffs/{row['id']}/close", headers=auth,
                                    json={"note": "A stuck report query was slowing the dashboard; it is fixed"})
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed by sam"
    history = user.get(f"/api/v1/conversations/{conversation}/messages").get_json()["messages"]
    assert history[-1]["role"] == "team" and "it is fixed." in history[-1]["text"]
    again = app.test_client().post(f"/api/v1/handoffs/{row['id']}/close", json={"note": "x"}, headers=auth)
    assert again.status_code == 409
    unknown = app.test_client().get("/api/v1/handoffs/nope", headers=auth)
    assert unknown.status_code == 404

    parts.users.create("sam", "engineer", PASSWORD)
    parts.users.disable("sam")  # a token does not outlive its owner's staff account
    assert app.test_client().get("/api/v1/handoffs", headers=auth).status_code == 403
