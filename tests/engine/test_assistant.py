import json

import pytest

from core.errors import InputError
from engine.wiring import build
from tests.conftest import check_ask_contract, make_settings


def rows(parts, sql, *params):
    return parts.store.execute(sql, params)


def test_a_slow_dashboard_is_diagnosed_and_fixed_on_the_simulated_infrastructure(tmp_path, knowledge):
    settings = make_settings(tmp_path, simulation_faults=["slow_queries"])
    parts = build(settings, knowledge=knowledge)
    try:
        answer = parts.assistant.answer("The dashboard is loading really slowly", "alice")
        assert (answer.decision, answer.category, answer.playbook) == ("resolve", "performance", "dashboard_slow")
        assert [(a.name, a.target, a.status) for a in answer.actions] == [
            ("kill_slow_queries", "database", "succeeded")]
        # Chained: a category rule names the cause, the cause selects the playbook's remedy, the remedy runs.
        fired = list(answer.rules_fired)
        chain = ["performance_slow_database_queries", "targeted_remedy_for_a_hypothesis", "run_a_proposed_remedy"]
        assert [r for r in fired if r in chain] == chain
        assert "unhealthy_metric_becomes_a_hypothesis" in fired  # the slow pages upstream are suspects too
        assert "runaway database queries" in answer.reply  # drawn from the playbook's remedy
        assert parts.infrastructure.faults() == []  # the fault is really gone
        # Every step is in DuckDB.
        (decision_id, decision) = rows(parts, "SELECT id, decision FROM decisions")[0]
        assert decision == "resolve"
        assert rows(parts, "SELECT count(*) FROM conversations")[0][0] == 1
        assert rows(parts, "SELECT role FROM messages ORDER BY created_at, role DESC") == [("user",), ("assistant",)]
        assert rows(parts, "SELECT rank, playbook FROM candidates WHERE decision_id = ? AND rank = 1",
                    decision_id) == [(1, "dashboard_slow")]
        fired = rows(parts, "SELECT rule FROM rules_fired WHERE decision_id = ? ORDER BY seq", decision_id)
        assert [r for (r,) in fired] == list(answer.rules_fired)
        assert rows(parts, "SELECT name, status FROM actions") == [("kill_slow_queries", "succeeded")]
        origins = dict(rows(parts, "SELECT origin, count(*) FROM facts GROUP BY origin"))
        assert origins["input"] > 10 and origins["rule"] >= 1
    finally:
        parts.close()


def test_healthy_telemetry_runs_the_safe_default(assistant):
    answer = assistant.answer("The dashboard is loading really slowly", "bob")
    assert answer.decision == "resolve"
    assert [(a.name, a.status) for a in answer.actions] == [("clear_user_cache", "succeeded")]
    assert answer.rules_fired == ("default_remedy_when_telemetry_explains_nothing", "run_a_proposed_remedy")


def test_business_requests_are_escalated_to_a_person(parts):
    answer = parts.assistant.answer("Can we get a non-profit discount?", "carol")
    assert (answer.decision, answer.category) == ("escalate", "pricing")
    assert answer.escalation["category"] == "pricing" and answer.escalation["summary"]
    assert rows(parts, "SELECT category, status FROM escalations") == [("pricing", "open")]
    assert rows(parts, "SELECT count(*) FROM actions")[0][0] == 0  # nothing was remediated


def test_out_of_scope_is_declined_and_never_escalated(parts):
    answer = parts.assistant.answer("what's the capital of Peru", "dave")
    assert (answer.decision, answer.category, answer.escalation) == ("decline", "out_of_scope", None)
    assert rows(parts, "SELECT count(*) FROM escalations")[0][0] == 0


def test_dry_run_plans_but_changes_nothing(tmp_path, knowledge):
    parts = build(make_settings(tmp_path, simulation_faults=["slow_queries"]), knowledge=knowledge)
    try:
        answer = parts.assistant.answer("The dashboard is loading really slowly", "erin", dry_run=True)
        assert [a.status for a in answer.actions] == ["dry_run"]
        assert parts.infrastructure.faults() == [("slow_queries", "database")]
        assert "dry run" in answer.reply.lower()
    finally:
        parts.close()


