"""The escalation desk on real parts (matcher, rules, store, voice) with a manual clock: the queue by deadline,
the analysis in its order, deciding with the desk's rules (reasons, approvers, no self-approval, categories,
stale pages), asking the user, expiry, and the append-only record."""

import pytest

from core.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from engine.chat.dialogue import Stage
from engine.desk.desk import Decider
from tests.conftest import ManualClock, build_parts, make_settings

POLICY = """
categories:
  pricing:
    guidelines:
      - id: charity_discounts
        text: "Discounts for registered charities of up to 20% are usually approved."
        playbooks: [nonprofit_education_discount]
        when: {percent: {at_most: 20}}
        recommend: approved
    approvals:
      - when: {percent: {above: 30}}
        approvers: 2
  hosting_capacity:
    capacity_measures: [api.cpu_pct, database.pool_used_pct]
"""
DANA, OMAR = Decider("dana"), Decider("omar")
HOUR = 3600.0


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def parts(tmp_path, knowledge, clock):
    policy = tmp_path / "decision_policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    built = build_parts(make_settings(tmp_path / "data", decision_policy_file=policy, deadline_pricing_h=48,
                                      monitor_enabled=False), knowledge=knowledge, clock=clock)
    yield built
    built.close()


def ask(parts, user, text, conversation=None):
    exchange = parts.dialogue.turn(text, user, conversation)
    return exchange


def raise_request(parts, user, text):
    exchange = ask(parts, user, text)
    assert exchange.stage is Stage.AWAITING_DECISION, exchange.replies
    own = parts.dialogue.chats.state(exchange.conversation_id)[1]["escalation_id"]  # not a request named aside
    (row,) = [r for r in parts.desk.queue(DANA, "all") if r["id"] == own]
    return row, exchange


def record(parts, escalation_id):
    found = parts.desk.detail(escalation_id, OMAR, viewed=False)
    return [(e["kind"], e["actor"], e["outcome"]) for e in found["record"]]


def test_the_queue_shows_open_business_requests_by_deadline_in_the_users_words(parts, clock):
    parts.dialogue.assistant.store.set_account("eve", _account("Team", 40, clock.now - 800 * 86400, 480.0,
                                                               "Hope Foundation"))
    first, _ = raise_request(parts, "eve", "We are a registered charity. Can we get a non-profit discount on our plan?")
    clock.advance(HOUR)
    raise_request(parts, "raj", "Could you extend my free trial by a week? I was ill.")
    technical = ask(parts, "sam", "The dashboard is loading really slowly")  # never on the desk
    rows = parts.desk.queue(DANA)
    assert rows[0]["id"] == first["id"] and [r["category"] for r in rows][:2] == ["pricing", "subscription_benefits"]
    assert technical.conversation_id not in {r["conversation_id"] for r in rows}
    top = rows[0]
    assert top["request"] == "We are a registered charity. Can we get a non-profit discount on our plan?"
    assert top["who"]["organisation"] == "Hope Foundation" and top["who"]["plan"] == "Team"
    assert top["who"]["seats"] == 40 and top["who"]["tenure"] == "2 years 2 months"
    assert top["remaining_s"] == pytest.approx(47 * HOUR) and top["warning"] is None
    clock.advance(24 * HOUR)
    assert parts.desk.queue(DANA)[0]["warning"] == "50%"
    clock.advance(19 * HOUR)
    assert parts.desk.queue(DANA)[0]["warning"] == "90%"


def test_status_filters_name_groups_and_decided_means_approved_or_rejected(parts):
    approved, _ = raise_request(parts, "eve", "Can we get a non-profit discount?")
    rejected, _ = raise_request(parts, "fay", "Can I get a refund for last month? I forgot to cancel.")
    parts.desk.decide(approved["id"], DANA, "approved", "Granted for a year.")
    parts.desk.decide(rejected["id"], DANA, "rejected", "The month was used.")
    assert {r["id"] for r in parts.desk.queue(DANA, "decided")} == {approved["id"], rejected["id"]}
    (shown,) = parts.desk.queue(DANA, "rejected")
    assert shown["decision"] == {**shown["decision"], "outcome": "rejected", "reason": "The month was used.",
                                 "by": "dana"}
    assert all(r["decision"] is None for r in parts.desk.queue(DANA, "open"))
    assert [r["id"] for r in parts.desk.queue(DANA, "rejected")] == [rejected["id"]]
    assert [r["id"] for r in parts.desk.queue(DANA, "declined")] == [rejected["id"]]  # the first API's word
    assert not {approved["id"], rejected["id"]} & {r["id"] for r in parts.desk.queue(DANA, "open")}
    with pytest.raises(InputError, match="unknown status 'done'; one of open, decided, expired"):
        parts.desk.queue(DANA, "done")
    with pytest.raises(InputError, match="unknown category 'billing'"):
        parts.desk.queue(DANA, "open", "billing")


