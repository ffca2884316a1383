"""The outbox's sender against a real SMTP server on loopback (aiosmtpd), on a real store with a manual clock: one
e-mail per notice to a user who left, none to one still on the chat or without an address, retries with backoff
while the mail server is down, nothing lost across a crash, never two e-mails for one notice."""

from __future__ import annotations

import threading

import pytest

from core.errors import ConfigurationError
from engine.notify.mail import Letterhead
from engine.notify.presence import Presence
from engine.notify.sender import NO_ADDRESS, OFF, Sender, SenderTimer, SendPolicy
from engine.notify.smtp import SmtpConfig, SmtpTransport
from engine.store import DuckDBStore, Notifications
from engine.store.notifications import Notice, NoticeKind, NoticeStatus
from tests.conftest import make_settings
from tests.mailbox import SENDER as FROM
from tests.mailbox import Mailbox

CHAT = "https://support.jtp.example"
POLICY = SendPolicy(away_s=300, max_attempts=4, retry_s=60, stale_s=600)
APPROVED = "Good news: the Job Tracker Pro team approved your request (Non-profit discount). Granted for a year."


@pytest.fixture
def notices(store):
    return Notifications(store)


def sender_for(notices, clock, port, policy=POLICY, instance=None):
    config = SmtpConfig("127.0.0.1", port, "none", "", "", 5.0, FROM, CHAT)
    return Sender(notices, SmtpTransport(config), Letterhead(FROM, "Job Tracker Pro", CHAT), policy, clock,
                  instance)


def queue(store, clock, notice_id="n1", user="ann", conversation="c-ann", kind=NoticeKind.APPROVED, text=APPROVED):
    """A notice committed as its cause commits it (one statement of a transaction), now."""
    store.transaction([Notifications.notice_sql(Notice(notice_id, user, conversation, kind, "esc-1", text,
                                                       clock.now))])


