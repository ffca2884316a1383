from pathlib import Path

import pytest

from rules import evaluate, model  # `Test` by another name, or pytest collects it
from rules.evaluate import Fact, matches, why_not
from rules.loader import load_rules

T = model.Test
holds = evaluate.passes

MATCH = Fact("f1", "match", {"playbook": "dashboard_slow", "kind": "technical", "band": "answer"})
METRICS = [
    Fact("f2", "metric", {"service": "database", "name": "slow_queries", "value": 3, "status": "ok"}),
    Fact("f3", "metric", {"service": "cache", "name": "cache_hit_ratio", "value": 0.5, "status": "unhealthy"}),
]


def one_rule(tmp_path: Path, when: str):
    path = tmp_path / "r.yaml"
    path.write_text(f"rules:\n  - name: the_rule\n    when: {when}\n    then: [{{decline: {{}}}}]\n", encoding="utf-8")
    return load_rules([path]).rules[0]


@pytest.mark.parametrize(("test", "fields", "expected"), [
    (T("v", "eq", 3), {"v": 3}, True),
    (T("v", "eq", 3), {"v": 3.0}, True),
    (T("v", "ne", 3), {"v": 4}, True),
    (T("v", "ne", 3), {}, False),  # a test on an absent field fails, as in durable-rules
    (T("v", "lt", 3), {"v": 2}, True),
    (T("v", "ge", 3), {"v": 3}, True),
    (T("v", "gt", 3), {"v": "x"}, False),
    (T("v", "in", (1, 2)), {"v": 2}, True),
    (T("v", "not_in", (1, 2)), {"v": 3}, True),
    (T("v", "not_in", (1, 2)), {}, False),
    (T("v", "exists", True), {"v": None}, True),
    (T("v", "exists", False), {}, True),
])
def test_each_operator(test, fields, expected):
    assert holds(test, fields, {}) is expected


def test_refs_read_the_bound_fact():
    bound = {"m": Fact("f9", "metric", {"service": "cache"})}
    assert holds(T("signal_service", "eq", ref=("m", "service")), {"signal_service": "cache"}, bound)
    assert not holds(T("signal_service", "eq", ref=("m", "service")), {"signal_service": "db"}, bound)
    assert not holds(T("signal_service", "eq", ref=("gone", "service")), {"signal_service": "db"}, bound)


def test_matches_finds_every_binding_and_respects_none(tmp_path):
    rule = one_rule(tmp_path, "{all: [{match: {band: answer}}, {metric: {}}, {none: {veto: {}}}]}")
    found = list(matches(rule.alternatives[0], [MATCH, *METRICS]))
    assert [b["metric"].id for b in found] == ["f2", "f3"]
    assert list(matches(rule.alternatives[0], [MATCH, *METRICS, Fact("f4", "veto", {})])) == []


def test_why_not_names_the_failed_pattern_and_the_closest_facts(tmp_path):
    rule = one_rule(tmp_path, "{all: [{match: {band: answer}}, {metric: {service: database, status: unhealthy}}]}")
    report = why_not(rule, [MATCH, *METRICS], fired=False)
    (alternative,) = report.alternatives
    assert not alternative.holds
    assert alternative.matched == (("match (band == 'answer')", "f1"),)
    assert alternative.failed_pattern == "metric (service == 'database', status == 'unhealthy')"
    assert [(m.fact, m.test, m.expected, m.actual) for m in alternative.misses] == [
        ("f2", "status == 'unhealthy'", "unhealthy", "ok"),
        ("f3", "service == 'database'", "database", "cache"),
    ]
    text = "\n".join(report.lines())
    assert "f2: status == 'unhealthy' fails, the fact has 'ok'" in text


def test_why_not_for_a_missing_type_a_blocking_fact_and_a_rule_that_fired(tmp_path):
    rule = one_rule(tmp_path, "{all: [{match: {}}, {none: {veto: {}}}, {hypothesis: {}}]}")
    veto = Fact("f7", "veto", {"action": "x"})
    (alt,) = why_not(rule, [MATCH, veto], fired=False).alternatives
    assert (alt.failed_pattern, alt.reason) == ("no veto (any)", "fact f7 matches it")
    (alt,) = why_not(rule, [MATCH], fired=False).alternatives
    assert alt.reason == "there is no hypothesis fact"
    assert why_not(rule, [MATCH], fired=True).lines() == ["the_rule fired."]
    assert why_not(rule, [MATCH, Fact("f8", "hypothesis", {})], fired=False).alternatives[0].holds
