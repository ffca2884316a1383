import json
from pathlib import Path

from core.settings import PROJECT_ROOT
from rules.graph import analyse
from rules.loader import load_rules


def graph_of(tmp_path: Path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return analyse(load_rules([path]))


def test_builtin_rules_have_no_cycles_and_every_rule_can_fire():
    report = analyse(load_rules([PROJECT_ROOT / "rules" / "builtin"]))
    assert report.cycles == ()
    assert report.never_fire == ()
    feeds = {(a, b) for a, b, d in report.graph.edges(data=True) if d["kind"] == "feeds"}
    assert ("performance_slow_database_queries", "targeted_remedy_for_a_hypothesis") in feeds
    assert ("targeted_remedy_for_a_hypothesis", "run_a_proposed_remedy") in feeds
    assert ("targeted_remedy_for_a_hypothesis", "never_repeat_a_remedy_that_just_failed") in feeds
    # The hand-offs overlap with running a remedy on purpose; the report says which one wins.
    pairs = {(c.first, c.second): c.outcome for c in report.conflicts}
    assert "assistant does handoff" in pairs[("hand_off_after_repeated_failures", "run_a_proposed_remedy")]
    # Kind differs among the chat's rules; the monitor's healing rules match `signal` facts, which a chat
    # decision never carries, so their overlaps with chat rules are on paper only.
    rulesets = {r.name: r.ruleset for r in load_rules([PROJECT_ROOT / "rules" / "builtin"]).rules}
    chat_pairs = [pair for pair in pairs if "healing" not in {rulesets[pair[0]], rulesets[pair[1]]}]
    assert not any("business_request_goes_to_a_person" in pair for pair in chat_pairs)


def test_a_cycle_a_rule_that_can_never_fire_and_a_conflict_are_reported(tmp_path):
    report = graph_of(tmp_path, """
rules:
  - name: ping
    when: {all: [{hypothesis: {name: pong}}]}
    then: [{assert: {hypothesis: {name: ping}}}]
  - name: pong
    when: {all: [{hypothesis: {name: ping}}]}
    then: [{assert: {hypothesis: {name: pong}}}]
  - name: waits_for_nobody
    when: {all: [{proposal: {action: restart_service}}]}
    then: [{decline: {}}]
  - name: contradicts_itself
    when: {all: [{metric: {value: {gt: 10, lt: 5}}}]}
    then: [{decline: {}}]
  - name: two_matches_that_disagree
    when: {all: [{match: {band: answer}}, {as: other, match: {band: clarify}}]}
    then: [{decline: {}}]
  - name: escalates_pricing
    when: {all: [{match: {category: pricing}}]}
    then: [{escalate: {category: pricing}}]
  - name: declines_answers
    when: {all: [{match: {band: answer}}]}
    then: [{decline: {}}]
  - name: declines_policy
    when: {all: [{match: {category: policy}}]}
    then: [{clarify: {}}]
""")
    assert {frozenset(c) for c in report.cycles} == {frozenset({"ping", "pong"})}
    never = dict(report.never_fire)
    assert "no other rule asserts one" in never["waits_for_nobody"]
    assert "value > 10 and value < 5 cannot all hold" in never["contradicts_itself"]
    assert "its match patterns contradict each other" in never["two_matches_that_disagree"]
    assert set(never) == {"waits_for_nobody", "contradicts_itself", "two_matches_that_disagree"}
    conflicts = {(c.first, c.second) for c in report.conflicts}
    assert {"declines_answers", "escalates_pricing"} in [set(pair) for pair in conflicts]
    assert not any({"escalates_pricing", "declines_policy"} == set(pair) for pair in conflicts)  # categories differ


def test_dot_and_json_exports(tmp_path):
    report = graph_of(tmp_path, """
rules:
  - name: finds_it
    salience: 5
    when: {all: [{metric: {status: unhealthy}}]}
    then: [{assert: {hypothesis: {name: slow}}}]
  - name: uses_it
    when: {all: [{hypothesis: {name: slow}}]}
    then: [{clarify: {}}]
  - name: ignores_it
    when: {all: [{hypothesis: {name: fast}}]}
    then: [{clarify: {}}]
""")
    data = json.loads(report.json())
    assert data["edges"] == [{"from": "finds_it", "to": "uses_it", "kind": "feeds", "fact": "hypothesis"}]
    assert data["never_fire"][0]["rule"] == "ignores_it"
    dot = report.dot()
    assert dot.startswith("digraph rules {") and dot.rstrip().endswith("}")
    assert '"finds_it" -> "uses_it" [label="hypothesis", style=solid];' in dot
    assert '"finds_it" [label="finds_it\\nr · salience 5"];' in dot