def test_the_detail_puts_facts_first_then_options_recommendation_and_precedents(parts, clock):
    for user, text in (("p1", "We're a small non-profit, any discount available?"),
                       ("p2", "Do you offer discounts for charities?"),
                       ("p3", "Is there an education discount for our school?")):
        past, _ = raise_request(parts, user, text)
        parts.desk.decide(past["id"], DANA, "approved", "Charity discount, 20%.")
        clock.advance(60)
    row, _ = raise_request(parts, "eve", "We are a registered charity, can we get a 15% non-profit discount?")
    found = parts.desk.detail(row["id"], OMAR)
    assert list(found)[:5] == ["escalation", "facts", "options", "approvals", "recommendation"]
    assert found["facts"]["figures"]["percent"] == 15
    assert found["facts"]["policy"][0]["id"] == "charity_discounts" and found["facts"]["policy"][0]["applies"]
    assert found["recommendation"]["outcome"] == "approved" and found["recommendation"]["confidence"] == 1.0
    precedents = found["precedents"]
    count = len(precedents["cases"])
    assert precedents["line"] == f"{count} of {count} similar requests were approved."
    assert precedents["cases"] and all(c["decided_by"] == "dana" for c in precedents["cases"])
    assert found["options"][1]["goes_against"]  # rejecting goes against the recommendation and the precedents
    kinds = [e["kind"] for e in found["record"]]
    assert kinds[0] == "created"
    assert ("viewed", "omar", "") in record(parts, row["id"]) and ("recommended", "desk", "approved") in record(
        parts, row["id"])


def test_a_rejection_needs_a_reason_and_the_user_hears_the_answer(parts, clock):
    row, exchange = raise_request(parts, "eve", "Can we get a non-profit discount?")
    clock.advance(600)
    before = record(parts, row["id"])
    for empty in ("", "   "):
        with pytest.raises(InputError, match="a reason is required to reject"):
            parts.desk.decide(row["id"], DANA, "rejected", empty)
    assert record(parts, row["id"]) == before and parts.desk.queue(DANA)[0]["status"] == "open"
    done = parts.desk.decide(row["id"], DANA, "rejected", "Our non-profit discount is for registered charities only.")
    assert done["status"] == "rejected"
    history = parts.assistant.history(exchange.conversation_id, "eve")
    assert history[-2]["role"] == "team" and "registered charities only" in history[-2]["text"]
    assert ("can't approve" in history[-2]["text"] or "decided against" in history[-2]["text"])
    assert "your request about a non-profit or education discount" in history[-2]["text"]  # its subject, in a sentence
    assert history[-1]["text"] in parts.assistant.voice.variants("did_that_answer_declined")  # no cheer after a no
    stage, choices = parts.dialogue.status(exchange.conversation_id, "eve")
    assert stage is Stage.CHECKING_ANSWER and [c.value for c in choices] == ["yes", "no"]
    settled = ask(parts, "eve", "yes thanks", exchange.conversation_id)
    assert settled.stage is Stage.RATING
    assert ("user_reply", "eve", "settled") in record(parts, row["id"])
    with pytest.raises(ConflictError, match="already rejected by dana"):
        parts.desk.decide(row["id"], OMAR, "approved", "")


def test_two_distinct_approvers_where_the_policy_says_so_each_counted_once(parts):
    row, exchange = raise_request(parts, "eve", "We are a charity; can we get a 40% discount?")
    assert row["approvals_required"] == 2
    first = parts.desk.decide(row["id"], DANA, "approved", "Fine by me.")
    assert first["status"] == "open" and first["approvals"] == 1 and first["approvals_required"] == 2
    with pytest.raises(ConflictError, match="counts once per person"):
        parts.desk.decide(row["id"], DANA, "approved", "Really fine.")
    assert parts.assistant.history(exchange.conversation_id, "eve")[-1]["role"] == "assistant"  # not told yet
    second = parts.desk.decide(row["id"], OMAR, "approved", "Agreed: 40% for a year.")
    assert second["status"] == "approved"
    decided = [e for e in parts.desk.detail(row["id"], OMAR, viewed=False)["record"] if e["kind"] == "decided"]
    assert decided[0]["detail"]["deciders"] == ["dana", "omar"]


