"""A person's answer reaches a user who left: the desk's decisions, questions and expiries and engineering's closed
hand-offs each queue a notice in their own transaction, and the sender e-mails it to a real SMTP server on loopback
(aiosmtpd) when the user is away and the host app gave their address. Real parts, a manual clock."""

import uuid

import pytest

from core.errors import ConflictError, InputError
from core.taxonomy import Decision
from engine.chat.dialogue import Stage
from engine.desk.desk import Decider
from engine.desk.handoffs import Engineer
from engine.store.decisions import DecisionRecord, HandOff
from engine.store.notifications import NoticeStatus
from tests.conftest import ManualClock, build_parts, make_settings

DANA = Decider("dana")
HOUR = 3600.0
CHAT = "https://support.jtp.example"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def parts(tmp_path, knowledge, clock, mailbox):
    settings = make_settings(tmp_path / "data", monitor_enabled=False, simulation_faults=["slow_queries"],
                             **mailbox.settings(CHAT))
    built = build_parts(settings, knowledge=knowledge, clock=clock)
    yield built
    built.close()


def raise_request(parts, user, text="We are a registered charity. Can we get a non-profit discount?"):
    exchange = parts.dialogue.turn(text, user)
    assert exchange.stage is Stage.AWAITING_DECISION, exchange.replies
    escalation_id = parts.dialogue.chats.state(exchange.conversation_id)[1]["escalation_id"]
    return escalation_id, exchange.conversation_id


def notices(parts, user):
    return parts.store.execute("SELECT kind, source_id, status, text FROM notifications WHERE user_id = ? "
                               "ORDER BY created_at, id", (user,))


def test_a_decision_while_the_user_is_away_sends_exactly_one_email(parts, clock, mailbox):
    outreach = parts.outreach
    outreach.identities.remember("eve", "eve@example.org")
    escalation, conversation = raise_request(parts, "eve")
    clock.advance(2 * HOUR)  # she closed the tab long ago
    parts.desk.decide(escalation, DANA, "approved", "Granted for a year.")
    told = parts.assistant.history(conversation, "eve")[-2]
    assert told["role"] == "team" and "Granted for a year." in told["text"]
    assert notices(parts, "eve") == [("approved", escalation, "pending", told["text"])]  # with the decision
    report = outreach.sender.send_due()
    assert len(report.sent) == 1 and len(mailbox.received) == 1
    (mail,) = mailbox.received
    assert mail.recipients == ["eve@example.org"] and mail.message["To"] == "eve@example.org"
    assert mail.message["Subject"] == "Good news about your Job Tracker Pro request"
    assert " ".join(told["text"].split()) in " ".join(mail.text.split())
    assert f"{CHAT}/?conversation={conversation}" in mail.text
    assert outreach.sender.send_due().sent == [] and len(mailbox.received) == 1
    assert outreach.presence.unseen("eve") == {conversation: clock.now}  # and marked for her next visit


def test_a_user_looking_at_the_page_gets_no_email(parts, clock, mailbox):
    outreach = parts.outreach
    outreach.identities.remember("eve", "eve@example.org")
    escalation, conversation = raise_request(parts, "eve")
    clock.advance(60)
    outreach.presence.reading("eve", conversation, clock.now - 60)  # the page polls while she waits
    clock.advance(3)
    parts.desk.decide(escalation, DANA, "rejected", "Our discount is for registered charities only.")
    assert outreach.sender.send_due().waiting  # she is here: not yet
    clock.advance(3)
    newest = parts.assistant.history(conversation, "eve")[-1]["at"]
    outreach.presence.reading("eve", conversation, newest)  # the next poll shows the answer
    clock.advance(HOUR)
    assert outreach.sender.send_due().seen and mailbox.received == []
    assert notices(parts, "eve")[0][2] == "seen" and outreach.presence.unseen("eve") == {}


def test_without_an_address_nobody_is_emailed(parts, clock, mailbox):
    escalation, _ = raise_request(parts, "fay")
    clock.advance(HOUR)
    parts.desk.decide(escalation, DANA, "approved", "Granted.")
    assert parts.outreach.sender.send_due().skipped and mailbox.received == []
    assert notices(parts, "fay")[0][2] == "skipped"


def test_a_question_and_an_expiry_reach_the_user_who_left(parts, clock, mailbox):
    parts.outreach.identities.remember("eve", "eve@example.org")
    escalation, _ = raise_request(parts, "eve")
    clock.advance(HOUR)
    parts.desk.ask(escalation, DANA, "What is your charity's registration number?")
    parts.outreach.sender.send_due()
    assert "    What is your charity's registration number?" in mailbox.received[0].text.splitlines()
    clock.advance(parts.desk.window_s(parts.desk.escalations.get(escalation)) + 1)  # she never answers
    assert parts.desk.expire_due() == [escalation]
    parts.outreach.sender.send_due()
    assert [m.message["Subject"] for m in mailbox.received] == ["A question about your Job Tracker Pro request",
                                                                "Your Job Tracker Pro request was closed"]
    assert [k for k, *_ in notices(parts, "eve")] == ["asked", "expired_unanswered"]


