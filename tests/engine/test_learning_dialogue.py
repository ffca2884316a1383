"""Learning end to end on real parts: users' verdicts count for remedies, a fix found after a failed first
try becomes a learned rule that shadows, is promoted by agreeing cases, is written out, reloads and fires."""

import threading

import pytest

from core.errors import InputError
from engine.learning.ledger import Fix
from tests.conftest import build_parts, make_settings
from tests.engine.test_dialogue import talk

PROBLEM = "The dashboard is loading really slowly"


class SteppingClock:
    """Time that moves on by a tenth of a millisecond each time it is read, from a fixed start: what the
    simulation reads (its noise changes every 15 s of it) is then the same on every run, and time still passes."""

    def __init__(self, now: float = 1_700_000_010.0) -> None:  # a multiple of 15 s: far from a noise change
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += 0.0001
            return self.now


@pytest.fixture
def chat(tmp_path, knowledge):
    # The real clock made this file flaky: a metric near its limit was healthy or not by which 15 s it ran in.
    parts = build_parts(make_settings(tmp_path, simulation_faults=["slow_queries"], remediation_cooldown_s=0),
                        knowledge=knowledge, clock=SteppingClock())
    yield parts
    parts.close()


def second_try_works(parts, user):
    parts.infrastructure.inject("slow_queries")
    return talk(parts, user, PROBLEM, "no, it's still slow", "yes it works now")


def test_verdicts_count_once_for_the_remedy_they_judge(chat):
    first, retry, _ = second_try_works(chat, "ann")
    tried = (first.answer.actions[0].name, retry.answer.actions[0].name)
    rows = chat.store.execute("SELECT action, succeeded FROM remedy_outcomes ORDER BY at_s")
    assert rows == [(tried[0], False), (tried[1], True)]
    ledger = chat.dialogue.learning.ledger
    assert ledger.posterior("dashboard_slow", tried[1], retry.answer.actions[0].target) == (2.0, 1.0)


def test_a_second_try_fix_becomes_a_rule_that_shadows_then_goes_live(chat, tmp_path):
    ledger = chat.dialogue.learning.ledger
    second_try_works(chat, "ann")
    assert ledger.rules() == []  # one user alone proposes nothing
    _, retry, _ = second_try_works(chat, "bob")
    (rule,) = ledger.rules()
    fix = rule.provenance["fix"]
    assert rule.status == "shadow" and (fix["action"], fix["target"]) == (retry.answer.actions[0].name,
                                                                            retry.answer.actions[0].target)
    for user in ("c1", "c2", "c3", "c4", "c5"):
        second_try_works(chat, user)
    assert ledger.latest(rule.name).status == "active"
    assert rule.name in (tmp_path / "learned_rules" / "active.yaml").read_text(encoding="utf-8")

    chat.assistant.rule_source.reload()
    chat.infrastructure.inject("slow_queries")
    (fresh,) = talk(chat, "dee", PROBLEM)
    assert rule.name in fresh.answer.rules_fired
    assert (fix["action"], fix["target"]) in [(a.name, a.target) for a in fresh.answer.actions]


def test_forgetting_a_user_removes_their_votes_and_outcomes(chat):
    second_try_works(chat, "gone")
    counts = chat.dialogue.forget("gone")
    assert counts["learning_votes"] >= 2
    for table in ("remedy_outcomes", "resolution_votes"):
        assert chat.store.execute(f"SELECT count(*) FROM {table} WHERE user_id = 'gone'") == [(0,)]


def test_a_live_learned_rule_whose_fix_keeps_failing_is_retired(chat):
    ledger = chat.dialogue.learning.ledger
    for user in ("ann", "bob"):
        second_try_works(chat, user)
    (rule,) = ledger.rules()
    ledger.set_status(rule.name, "active", "curator", "approved")
    chat.dialogue.learning.publish()
    chat.assistant.rule_source.reload()
    for i in range(6):  # the learned fix runs first now, and every user says it did not help
        chat.infrastructure.inject("slow_queries")
        first, _ = talk(chat, f"unhappy{i}", PROBLEM, "no, still slow")
        assert rule.name in first.answer.rules_fired
    assert ledger.live_record(rule)[1] >= ledger.policy.retire_after
    assert ledger.latest(rule.name).status == "retired"
    assert ledger.fire_counts()[rule.name] >= 6
    # It was the only live one: the rule source unloads it (an empty rule file would have kept it live).
    chat.assistant.rule_source.reload()
    assert chat.assistant.rules.rulebase.get(rule.name) is None


def test_a_handoff_closed_with_its_fix_votes_for_a_rule(chat):
    ledger = chat.dialogue.learning.ledger
    for user in ("hal", "ida"):
        chat.infrastructure.inject("slow_queries")
        talk(chat, user, PROBLEM, "no, it's still slow", "still broken")  # ends with engineering
    handoffs = [row[0] for row in chat.store.execute("SELECT id FROM handoffs WHERE status = 'open' ORDER BY id")]
    assert len(handoffs) == 2
    assert ledger.close_handoff(handoffs[0], "rebuild_cache", "cache", "eng1") is None  # one voice proposes nothing
    rule = ledger.close_handoff(handoffs[1], "rebuild_cache", "cache", "eng2")
    assert rule is not None and rule.provenance["fix"]["action"] == "rebuild_cache"
    with pytest.raises(InputError, match="already closed by eng1"):
        ledger.close_handoff(handoffs[0], "rebuild_cache", "cache", "eng1")
    with pytest.raises(InputError, match="cannot become a rule"):
        ledger.close_handoff(_open_handoff(chat), "format_every_disk", "cache", "eng3")
    with pytest.raises(InputError, match="no hand-off 'nope'"):
        ledger.close_handoff("nope", "rebuild_cache", "cache", "eng3")


