"""Identity before account actions: a browser chats as the user the host app vouches for (an HMAC of their id
under the shared secret), and only then do remedies on their account run; anonymous chat still works."""

import pytest

from engine.access.identity import user_hash
from engine.access.tokens import Role
from engine.actions.catalogue import ACTIONS
from tests.conftest import build_parts, make_settings
from web import create_app

SECRET = "host-app-shared-secret-for-tests"
ACCOUNT_ACTIONS = {name for name, spec in ACTIONS.items() if spec.account}
LOCKED = "I typed my password wrong a few times and now the sign-in page says my account is locked"


@pytest.fixture
def app(tmp_path, knowledge):
    settings = make_settings(tmp_path, identity_secret=SECRET)
    parts = build_parts(settings, knowledge=knowledge)
    yield create_app(settings, parts)
    parts.close()


def ask(client, text, **kwargs):
    body = client.post("/api/v1/messages", json={"text": text}, **kwargs).get_json()
    return body, {a["name"]: a["status"] for a in body["actions"]}


def test_an_unverified_user_gets_no_unlock_and_is_told_what_to_do(app):
    body, actions = ask(app.test_client(), LOCKED)
    assert body["playbook"] == "account_locked_after_attempts", body
    assert actions.get("unlock_account") == "unverified"
    assert "Forgot password" in body["reply"] and "unlocked" not in body["reply"].lower()
    assert not [a for a in body["actions"] if a["name"] == "handoff"]  # not an engineering problem


def test_a_user_the_host_app_vouches_for_is_unlocked(app):
    client = app.test_client()
    vouched = client.post("/api/v1/identity", json={"user_id": "u-1042", "user_hash": user_hash(SECRET, "u-1042")})
    assert vouched.status_code == 200 and vouched.get_json() == {"user_id": "u-1042", "verified": True}
    body, actions = ask(client, LOCKED)
    assert actions.get("unlock_account") == "succeeded", body
    rows = app.extensions["firstline"].store.execute(
        "SELECT subject, status FROM remediations WHERE action = 'unlock_account'")
    assert rows == [("u-1042", "succeeded")]


def test_a_wrong_or_missing_signature_is_refused_logged_and_changes_nothing(app, caplog):
    client = app.test_client()
    forged = client.post("/api/v1/identity", json={"user_id": "u-1042", "user_hash": user_hash("guess", "u-1042")})
    assert forged.status_code == 401 and forged.get_json()["error"]["code"] == "unauthorized"
    assert "refused POST /api/v1/identity from 127.0.0.1" in caplog.text
    for bad in ({"user_id": "u-1042"}, {"user_id": 7, "user_hash": "ab"}, {"user_id": "", "user_hash": "ab"},
                {"user_id": "x" * 201, "user_hash": "ab"}):
        refused = client.post("/api/v1/identity", json=bad)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_body"
    _, actions = ask(client, LOCKED)
    assert actions.get("unlock_account") == "unverified"  # still anonymous


def test_a_signature_past_ascii_is_a_400_not_a_500(app):
    # Found by the fuzz (test_api_fuzz.py): hmac.compare_digest raises TypeError on a str with a non-ASCII
    # character, so `"user_hash": "é"` (or such an `email_hash`) answered 500.
    client = app.test_client()
    signed = user_hash(SECRET, "u-1042")
    for bad in ({"user_id": "u-1042", "user_hash": "é"}, {"user_id": "u-1042", "user_hash": signed + "é"},
                {"user_id": "u-1042", "user_hash": signed, "email": "ann@example.org", "email_hash": "ü"}):
        refused = client.post("/api/v1/identity", json=bad)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_body", bad
        assert "must be hex" in refused.get_json()["error"]["message"]
    _, actions = ask(client, LOCKED)
    assert actions.get("unlock_account") == "unverified"  # still anonymous


def test_without_a_configured_secret_nobody_is_verified(tmp_path, knowledge):
    settings = make_settings(tmp_path)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        client = create_app(settings, parts).test_client()
        refused = client.post("/api/v1/identity", json={"user_id": "u-1", "user_hash": user_hash("", "u-1")})
        assert refused.status_code == 401 and "identity_secret" in refused.get_json()["error"]["message"]
    finally:
        parts.close()


def test_a_token_the_operator_issued_vouches_for_its_user(app):
    token = app.extensions["firstline"].tokens.create("helpdesk-bot", Role.USER).token
    _, actions = ask(app.test_client(), LOCKED, headers={"Authorization": f"Bearer {token}"})
    assert actions.get("unlock_account") == "succeeded"


def test_signing_out_of_the_host_app_makes_the_browser_anonymous_again(app):
    client = app.test_client()
    client.post("/api/v1/identity", json={"user_id": "u-7", "user_hash": user_hash(SECRET, "u-7")})
    started = client.post("/api/v1/conversations").get_json()["conversation_id"]
    assert client.delete("/api/v1/identity").get_json() == {"verified": False}
    assert client.get(f"/api/v1/conversations/{started}/messages").status_code == 404  # u-7's, not this user's
    _, actions = ask(client, LOCKED)
    assert actions.get("unlock_account") == "unverified"


@pytest.mark.parametrize("text", [
    "I can't log in, it says my password is wrong",
    "sign-in keeps telling me the password is incorrect even though I'm sure it's right",
    "my password gets rejected every time, what do I do",
])
def test_my_password_is_wrong_from_an_unverified_user_changes_no_account(app, text):
    body, actions = ask(app.test_client(), text)
    changed = [name for name, status in actions.items() if name in ACCOUNT_ACTIONS and status == "succeeded"]
    assert changed == [], body
    rows = app.extensions["firstline"].store.execute(
        "SELECT action FROM remediations WHERE status NOT IN ('skipped', 'dry_run')")
    assert not {action for (action,) in rows} & ACCOUNT_ACTIONS
    if any(status == "unverified" for status in actions.values()):  # an account remedy was asked for: say why not
        assert "can't confirm" in body["reply"]