def test_nobody_decides_their_own_request_or_outside_their_categories(parts):
    row, _ = raise_request(parts, "dana", "Can we get a non-profit discount?")
    with pytest.raises(ForbiddenError, match="you raised this request yourself"):
        parts.desk.decide(row["id"], DANA, "approved", "")
    policy_row, _ = raise_request(parts, "eve", "Please delete all of our data and close the account.")
    pricing_only = Decider("pat", frozenset({"pricing"}))
    assert policy_row["id"] not in [r["id"] for r in parts.desk.queue(pricing_only, "all")]
    with pytest.raises(ForbiddenError, match="you decide pricing requests only; this one is policy"):
        parts.desk.decide(policy_row["id"], pricing_only, "approved", "fine")
    with pytest.raises(ForbiddenError):
        parts.desk.detail(policy_row["id"], pricing_only)


def test_a_stale_page_or_an_unknown_request_changes_nothing(parts):
    row, exchange = raise_request(parts, "eve", "Can we get a non-profit discount?")
    shown = parts.desk.detail(row["id"], DANA)["digest"]
    ask(parts, "eve", "We have 12 staff, if that helps.", exchange.conversation_id)
    before = record(parts, row["id"])
    with pytest.raises(ConflictError, match="changed since your page was loaded"):
        parts.desk.decide(row["id"], DANA, "approved", "ok", digest=shown)
    with pytest.raises(ConflictError, match="changed since"):
        parts.desk.decide(row["id"], DANA, "approved", "ok", digest="0" * 32)
    assert record(parts, row["id"]) == before
    with pytest.raises(NotFoundError, match="no escalation with id 'nope'"):
        parts.desk.decide("nope", DANA, "approved", "ok")
    with pytest.raises(InputError, match='must be "approved" or "rejected"'):
        parts.desk.decide(row["id"], DANA, "maybe", "ok")
    fresh = parts.desk.detail(row["id"], DANA)["digest"]
    assert parts.desk.decide(row["id"], DANA, "approved", "ok", digest=fresh)["status"] == "approved"


def test_asking_the_user_brings_their_answer_back_to_the_desk(parts, clock):
    row, exchange = raise_request(parts, "eve", "Can we get a non-profit discount?")
    clock.advance(600)
    asked = parts.desk.ask(row["id"], DANA, "Which charity register are you on, and how many seats do you need?")
    assert asked["status"] == "asked" and parts.desk.queue(DANA, "asked")[0]["id"] == row["id"]
    history = parts.assistant.history(exchange.conversation_id, "eve")
    assert history[-2] == {**history[-2], "role": "team", "text": "Which charity register are you on, and how many "
                           "seats do you need?"}
    clock.advance(600)
    answer = ask(parts, "eve", "Charity Commission 1234567, and we need 25 seats", exchange.conversation_id)
    assert answer.stage is Stage.AWAITING_DECISION and answer.understood == "answer_to_team"
    found = parts.desk.detail(row["id"], DANA)
    assert found["escalation"]["status"] == "open"
    assert ("answered", "eve", "") in record(parts, row["id"])
    assert found["facts"]["figures"]["quantity"] == 25  # the charity's number is an identifier, not an amount
    with pytest.raises(InputError, match="question"):
        parts.desk.ask(row["id"], DANA, "  ")


def test_a_request_keeps_the_deadline_it_was_raised_with(parts, clock):
    row, _ = raise_request(parts, "eve", "Can we get a non-profit discount?")
    parts.desk.deadlines_s["pricing"] = HOUR  # the setting changed after the request was raised
    clock.advance(2 * HOUR)
    assert parts.desk.expire_due() == []
    (shown,) = parts.desk.queue(DANA)
    assert shown["due_at"] == pytest.approx(row["created_at"] + 48 * HOUR)
    assert shown["remaining_s"] == pytest.approx(46 * HOUR)
    later, _ = raise_request(parts, "fay", "Could you extend my free trial by a week? I was ill.")
    assert later["due_at"] == pytest.approx(later["created_at"] + 48 * HOUR)  # its own category's setting


