"""Reaching users later, over HTTP: the host app gives the user's e-mail address with a signature that binds it to
the user (a forged one is refused and changes nothing), the conversation list marks an answer not read yet,
engineers list and close hand-offs with their token, and the e-mail's link comes back: its signed token lets a
browser that never chatted (the widget's user, whose session lived in the host page's frame) continue as the user
it was sent to, on that conversation; a changed, expired or other conversation's token shows a notice and nothing
of it; a browser vouched for as someone else is not taken over; links without a token work as before. Real parts,
a real SMTP server on loopback, a manual clock."""

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from core.settings import load_settings
from engine.access.identity import email_hash, user_hash
from engine.access.tokens import Role
from engine.desk.desk import Decider
from tests.conftest import ManualClock, build_parts, make_settings
from tests.engine.desk.test_reaching_users import handed_off
from tests.web.test_widget import framed
from web import create_app

SECRET = "host-app-shared-secret-for-tests"
PASSWORD = "correct horse battery staple"
CHAT = "https://support.jtp.example"
USER, EMAIL = "u-1042", "ann@example.org"
REASON = "Granted for a year."
HOUR, DAY = 3600.0, 86400.0
EXPIRED = "This link has expired: the links in our e-mails work for 14 days. To see your conversations, open the " \
          "chat from Job Tracker Pro."
INVALID = "This link doesn't work: it may have been cut short or changed on the way"
OTHER_ACCOUNT = "This link was sent to another account than the one signed in to the chat in this browser"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def app(tmp_path, knowledge, clock, mailbox):
    settings = make_settings(tmp_path, identity_secret=SECRET, monitor_enabled=False,
                             simulation_faults=["slow_queries"], **mailbox.settings(CHAT))
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


# -- the e-mail's link back -------------------------------------------------------------------------------

def answered_in_the_widget(app, clock, mailbox):
    """A user the host app vouches for (with their address) asks in the widget's frame for a discount, leaves, and
    a decider approves it: the e-mail's link, and the conversation."""
    client = app.test_client()
    _, session = framed(client, "GET", "/api/v1/conversations", "new")
    vouched, session = framed(client, "POST", "/api/v1/identity", session, json={
        "user_id": USER, "user_hash": user_hash(SECRET, USER), "email": EMAIL,
        "email_hash": email_hash(SECRET, USER, EMAIL)})
    assert vouched.status_code == 200, vouched.get_json()
    created, session = framed(client, "POST", "/api/v1/conversations", session)
    conversation = created.get_json()["conversation_id"]
    turn, _ = framed(client, "POST", f"/api/v1/conversations/{conversation}/messages", session,
                     json={"text": "We're a registered charity. Can we get a non-profit discount?"})
    assert turn.get_json()["stage"] == "awaiting_decision", turn.get_json()
    clock.advance(HOUR)  # she closed the host app's page long ago
    (row,) = parts_of(app).dialogue.escalations.find(["open"])
    parts_of(app).desk.decide(row.id, Decider("dana"), "approved", REASON)
    assert len(parts_of(app).outreach.sender.send_due().sent) == 1
    (mail,) = mailbox.received
    (link,) = re.findall(r"https://\S+", mail.text)
    return link, conversation


def path_of(link):
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def query_of(link):
    return {key: values[0] for key, values in parse_qs(urlsplit(link).query).items()}


def opened(client, path):
    """GET `path` as a browser does: the redirect, then the page it leads to."""
    first = client.get(path)
    assert first.status_code == 303, (path, first.status_code)
    return first.headers["Location"], client.get(first.headers["Location"]).get_data(as_text=True)


def text(page):
    """The page's text as a person reads it (the template escapes apostrophes)."""
    return page.replace("&#39;", "'")


def shows_nothing_of(client, conversation):
    assert client.get("/api/v1/conversations").get_json()["conversations"] == []
    assert client.get(f"/api/v1/conversations/{conversation}/messages").status_code == 404


def test_the_link_opens_a_widget_users_conversation_in_a_browser_that_never_chatted(app, clock, mailbox):
    link, conversation = answered_in_the_widget(app, clock, mailbox)
    assert link.startswith(f"{CHAT}/?conversation={conversation}&token=")
    clock.advance(2 * DAY)
    browser = app.test_client()  # no cookie, no frame session: before the token, a stranger
    location, page = opened(browser, path_of(link))
    assert location == f"/?conversation={conversation}"  # the token leaves the address at once
    assert 'id="notice" class="notice" role="alert" hidden' in page
    (listed,) = browser.get("/api/v1/conversations").get_json()["conversations"]
    assert listed["id"] == conversation and listed["unseen_answer"] is True  # "New answer" in the list
    messages = browser.get(f"/api/v1/conversations/{conversation}/messages").get_json()["messages"]
    assert any(m["role"] == "team" and REASON in m["text"] for m in messages)
    with browser.session_transaction() as cookie:
        assert cookie["user_id"] == USER and "verified" not in cookie  # an account action needs the host app again
    # It made her the chat's user, nothing more: no staff page or endpoint opens.
    assert browser.get("/api/v1/escalations").status_code == 401
    desk = browser.get("/desk/")
    assert desk.status_code == 403 and "This page is for deciders: sign in" in desk.get_data(as_text=True)
    # Opened again (a second click in the mail) in the same browser: the same, once more.
    assert opened(browser, path_of(link))[0] == f"/?conversation={conversation}"


