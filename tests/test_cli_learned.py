"""`firstline learned ...` as a curator runs it, against a ledger the system filled."""

import json

from core.settings import load_settings
from engine.actions.catalogue import action_targets
from engine.learning.ledger import Fix, LearningLedger, rule_validator
from engine.store import DuckDBStore
from engine.wiring import load_pack
from tests.conftest import build_parts
from tests.test_cli import assert_one_line_error, firstline

FIX = Fix("dashboard_slow", "kill_slow_queries", "database", "database", "slow_queries")


def seed(data_dir) -> str:
    settings = load_settings(environ={}, default_file=None, data_dir=data_dir)
    topology, playbooks = load_pack(settings)
    store = DuckDBStore(settings.database_path)
    try:
        ledger = LearningLedger(store, validate=rule_validator(action_targets(topology), frozenset(playbooks)))
        ledger.record_resolution(FIX, "conv-a", "alice")
        return ledger.record_resolution(FIX, "conv-b", "bob").name
    finally:
        store.close()


def test_a_curator_reviews_approves_diffs_and_reverts(tmp_path):
    name = seed(tmp_path)
    listed = json.loads(firstline("learned", "list", "--json", data_dir=tmp_path).stdout)
    assert [(r["name"], r["status"]) for r in listed] == [(name, "proposed")]
    shown = firstline("learned", "show", name, data_dir=tmp_path).stdout.decode()
    assert "conv-a, conv-b" in shown and "kill_slow_queries on database" in shown
    approved = firstline("learned", "approve", name, "--reason", "checked the traces", data_dir=tmp_path)
    assert approved.returncode == 0 and "version 2 is active" in approved.stdout.decode()
    assert name in (tmp_path / "learned_rules" / "active.yaml").read_text(encoding="utf-8")
    diff = firstline("learned", "diff", name, "1", "2", data_dir=tmp_path).stdout.decode()
    assert "-status: proposed" in diff and "+status: active" in diff
    reverted = firstline("learned", "revert", name, "1", data_dir=tmp_path)
    assert "version 3 restores version 1 (proposed)" in reverted.stdout.decode()


def test_unknown_rules_and_versions_get_one_clear_line(tmp_path):
    name = seed(tmp_path)
    assert_one_line_error(firstline("learned", "show", "nope", data_dir=tmp_path), "no learned rule named 'nope'")
    assert_one_line_error(firstline("learned", "revert", name, "7", data_dir=tmp_path),
                          "has no version 7; versions: 1")


def test_closing_an_unknown_handoff_is_one_clear_line(tmp_path):
    seed(tmp_path)
    result = firstline("handoff", "close", "nope", "--fix", "rebuild_cache", "--target", "cache", "--by", "eng",
                       data_dir=tmp_path)
    assert_one_line_error(result, "no hand-off 'nope'", "firstline handoff list")
    assert firstline("handoff", "list", data_dir=tmp_path).stdout.decode().strip() == "no open hand-offs"


def test_show_prints_the_record_and_example_traces_of_a_rule_taught_in_conversations(tmp_path, knowledge):
    from tests.engine.test_learning_dialogue import second_try_works

    settings = load_settings(environ={}, default_file=None, data_dir=tmp_path, simulation_faults=["slow_queries"],
                             remediation_cooldown_s=0)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        for user in ("ann", "bob"):
            second_try_works(parts, user)
        (rule,) = parts.dialogue.learning.ledger.rules("shadow")
    finally:
        parts.close()
    listed = firstline("learned", "list", data_dir=tmp_path).stdout.decode()
    assert "CONF" in listed and rule.name in listed and "shadow" in listed
    shown = firstline("learned", "show", rule.name, "--traces", data_dir=tmp_path).stdout.decode()
    assert "fired 0 times" in shown and "taught " in shown
    # Each taught decision's trace, with whether this (shadow) rule would have fired on its facts.
    assert shown.count("trace: decision") >= 2 and f"learned rule {rule.name} version 2 (shadow)" in shown


def test_curating_before_any_rule_is_live_leaves_the_server_able_to_start(tmp_path, knowledge):

    name = seed(tmp_path)  # proposed, not live
    assert firstline("learned", "list", data_dir=tmp_path).returncode == 0
    assert not (tmp_path / "learned_rules" / "active.yaml").exists()  # no file rather than an empty one
    firstline("learned", "approve", name, data_dir=tmp_path)
    assert name in (tmp_path / "learned_rules" / "active.yaml").read_text(encoding="utf-8")
    firstline("learned", "retire", name, data_dir=tmp_path)  # the last live rule goes: so does the file
    assert not (tmp_path / "learned_rules" / "active.yaml").exists()
    settings = load_settings(environ={}, default_file=None, data_dir=tmp_path)
    build_parts(settings, knowledge=knowledge).close()  # before the fix: "rules: [] should be non-empty"