def test_asking_the_user_pauses_the_deciders_clock_and_their_answer_restarts_it(parts, clock):
    row, exchange = raise_request(parts, "eve", "Can we get a non-profit discount?")
    clock.advance(40 * HOUR)
    parts.desk.ask(row["id"], DANA, "How many seats do you need?")
    (asked,) = parts.desk.queue(DANA)
    assert asked["status"] == "asked" and asked["remaining_s"] == pytest.approx(48 * HOUR)  # the user's window
    assert asked["decider_remaining_s"] == pytest.approx(8 * HOUR) and asked["warning"] is None
    clock.advance(30 * HOUR)
    assert parts.desk.expire_due() == []
    ask(parts, "eve", "About 25 seats", exchange.conversation_id)
    (answered,) = parts.desk.queue(DANA)
    assert answered["status"] == "open" and answered["remaining_s"] == pytest.approx(8 * HOUR)
    assert answered["warning"] == "50%"
    clock.advance(8 * HOUR + 1)
    assert parts.desk.expire_due() == [row["id"]]
    expired = [e for e in parts.desk.detail(row["id"], DANA)["record"] if e["kind"] == "expired"]
    assert expired[0]["reason"].startswith("no decision within 48 h")


def test_a_question_the_user_never_answers_expires_and_says_so(parts, clock):
    row, exchange = raise_request(parts, "eve", "Can we get a non-profit discount?")
    parts.desk.ask(row["id"], DANA, "Are you a registered charity?")
    clock.advance(48 * HOUR + 1)
    assert parts.desk.expire_due() == [row["id"]]
    history = parts.assistant.history(exchange.conversation_id, "eve")
    assert "went unanswered" in history[-1]["text"] and "closed without approval" in history[-1]["text"]
    expired = [e for e in parts.desk.detail(row["id"], DANA)["record"] if e["kind"] == "expired"]
    assert expired[0]["reason"].startswith("the user did not answer the team's question within 48 h")


def test_a_technical_problem_while_the_team_waits_is_taken_up_and_the_question_stays_open(parts, clock):
    row, exchange = raise_request(parts, "eve", "Can we get a non-profit discount?")
    parts.desk.ask(row["id"], DANA, "Are you a registered charity?")
    problem = ask(parts, "eve", "The dashboard takes forever to load, it is really slow", exchange.conversation_id)
    assert problem.understood != "answer_to_team" and problem.stage is not Stage.AWAITING_DECISION
    assert any("still open" in reply for reply in problem.replies)
    assert parts.desk.queue(DANA, "asked")[0]["id"] == row["id"]
    assert not [e for e in parts.desk.detail(row["id"], DANA)["record"] if e["kind"] == "answered"]
    parts.dialogue.rate(exchange.conversation_id, "eve", 5)  # that problem is done; nothing is in hand
    answer = ask(parts, "eve", "Yes, we are registered, number 1122334", exchange.conversation_id)
    assert answer.understood == "answer_to_team" and answer.stage is Stage.AWAITING_DECISION
    assert parts.desk.queue(DANA)[0]["status"] == "open"
    assert ("answered", "eve", "") in record(parts, row["id"])


def test_a_request_named_aside_has_its_own_words_and_topic_and_its_answer_asks_nothing(parts):
    exchange = ask(parts, "eve", "Could we get a refund for the unused months? And could you close our account?")
    rows = {r["request"]: r for r in parts.desk.queue(DANA)}
    aside = rows["And could you close our account?"]
    main = next(r for r in rows.values() if r["id"] != aside["id"])
    assert aside["topic"] != main["topic"] and "refund" in main["topic"].lower()
    parts.desk.decide(aside["id"], DANA, "approved", "Closing it at the end of the period.")
    history = parts.assistant.history(exchange.conversation_id, "eve")
    assert history[-1]["role"] == "team" and aside["topic"] in history[-1]["text"]
    assert parts.dialogue.status(exchange.conversation_id, "eve")[0] is Stage.AWAITING_DECISION  # still on the refund
    parts.desk.decide(main["id"], DANA, "approved", "Refunded.")
    assert parts.assistant.history(exchange.conversation_id, "eve")[-1]["text"] in (
        "Does that answer your question?", "Does that settle your request?")


def test_an_unanswered_request_expires_never_approved_and_the_user_is_told(parts, clock):
    row, exchange = raise_request(parts, "eve", "Can we get a non-profit discount?")
    clock.advance(48 * HOUR - 1)
    assert parts.desk.expire_due() == []
    clock.advance(2)
    assert parts.desk.expire_due() == [row["id"]]
    assert parts.desk.queue(DANA) == [] and [r["status"] for r in parts.desk.queue(DANA, "expired")] == ["expired"]
    assert parts.desk.queue(DANA, "rejected") == []  # expired is not rejected
    history = parts.assistant.history(exchange.conversation_id, "eve")
    assert "closed without approval" in history[-1]["text"]
    assert parts.dialogue.status(exchange.conversation_id, "eve")[0] is Stage.OPEN
    with pytest.raises(ConflictError, match=r"expired .* closed as expired \(not approved\)"):
        parts.desk.decide(row["id"], DANA, "approved", "sorry for the wait")
    assert ("expired", "system", "expired") in record(parts, row["id"])