def test_a_link_without_a_token_is_answered_as_before(app, clock, mailbox):
    _, conversation = answered_in_the_widget(app, clock, mailbox)
    browser = app.test_client()
    page = browser.get(f"/?conversation={conversation}")  # an e-mail sent before links carried a token
    assert page.status_code == 200  # the page asks for the conversation, and says it isn't theirs (chat.js)
    shows_nothing_of(browser, conversation)


@pytest.mark.parametrize("change", ["later", "another user", "signature", "cut short", "empty", "garbage"])
def test_a_changed_token_is_refused_with_a_notice_and_shows_nothing(app, clock, mailbox, caplog, change):
    link, conversation = answered_in_the_widget(app, clock, mailbox)
    token = query_of(link)["token"]
    expires, user, mac = token.split(".")
    changed = {"later": f"{int(expires) + 365 * DAY:.0f}.{user}.{mac}",
               "another user": f"{expires}.{parts_of(app).outreach.links.token('u-7', conversation).split('.')[1]}"
                               f".{mac}",
               "signature": f"{expires}.{user}.{mac[:10]}{'B' if mac[10] == 'A' else 'A'}{mac[11:]}",
               "cut short": token[:-5], "empty": "", "garbage": "<script>alert(1)</script>"}[change]
    browser = app.test_client()
    location, page = opened(browser, "/?" + urlencode({"conversation": conversation, "token": changed}))
    assert location == "/"  # nothing of the link's conversation, not even its id
    assert INVALID in text(page) and conversation not in page and "Traceback" not in page
    shows_nothing_of(browser, conversation)
    assert "refused a notification link from 127.0.0.1: invalid" in caplog.text
    assert not changed or changed not in caplog.text  # the token is never logged
    again = browser.get("/").get_data(as_text=True)  # said once: a reload shows the chat alone
    assert INVALID not in text(again) and 'role="alert" hidden' in again


def test_an_expired_link_says_so_and_shows_nothing(app, clock, mailbox):
    link, conversation = answered_in_the_widget(app, clock, mailbox)
    clock.advance(14 * DAY + 1)  # the e-mail was sent at the decision's time; the link lives 14 days from then
    browser = app.test_client()
    location, page = opened(browser, path_of(link))
    assert location == "/" and EXPIRED in text(page)
    shows_nothing_of(browser, conversation)


def test_a_token_for_one_conversation_does_not_open_another(app, clock, mailbox):
    link, conversation = answered_in_the_widget(app, clock, mailbox)
    other = parts_of(app).dialogue.start(USER, "web").conversation_id  # hers too: still not what the link names
    stranger = parts_of(app).dialogue.start("u-7", "web").conversation_id
    token = query_of(link)["token"]
    for target in (other, stranger):
        browser = app.test_client()
        location, page = opened(browser, f"/?conversation={target}&token={token}")
        assert location == "/" and INVALID in text(page) and target not in page
        shows_nothing_of(browser, conversation)
        shows_nothing_of(browser, target)


def test_a_browser_the_host_app_vouched_for_as_someone_else_is_not_taken_over(app, clock, mailbox):
    link, conversation = answered_in_the_widget(app, clock, mailbox)
    browser = app.test_client()
    browser.post("/api/v1/identity", json={"user_id": "u-7", "user_hash": user_hash(SECRET, "u-7")})
    mine = browser.post("/api/v1/conversations").get_json()["conversation_id"]
    location, page = opened(browser, path_of(link))
    assert location == "/" and OTHER_ACCOUNT in text(page)
    assert [c["id"] for c in browser.get("/api/v1/conversations").get_json()["conversations"]] == [mine]
    assert browser.get(f"/api/v1/conversations/{conversation}/messages").status_code == 404
    with browser.session_transaction() as cookie:
        assert cookie["user_id"] == "u-7" and cookie["verified"] is True
    # Her own browser, vouched for as her, just goes on (still vouched for).
    hers = app.test_client()
    hers.post("/api/v1/identity", json={"user_id": USER, "user_hash": user_hash(SECRET, USER)})
    assert opened(hers, path_of(link))[0] == f"/?conversation={conversation}"
    with hers.session_transaction() as cookie:
        assert cookie["user_id"] == USER and cookie["verified"] is True


def test_the_links_lifetime_is_a_setting(tmp_path):
    settings = load_settings(environ={"FIRSTLINE_NOTIFY_LINK_TTL_S": "3600"}, default_file=None, data_dir=tmp_path)
    assert settings.notify_link_ttl_s == 3600
    assert make_settings(tmp_path).notify_link_ttl_s == 14 * DAY