def test_a_remedy_that_does_not_verify_is_handed_to_engineering(tmp_path, knowledge):
    parts = build(make_settings(tmp_path, simulation_faults=["bad_deploy@mail"]), knowledge=knowledge)
    try:
        answer = parts.assistant.answer("I never got the verification email", "frank")
        statuses = [(a.name, a.status) for a in answer.actions]
        assert ("resend_email", "failed") in statuses and ("handoff", "created") in statuses
        (team, diagnostics) = rows(parts, "SELECT team, diagnostics FROM handoffs")[0]
        assert team == "engineering" and json.loads(diagnostics)["unhealthy"]
        # The same remedy is not repeated for this user while it is known to have failed.
        again = parts.assistant.answer("still no verification email", "frank")
        assert ("resend_email", "failed") not in [(a.name, a.status) for a in again.actions]
    finally:
        parts.close()


def test_cooldown_stops_a_repeat_on_the_same_target(tmp_path, knowledge):
    parts = build(make_settings(tmp_path, simulation_faults=["slow_queries"]), knowledge=knowledge)
    try:
        parts.assistant.answer("The dashboard is loading really slowly", "gina")
        parts.infrastructure.inject("slow_queries")
        answer = parts.assistant.answer("dashboard still slow", "harry")
        assert ("kill_slow_queries", "skipped") in [(a.name, a.status) for a in answer.actions]
    finally:
        parts.close()


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "empty_message"), ("   \n\t ", "empty_message"), ("x" * 100_000, "message_too_long"),
     ("bad \udcff byte", "not_utf8")],
)
def test_bad_messages_are_refused_before_anything_is_stored(parts, text, code):
    with pytest.raises(InputError) as caught:
        parts.assistant.answer(text, "ivan")
    assert caught.value.code == code
    assert rows(parts, "SELECT count(*) FROM messages")[0][0] == 0


def test_the_user_message_is_stored_even_if_answering_fails(parts, monkeypatch):
    def broken(_text):
        raise RuntimeError("index exploded")

    monkeypatch.setattr(parts.assistant.knowledge, "match", broken)
    with pytest.raises(RuntimeError):
        parts.assistant.answer("my exports are broken", "judy")
    assert rows(parts, "SELECT role, text FROM messages") == [("user", "my exports are broken")]


def test_conversations_belong_to_their_user(parts):
    answer = parts.assistant.answer("The dashboard is slow", "kate")
    assert parts.assistant.history(answer.conversation_id, "kate")
    with pytest.raises(InputError, match="no such conversation"):
        parts.assistant.history(answer.conversation_id, "mallory")
    with pytest.raises(InputError, match="no such conversation"):
        parts.assistant.answer("let me in", "mallory", conversation_id=answer.conversation_id)


def test_answers_keep_the_published_contract(assistant):
    lines = [json.dumps(assistant.answer(text, "lee").contract()) for text in (
        "The dashboard is loading really slowly", "Can we get a non-profit discount?",
        "what's the capital of Peru", "it's broken", "my sync is weird")]
    result = check_ask_contract("\n".join(lines) + "\n")
    assert result.returncode == 0, result.stdout


def test_conversation_facts_count_the_users_turns(parts):
    first = parts.assistant.answer("The dashboard is slow", "olga", channel="web")
    parts.assistant.answer("still slow", "olga", conversation_id=first.conversation_id, channel="web")
    payloads = [json.loads(p) for (p,) in rows(parts, "SELECT payload FROM facts WHERE type = 'conversation' "
                                                      "ORDER BY decision_id")]
    assert sorted(p["attempt"] for p in payloads) == [1, 2]
    assert {p["channel"] for p in payloads} == {"web"}