def test_going_against_the_recommendation_needs_a_reason_and_is_recorded_as_overruled(parts, clock):
    for user in ("p1", "p2"):
        past, _ = raise_request(parts, user, "Do you offer discounts for charities?")
        parts.desk.decide(past["id"], DANA, "approved", "Yes, 20%.")
    row, _ = raise_request(parts, "eve", "Do you have a discount for charities like ours?")
    shown = parts.desk.detail(row["id"], OMAR)
    assert shown["recommendation"]["outcome"] == "approved"
    with pytest.raises(InputError, match="a reason is required to reject"):
        parts.desk.decide(row["id"], OMAR, "rejected", "")
    parts.desk.decide(row["id"], OMAR, "rejected", "They are not a registered charity.")
    assert ("overruled", "omar", "rejected") in record(parts, row["id"])


def test_a_capacity_request_shows_measured_usage_growth_and_time_to_the_limit(parts, clock):
    start = clock.now - 10 * 86400
    for day in range(11):  # api CPU from 35% rising 2 points a day; limit 85%
        parts.healing.ledger.record_samples(start + day * 86400, {"api": {"cpu_pct": 35.0 + 2 * day},
                                                                  "database": {"pool_used_pct": 40.0}}, "test")
    parts.dialogue.assistant.store.set_account("acme", _account("Enterprise", 500, clock.now - 400 * 86400, 9000.0))
    row, _ = raise_request(parts, "acme", "We are onboarding 8,000 users next month. Can the servers handle it?")
    assert row["category"] == "hosting_capacity"
    capacity = parts.desk.detail(row["id"], DANA)["facts"]["capacity"]
    cpu = next(m for m in capacity["measures"] if m["metric"] == "cpu_pct")
    assert cpu["now"] == 55.0 and cpu["growth_per_day"] == pytest.approx(2.0) and cpu["limit"] == 85
    assert cpu["days_to_limit"] == pytest.approx(15.0) and "15.0 days" in cpu["note"]
    assert capacity["asked_for"] == 8000 and cpu["with_request"] == pytest.approx(55 * 8500 / 500)
    pool = next(m for m in capacity["measures"] if m["metric"] == "pool_used_pct")
    assert pool["growth_per_day"] == 0 and pool["days_to_limit"] is None


def test_forgetting_a_user_deletes_their_escalations_record(parts):
    row, _ = raise_request(parts, "eve", "Can we get a non-profit discount?")
    parts.desk.decide(row["id"], DANA, "approved", "ok")
    assert parts.store.execute("SELECT count(*) FROM escalation_events WHERE escalation_id = ?", (row["id"],))[0][0]
    counts = parts.dialogue.forget("eve")
    assert counts["escalation_events"] >= 3
    assert parts.store.execute("SELECT count(*) FROM escalation_events")[0][0] == 0


def _account(plan, seats, since, price, organisation=""):
    from engine.store.decisions import Account
    return Account(plan, seats, "admin", organisation, since, price)


def test_names_differing_only_by_case_are_one_approver(parts):
    row, _ = raise_request(parts, "eve", "We are a charity; can we get a 40% discount?")
    parts.desk.decide(row["id"], DANA, "approved", "Fine by me.")
    with pytest.raises(ConflictError, match="counts once per person"):
        parts.desk.decide(row["id"], Decider("Dana"), "approved", "Me again.")
    with pytest.raises(ForbiddenError, match="raised this request yourself"):
        parts.desk.decide(row["id"], Decider("EVE"), "approved", "Mine.")


def test_a_rejected_request_marked_not_business_counts_as_a_false_escalation(parts, clock):
    row, _ = raise_request(parts, "eve", "Can we get a non-profit discount?")
    with pytest.raises(InputError, match="only a rejected request"):
        parts.desk.decide(row["id"], DANA, "approved", "fine", not_business=True)
    parts.desk.decide(row["id"], DANA, "rejected", "This is a login problem, not a discount.", not_business=True)
    assert ("not_business", "dana", "") in record(parts, row["id"])
    parts.store.execute("SET VARIABLE firstline_now = ?", (clock(),))
    (marked, false_ones), = parts.store.execute(
        "SELECT sum(marked_not_business), sum(false_escalations) FROM metric_false_escalations")
    assert (marked, false_ones) == (1, 1)
