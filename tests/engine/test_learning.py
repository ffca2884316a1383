"""Learning from resolutions: outcomes count once, posteriors order remedies, rules go through a guarded
lifecycle with versions, and nothing invalid is ever activated."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from core.errors import ConfigurationError, InputError
from core.settings import load_settings
from engine.actions.catalogue import action_targets
from engine.decision.ruleengine import Fact, RuleEngine
from engine.learning.ledger import Fix, LearningLedger, Policy, rule_validator
from engine.store import DuckDBStore, Privacy
from engine.wiring import load_pack
from rules.loader import load_rules

FIX = Fix("dashboard_slow", "kill_slow_queries", "database", "database", "slow_queries")


@pytest.fixture
def ledger(tmp_path, settings):
    topology, playbooks = load_pack(settings)
    store = DuckDBStore(tmp_path / "learning.duckdb")
    clock = iter(float(t) for t in range(1_000_000))
    yield LearningLedger(store, Policy(min_users=2, shadow_cases=3, shadow_precision=0.6),
                 clock=lambda: next(clock), validate=rule_validator(action_targets(topology), frozenset(playbooks)))
    store.close()


def test_concurrent_confirmations_of_one_resolution_count_once(ledger):
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda _: ledger.record_outcome("p", "restart", "api", "conv-1", "u1", True),
                                range(16)))
    assert created.count(True) == 1
    assert ledger.posterior("p", "restart", "api") == (2.0, 1.0)


def test_thompson_order_prefers_the_remedy_that_works_but_is_seeded(ledger):
    for i in range(20):
        ledger.record_outcome("p", "good", "api", f"g{i}", "u", True)
        ledger.record_outcome("p", "bad", "api", f"b{i}", "u", False)
    remedies = [("bad", "api"), ("good", "api")]
    firsts = [ledger.order("p", remedies, seed=f"conv-{i}")[0] for i in range(50)]
    assert firsts.count(("good", "api")) >= 45
    assert ledger.order("p", remedies, "same") == ledger.order("p", remedies, "same")
    # An untried remedy (uniform prior) still goes first sometimes against a mediocre one.
    for i in range(4):
        ledger.record_outcome("q", "meh", "api", f"m{i}", "u", i % 2 == 0)
    tries = [ledger.order("q", [("meh", "api"), ("new", "api")], seed=str(i))[0] for i in range(100)]
    assert 10 <= tries.count(("new", "api")) <= 90


def test_one_user_alone_cannot_create_a_rule(ledger):
    for i in range(5):
        assert ledger.record_resolution(FIX, f"c{i}", "mallory") is None
    assert ledger.rules() == []
    rule = ledger.record_resolution(FIX, "c9", "alice")
    assert rule is not None and rule.status == "proposed" and rule.version == 1
    assert rule.provenance["users"] == 2 and "c9" in rule.provenance["conversations"]


def test_a_learned_rule_is_a_valid_hand_written_rule_and_never_holds_user_text(ledger, tmp_path, settings):
    ledger.record_resolution(FIX, "c1", "u1")
    rule = ledger.record_resolution(FIX, "c2", "u2")
    ledger.set_status(rule.name, "active", "curator", "looks right")
    path = tmp_path / "learned" / "active.yaml"
    assert ledger.export(path) == 1
    topology, playbooks = load_pack(settings)
    loaded = load_rules([path], action_targets(topology), known_playbooks=frozenset(playbooks))
    assert [r.name for r in loaded.rules] == [rule.name]
    assert "c1" not in path.read_text(encoding="utf-8")


def test_a_rule_failing_validation_is_never_activated(ledger):
    bad = Fix("dashboard_slow", "format_every_disk", "database")
    ledger.record_resolution(bad, "c1", "u1")
    rule = ledger.record_resolution(bad, "c2", "u2")
    assert rule.status == "invalid" and "never activated" in rule.reason
    with pytest.raises(InputError, match="can never be activated"):
        ledger.set_status(rule.name, "active", "curator", "please")


def test_shadow_rules_are_promoted_by_agreeing_cases_and_retired_by_failures(ledger):
    ledger.record_resolution(FIX, "c1", "u1")
    rule = ledger.record_resolution(FIX, "c2", "u2")
    ledger.set_status(rule.name, "shadow", "learning", "start shadowing")
    assert ledger.record_shadow_case(rule.name, "s1", True) is None
    assert ledger.record_shadow_case(rule.name, "s2", False) is None
    promoted = ledger.record_shadow_case(rule.name, "s3", True)
    assert promoted is not None and promoted.status == "active" and "2 of 3" in promoted.reason
    retired = ledger.review_active(records=lambda rules: {r.name: (1, 6) for r in rules})
    assert [r.name for r in retired] == [rule.name] and ledger.latest(rule.name).status == "retired"


def test_versions_diff_and_revert(ledger):
    ledger.record_resolution(FIX, "c1", "u1")
    rule = ledger.record_resolution(FIX, "c2", "u2")
    ledger.set_status(rule.name, "active", "curator", "ok")
    ledger.set_status(rule.name, "retired", "curator", "misfired")
    assert [v.status for v in ledger.versions(rule.name)] == ["proposed", "active", "retired"]
    assert "-status: active\n+status: retired\n" in ledger.diff(rule.name, 2, 3)
    restored = ledger.revert(rule.name, 2, "curator")
    assert restored.version == 4 and restored.status == "active"
    with pytest.raises(InputError, match="has no version 9; versions: 1, 2, 3, 4"):
        ledger.revert(rule.name, 9, "curator")


def test_a_users_daily_allowance_caps_their_votes(ledger):
    ledger.policy = Policy(min_users=2, per_user_per_day=2)
    for i in range(5):
        ledger.record_resolution(Fix("dashboard_slow", "restart_service", "api"), f"c{i}", "u1")
    (votes,), = ledger.records.db.execute("SELECT count(*) FROM resolution_votes WHERE user_id = 'u1'")
    assert votes == 2


def test_forgetting_a_user_removes_their_outcomes_and_votes(ledger):
    ledger.record_outcome("p", "restart", "api", "c1", "gone", True)
    ledger.record_resolution(FIX, "c1", "gone")
    assert Privacy(ledger.records.db).forget("gone")["learning_votes"] == 2
    assert ledger.records.db.execute("SELECT count(*) FROM remedy_outcomes")[0][0] == 0
    assert yaml.safe_dump(ledger.rules()) == "[]\n"


def test_a_fix_found_on_a_close_candidate_binds_the_first_match_and_that_candidate(ledger, tmp_path, settings):
    cross = Fix("app_timeouts_peak", "scale_out", "api", matched="dashboard_slow")
    assert cross.key != Fix("app_timeouts_peak", "scale_out", "api").key and cross.route == "dashboard_slow"
    ledger.record_resolution(cross, "c1", "u1")
    rule = ledger.record_resolution(cross, "c2", "u2")
    assert rule.status == "proposed", rule.reason  # valid as a hand-written rule
    assert [r.name for r in ledger.rules(route="dashboard_slow")] == [rule.name]
    assert [r.name for r in ledger.rules(playbook="app_timeouts_peak")] == [rule.name]
    assert ledger.rules(route="app_timeouts_peak") == []
    ledger.set_status(rule.name, "active", "curator", "checked")
    path = tmp_path / "active.yaml"
    ledger.export(path)
    topology, playbooks = load_pack(settings)
    engine = RuleEngine(load_rules([path], action_targets(topology), known_playbooks=frozenset(playbooks)))
    matched = Fact("match", {"playbook": "dashboard_slow", "band": "answer"})
    candidate = Fact("candidate", {"playbook": "app_timeouts_peak", "rank": 2})
    with_candidate = engine.run([matched, candidate])
    assert [f.rule for f in with_candidate.firings] == [rule.name]
    assert engine.run([matched]).firings == []  # without that candidate close, the rule does not apply


def test_one_user_alone_cannot_promote_a_shadow_rule(ledger):
    ledger.record_resolution(FIX, "c1", "u1")
    rule = ledger.record_resolution(FIX, "c2", "u2")
    ledger.set_status(rule.name, "shadow", "learning", "start shadowing")
    for conversation in ("m1", "m2", "m3", "m4", "m5", "m6"):  # one user, many conversations, all agreeing
        assert ledger.record_shadow_case(rule.name, conversation, True, "mallory") is None
    assert ledger.shadow_record(rule.name) == (1, 1) and ledger.latest(rule.name).status == "shadow"
    for user in ("a", "b"):
        ledger.record_shadow_case(rule.name, f"conv-{user}", True, user)
    assert ledger.shadow_record(rule.name) == (3, 3)  # three users, each counted once
    Privacy(ledger.records.db).forget("mallory")
    assert ledger.shadow_record(rule.name) == (2, 2)


def test_all_posteriors_at_once_agree_with_each(ledger):
    ledger.record_outcome("dashboard_slow", "kill_slow_queries", "database", "c1", "u1", True, 0.5)
    ledger.record_outcome("dashboard_slow", "rebuild_cache", "cache", "c1", "u1", True, 0.5)
    ledger.record_outcome("dashboard_slow", "kill_slow_queries", "database", "c2", "u2", False)
    every = ledger.posteriors()
    assert every == {key: ledger.posterior(*key) for key in every}
    assert every[("dashboard_slow", "kill_slow_queries", "database")] == (1.5, 2.0)


def test_the_learning_policy_comes_from_the_settings(tmp_path):
    def load(environ):
        return load_settings(environ=environ, default_file=None, data_dir=tmp_path)

    policy = Policy.from_settings(load({"FIRSTLINE_LEARN_MIN_USERS": "3", "FIRSTLINE_LEARN_SHADOW_PRECISION": "0.9",
                                        "FIRSTLINE_LEARN_AUTO_SHADOW": "false"}))
    assert (policy.min_users, policy.shadow_precision, policy.auto_shadow) == (3, 0.9, False)
    assert Policy.from_settings(load({})) == Policy()  # the embedded defaults are the ledger's
    with pytest.raises(ConfigurationError, match="learn_min_users"):
        load({"FIRSTLINE_LEARN_MIN_USERS": "1"})  # one user alone must never be enough


def test_fire_counts_are_of_learned_rules_only(ledger):
    ledger.record_resolution(FIX, "c1", "u1")
    rule = ledger.record_resolution(FIX, "c2", "u2")
    for seq, name in enumerate((rule.name, rule.name, "learned_resolution_for_an_unhealthy_metric")):
        ledger.records.db.execute("INSERT INTO rules_fired VALUES (?, ?, ?, ?)", (f"d{seq}", seq, name, "{}"))
    assert ledger.fire_counts() == {rule.name: 2}  # the built-in rule's name only looks learned
    assert ledger.fire_counts([rule.name]) == {rule.name: 2} and ledger.fire_counts([]) == {}