def _open_handoff(parts) -> str:
    parts.infrastructure.inject("slow_queries")
    talk(parts, "jo", PROBLEM, "no, it's still slow", "still broken")
    return parts.store.execute("SELECT id FROM handoffs WHERE status = 'open'")[0][0]


def test_a_remedy_that_fails_verification_on_telemetry_counts_as_failed_once(tmp_path, knowledge):
    parts = build_parts(make_settings(tmp_path, simulation_faults=["bad_deploy@mail"]), knowledge=knowledge)
    try:
        first, _ = talk(parts, "frank", "I never got the verification email", "no, still nothing",
                        verified=True)  # an identified user: the resend on their account may run
        failed = [(a.name, a.target) for a in first.answer.actions if a.status == "failed"]
        assert failed, "the bad deploy keeps the resend from verifying"
        ledger = parts.dialogue.learning.ledger
        for action, target in failed:  # counted without waiting for the user, and the user's "no" adds nothing
            assert ledger.posterior(first.answer.playbook, action, target) == (1.0, 2.0)
        assert parts.store.execute("SELECT count(*) FROM remedy_outcomes")[0][0] == len(failed)
    finally:
        parts.close()


def test_one_verdict_judges_every_remedy_the_decision_ran(tmp_path, knowledge):
    faults = ["slow_queries", "cache_degradation"]
    settings = make_settings(tmp_path, simulation_faults=faults, remediation_cooldown_s=0)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        first, _ = talk(parts, "ann", PROBLEM, "no, it's still slow")
        ran = [(a.name, a.target) for a in first.answer.actions if a.status == "succeeded"]
        assert len(ran) == 2, "both unhealthy signals get their remedy in one decision"
        ledger = parts.dialogue.learning.ledger
        assert [ledger.posterior("dashboard_slow", *fix) for fix in ran] == [(1.0, 2.0), (1.0, 2.0)]
        judged = parts.store.execute("SELECT action, target FROM fix_verdicts WHERE verdict = 'not_fixed'")
        assert sorted(judged) == sorted(ran)  # the rules will not repeat either of them for this user
        # The verdicts are rows of their own: `actions` holds only what really ran.
        assert parts.store.execute("SELECT count(*) FROM actions WHERE rule = 'user_says_not_fixed'") == [(0,)]
        facts = parts.assistant.store.past_actions("ann", 0.0, 50)
        assert {(f.name, f.target) for f in facts if f.rule == "user_says_not_fixed" and f.status == "failed"} \
            == set(ran)
        for fault in faults:
            parts.infrastructure.inject(fault)
        talk(parts, "bob", PROBLEM, "yes it works now")
        # The user cannot say which of the two fixed it: each gets half a success.
        assert [ledger.posterior("dashboard_slow", *fix) for fix in ran] == [(1.5, 2.0), (1.5, 2.0)]
    finally:
        parts.close()


def test_a_shadow_rule_is_scored_only_where_its_fix_was_judged(chat):
    ledger = chat.dialogue.learning.ledger
    fix = Fix("dashboard_slow", "clear_user_cache", "cache")
    ledger.record_resolution(fix, "earlier-1", "x1")
    rule = ledger.set_status(ledger.record_resolution(fix, "earlier-2", "x2").name, "shadow", "test", "test")
    talk(chat, "ann", PROBLEM, "yes it works now")  # fixed by the database remedy: nothing said about the cache
    assert ledger.shadow_record(rule.name) == (0, 0)
    assert chat.infrastructure.faults() == []  # that remedy cleared the fault
    (ran, _) = talk(chat, "bob", PROBLEM, "yes it works now")  # telemetry explains nothing: the safe default
    assert ("clear_user_cache", "cache") in [(a.name, a.target) for a in ran.answer.actions]
    assert ledger.shadow_record(rule.name) == (1, 1)
    talk(chat, "cy", PROBLEM, "no, it's still slow")
    assert ledger.shadow_record(rule.name) == (1, 2)


def test_a_live_rule_whose_fix_runs_beside_another_keeps_its_whole_successes(chat):
    ledger = chat.dialogue.learning.ledger
    fix = Fix("dashboard_slow", "clear_user_cache", "cache")
    ledger.record_resolution(fix, "earlier-1", "x1")
    rule = ledger.set_status(ledger.record_resolution(fix, "earlier-2", "x2").name, "active", "test", "test")
    chat.dialogue.learning.publish()
    chat.assistant.rule_source.reload()
    for user in ("u1", "u2", "u3", "u4", "u5", "u6"):
        chat.infrastructure.inject("slow_queries")
        (ran, _) = talk(chat, user, PROBLEM, "yes it works now")
        assert {("kill_slow_queries", "database"), ("clear_user_cache", "cache")} <= {
            (a.name, a.target) for a in ran.answer.actions}
    assert ledger.posterior("dashboard_slow", "clear_user_cache", "cache") == (4.0, 1.0)  # half of each of six
    assert ledger.live_record(ledger.latest(rule.name)) == (6, 6)
    assert ledger.latest(rule.name).status == "active"  # shared credit alone would have retired it