def said(store, user, conversation, at):
    store.transaction([("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                        (f"m-{user}-{at}", conversation, user, "user", "hello", at))])


def test_a_decision_for_a_user_who_left_is_emailed_once_with_the_right_headers(store, clock, notices, mailbox):
    notices.set_email("ann", "ann@example.org", clock.now)
    said(store, "ann", "c-ann", clock.now - 3600)  # wrote an hour ago, gone since
    queue(store, clock)
    sender = sender_for(notices, clock, mailbox.port)
    report = sender.send_due()
    assert report.sent == ["n1"] and len(mailbox.received) == 1
    (mail,) = mailbox.received
    assert mail.recipients == ["ann@example.org"]
    message = mail.message
    assert message["To"] == "ann@example.org" and message["From"] == FROM
    assert message["Subject"] == "Good news about your Job Tracker Pro request"
    assert message["Message-ID"] == "<notice-n1@jtp.example>" and message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"  # the manual clock's now
    assert message.get_content_type() == "text/plain"
    body = " ".join(mail.text.split())  # lines are wrapped at 72
    assert body.startswith("Hi, Good news: the Job Tracker Pro team approved your request (Non-profit discount). "
                           "Granted for a year.")
    assert f"{CHAT}/?conversation=c-ann" in mail.text.splitlines()  # the link on a line of its own, unbroken
    assert "The Job Tracker Pro assistant" in body and "Replies to this e-mail aren't read" in body
    assert notices.get("n1").status is NoticeStatus.SENT and notices.get("n1").attempts == 1
    assert sender.send_due().sent == [] and len(mailbox.received) == 1  # never twice


def test_a_question_mail_quotes_the_question_and_says_where_to_answer(store, clock, notices, mailbox):
    notices.set_email("ann", "ann@example.org", clock.now)
    queue(store, clock, kind=NoticeKind.ASKED, text="What is your charity's registration number?")
    sender_for(notices, clock, mailbox.port).send_due()
    (mail,) = mailbox.received
    assert mail.message["Subject"] == "A question about your Job Tracker Pro request"
    assert "    What is your charity's registration number?" in mail.text.splitlines()
    assert "reply there" in mail.text


def test_a_user_still_on_the_chat_gets_no_email_and_reading_it_there_settles_it(store, clock, notices, mailbox):
    presence = Presence(notices, clock)
    notices.set_email("ann", "ann@example.org", clock.now)
    presence.reading("ann", "c-ann", clock.now)  # the page is open, polling
    clock.advance(5)
    queue(store, clock)
    sender = sender_for(notices, clock, mailbox.port)
    assert sender.send_due().waiting == ["n1"]
    assert notices.get("n1").next_at == clock.now - 5 + POLICY.away_s  # looked at again once she has been gone 300 s
    clock.advance(3)
    presence.reading("ann", "c-ann", clock.now - 3)  # the next poll shows the answer
    clock.advance(POLICY.away_s)
    assert sender.send_due().seen == ["n1"] and mailbox.received == []
    assert presence.unseen("ann") == {}


def test_a_user_on_the_chat_who_leaves_without_reading_it_is_emailed_once_away(store, clock, notices, mailbox):
    presence = Presence(notices, clock)
    notices.set_email("ann", "ann@example.org", clock.now)
    presence.reading("ann", "c-other", clock.now)  # looking at another conversation
    queue(store, clock)
    sender = sender_for(notices, clock, mailbox.port)
    assert sender.send_due().waiting == ["n1"]
    assert presence.unseen("ann") == {"c-ann": clock.now}  # the list marks it
    clock.advance(POLICY.away_s - 1)
    assert sender.send_due().sent == []  # not due yet
    clock.advance(1)
    assert sender.send_due().sent == ["n1"] and len(mailbox.received) == 1


def test_no_address_or_email_off_sends_nothing_and_says_why(store, clock, notices, mailbox):
    queue(store, clock, "n1", user="bob", conversation="c-bob")
    assert sender_for(notices, clock, mailbox.port).send_due().skipped == ["n1"]
    assert notices.get("n1").status is NoticeStatus.SKIPPED and notices.get("n1").last_error == NO_ADDRESS
    notices.set_email("cy", "cy@example.org", clock.now)
    queue(store, clock, "n2", user="cy", conversation="c-cy")
    off = Sender(notices, None, None, POLICY, clock)
    assert not off.enabled and off.send_due().skipped == ["n2"]
    assert notices.get("n2").last_error == OFF
    assert mailbox.received == [] and off.status()["email"] == "off"


def test_the_mail_server_down_is_retried_with_backoff_then_delivered_when_it_is_back(store, clock, notices):
    down = Mailbox()  # a free port nobody listens on yet
    notices.set_email("ann", "ann@example.org", clock.now)
    queue(store, clock)
    sender = sender_for(notices, clock, down.port)
    assert sender.send_due().retrying == ["n1"]
    row = notices.get("n1")
    assert row.status is NoticeStatus.PENDING and row.attempts == 1 and row.next_at == clock.now + 60
    assert f"could not talk to the mail server at 127.0.0.1:{down.port}" in row.last_error
    clock.advance(59)
    assert sender.send_due().retrying == []  # not before its time
    clock.advance(1)
    assert sender.send_due().retrying == ["n1"] and notices.get("n1").next_at == clock.now + 120  # doubled
    down.start()
    try:
        clock.advance(120)
        assert sender.send_due().sent == ["n1"]
        assert len(down.received) == 1 and notices.get("n1").attempts == 3 and notices.get("n1").last_error is None
    finally:
        down.stop()


def test_attempts_are_bounded_then_failed_with_the_error_kept_and_retry_sends_it_again(store, clock, notices):
    box = Mailbox()
    notices.set_email("ann", "ann@example.org", clock.now)
    queue(store, clock)
    sender = sender_for(notices, clock, box.port, SendPolicy(away_s=300, max_attempts=2, retry_s=60))
    assert sender.send_due().retrying == ["n1"]
    clock.advance(60)
    assert sender.send_due().failed == ["n1"]
    row = notices.get("n1")
    assert row.status is NoticeStatus.FAILED and row.attempts == 2 and "could not talk" in row.last_error
    clock.advance(3600)
    assert sender.send_due().sent == []  # failed stays failed: nothing is lost, nothing is sent behind anyone's back
    assert sender.status()["recent"][0]["status"] == "failed"
    box.start()
    try:
        assert sender.retry()["requeued"] == ["n1"]
        assert sender.send_due().sent == ["n1"] and len(box.received) == 1
    finally:
        box.stop()


def test_an_address_the_mail_server_refuses_fails_at_once(store, clock, notices, mailbox):
    mailbox.refuse_with = "550 5.1.1 <ann@example.org>: no such user"
    notices.set_email("ann", "ann@example.org", clock.now)
    queue(store, clock)
    assert sender_for(notices, clock, mailbox.port).send_due().failed == ["n1"]
    row = notices.get("n1")
    assert row.attempts == 1 and "refused the recipient: 550 5.1.1" in row.last_error


def test_a_notice_committed_before_a_crash_is_sent_when_the_sender_starts_again(settings, clock, mailbox):
    first = DuckDBStore(settings.database_path, clock)
    Notifications(first).set_email("ann", "ann@example.org", clock.now)
    queue(first, clock)
    first.close()  # the process ends between the commit and any sending
    clock.advance(30)
    again = DuckDBStore(settings.database_path, clock)
    try:
        assert sender_for(Notifications(again), clock, mailbox.port).send_due().sent == ["n1"]
        assert len(mailbox.received) == 1
    finally:
        again.close()


def test_a_notice_left_half_sent_by_a_stopped_sender_is_never_sent_again(store, clock, notices, mailbox):
    notices.set_email("ann", "ann@example.org", clock.now)
    queue(store, clock)
    assert notices.claim("n1", "a-sender-that-died", clock.now)
    sender = sender_for(notices, clock, mailbox.port)
    assert sender.send_due().abandoned == []  # it may still be sending
    clock.advance(POLICY.stale_s + 1)
    assert sender.send_due().abandoned == ["n1"]
    row = notices.get("n1")
    assert row.status is NoticeStatus.FAILED and "not sent again" in row.last_error and mailbox.received == []


def test_two_senders_at_once_send_one_email(store, clock, notices, mailbox):
    notices.set_email("ann", "ann@example.org", clock.now)
    for n in range(5):
        queue(store, clock, f"n{n}")
    senders = [sender_for(notices, clock, mailbox.port, instance=name) for name in ("a", "b")]
    threads = [threading.Thread(target=s.send_due) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(m.message["Message-ID"] for m in mailbox.received) == [f"<notice-n{n}@jtp.example>"
                                                                        for n in range(5)]
    assert notices.counts()["sent"] == 5


def test_each_mail_carries_its_own_users_answer_only(store, clock, notices, mailbox):
    notices.set_email("ann", "ann@example.org", clock.now)
    notices.set_email("bob", "bob@example.org", clock.now)
    queue(store, clock, "n1", "ann", "c-ann", text="Ann's request was approved.")
    queue(store, clock, "n2", "bob", "c-bob", NoticeKind.REJECTED, text="Bob's request was not approved.")
    sender_for(notices, clock, mailbox.port).send_due()
    by_address = {m.recipients[0]: m.text for m in mailbox.received}
    assert set(by_address) == {"ann@example.org", "bob@example.org"}
    assert "Ann's" in by_address["ann@example.org"] and "Bob" not in by_address["ann@example.org"]
    assert "c-bob" not in by_address["ann@example.org"] and "c-ann" not in by_address["bob@example.org"]


def test_presence_writes_a_poll_only_when_it_shows_something_new_or_has_grown_old(store, clock, notices):
    presence = Presence(notices, clock, resolution_s=30)
    presence.reading("ann", "c1", clock.now - 100)
    first = clock.now
    clock.advance(5)
    presence.reading("ann", "c1", first - 100)  # nothing new within 30 s: not written
    assert store.execute("SELECT seen_at FROM user_presence") == [(first,)]
    queue(store, clock, "n1", "ann", "c1")
    clock.advance(1)
    presence.reading("ann", "c1", clock.now - 1)  # shows the new answer: written at once
    assert store.execute("SELECT seen_at FROM user_presence") == [(clock.now,)] and presence.unseen("ann") == {}
    clock.advance(31)
    presence.reading("ann", "c1", first)  # nothing new, but the last write is old: written
    assert store.execute("SELECT seen_at FROM user_presence") == [(clock.now,)]
    assert notices.last_active("ann") == clock.now


def test_writing_in_a_conversation_counts_as_reading_it(store, clock, notices):
    queue(store, clock, "n1", "ann", "c1")
    assert notices.unseen("ann") == {"c1": clock.now}
    clock.advance(1)
    said(store, "ann", "c1", clock.now)
    assert notices.unseen("ann") == {} and notices.seen_since("ann", "c1", clock.now - 1)


@pytest.mark.parametrize(("overrides", "key", "fragment"), [
    ({"smtp_from": ""}, "smtp_from", "FIRSTLINE_SMTP_FROM"),
    ({"smtp_from": "not an address"}, "smtp_from", "FIRSTLINE_SMTP_FROM"),
    ({"public_url": ""}, "public_url", "FIRSTLINE_PUBLIC_URL"),
    ({"public_url": "support.example.com"}, "public_url", "FIRSTLINE_PUBLIC_URL"),
    ({"smtp_username": "mailer", "smtp_security": "none", "smtp_host": "mail.example.com"}, "smtp_security",
     "in clear"),
])
def test_mail_settings_that_cannot_work_stop_start_up_naming_the_setting(tmp_path, overrides, key, fragment):
    settings = make_settings(tmp_path, **{"smtp_host": "127.0.0.1", "smtp_from": FROM, "public_url": CHAT,
                                          **overrides})
    with pytest.raises(ConfigurationError, match=fragment) as raised:
        SmtpConfig.from_settings(settings)
    assert raised.value.key == key


def test_no_smtp_host_means_email_is_off(tmp_path):
    assert SmtpConfig.from_settings(make_settings(tmp_path)) is None
    local = make_settings(tmp_path, smtp_host="localhost", smtp_from=FROM, public_url=CHAT, smtp_username="me",
                          smtp_security="none")
    assert SmtpConfig.from_settings(local).where == "localhost:587"  # a login over loopback may go in clear


def test_the_worker_says_once_that_email_is_off_and_works_the_outbox_at_start(store, clock, notices, caplog):
    queue(store, clock)  # left pending by a server that stopped
    timer = SenderTimer(Sender(notices, None, None, POLICY, clock), interval_s=3600).start()
    timer.stop()  # the first pass runs at once; stopping waits for it
    assert caplog.text.count("e-mail is off: FIRSTLINE_SMTP_HOST is not set") == 1
    assert notices.get("n1").status is NoticeStatus.SKIPPED