def test_a_step_its_guard_refuses_queues_no_notice(parts, clock):
    escalation, _ = raise_request(parts, "eve")
    before = parts.desk.escalations.get(escalation)
    parts.desk.decide(escalation, DANA, "approved", "Granted.")
    clock.advance(3 * 24 * HOUR)
    with pytest.raises(ConflictError, match="decided meanwhile"):
        parts.desk._expire(before, clock.now)  # the expiry read the request before it was decided
    assert [k for k, *_ in notices(parts, "eve")] == ["approved"]  # one notice: the committed decision's


def handed_off(parts, user):
    """An open hand-off in `user`'s conversation: the problem told through the real dialogue, then the decision that
    hands it to engineering written by the store's own writer, as the assistant writes one when the remedies are
    used up (the reply reader that gets a conversation there is not what these tests are about)."""
    exchange = parts.dialogue.turn("The dashboard is loading really slowly", user)
    store, now = parts.assistant.store, parts.assistant.clock()
    record = DecisionRecord(
        id=uuid.uuid4().hex, message_id="", conversation_id=exchange.conversation_id, user_id=user,
        decision=Decision.RESOLVE, category="performance", playbook=exchange.answer.playbook, band="answer",
        confidence=0.9, ruleset_version="test", dry_run=False, latency_ms=1.0, created_at=now,
        reply="I've tried what I safely can here, so I've handed this to our engineers with everything I found.",
        handoff=HandOff("engineering", "automated remedies did not fix: slow dashboard",
                        {"message": "The dashboard is loading really slowly", "actions": ["kill_slow_queries"]}))
    store.transaction(store.decision_statements(record, lambda: uuid.uuid4().hex))
    (row,) = [r for r in parts.outreach.handoffs.listing() if r["user_id"] == user]
    return row, exchange.conversation_id


def test_closing_a_handoff_posts_the_note_into_the_conversation_and_emails_it(parts, clock, mailbox):
    parts.outreach.identities.remember("ivy", "ivy@example.org")
    row, conversation = handed_off(parts, "ivy")
    assert row["status"] == "open" and row["conversation_id"] == conversation and row["diagnostics"]
    clock.advance(HOUR)
    with pytest.raises(InputError, match="a note is required"):
        parts.outreach.handoffs.close(row["id"], Engineer("sam"), "  ")
    done = parts.outreach.handoffs.close(row["id"], Engineer("sam"), "We found a slow report query and fixed it")
    assert done["status"] == "closed by sam"
    posted = parts.assistant.history(conversation, "ivy")[-1]
    assert posted["role"] == "team" and "We found a slow report query and fixed it." in posted["text"]
    assert posted["text"] == done["told"] and "engineers" in posted["text"]
    assert parts.outreach.sender.send_due().sent
    (mail,) = mailbox.received
    assert mail.recipients == ["ivy@example.org"]
    assert mail.message["Subject"] == "An update on the problem you reported to Job Tracker Pro"
    assert "We found a slow report query and fixed it." in " ".join(mail.text.split())
    with pytest.raises(ConflictError, match="already closed by sam"):
        parts.outreach.handoffs.close(row["id"], Engineer("max"), "Again")
    (closed,) = parts.outreach.handoffs.listing("closed")
    assert closed["closed_by"] == "sam" and closed["note"] == "We found a slow report query and fixed it."
    assert closed["closed_at"] == clock.now and parts.outreach.handoffs.listing("open") == []


def test_forgetting_a_user_deletes_their_address_presence_and_notices(parts, clock, mailbox):
    parts.outreach.identities.remember("eve", "eve@example.org")
    escalation, conversation = raise_request(parts, "eve")
    parts.outreach.presence.reading("eve", conversation, clock.now)
    clock.advance(HOUR)
    parts.desk.decide(escalation, DANA, "approved", "Granted.")
    assert notices(parts, "eve")
    counts = parts.dialogue.forget("eve")
    assert counts["user_contacts"] == 1 and counts["notifications"] == 1 and counts["user_presence"] == 1
    assert parts.outreach.identities.email("eve") is None and notices(parts, "eve") == []
    assert parts.outreach.sender.send_due().sent == [] and mailbox.received == []
    assert parts.store.execute("SELECT count(*) FROM notifications WHERE status = ?",
                               (NoticeStatus.PENDING.value,)) == [(0,)]
