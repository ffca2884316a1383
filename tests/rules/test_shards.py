from pathlib import Path

import pytest

from rules.loader import load_rules
from rules.shards import ShardError, plan_shards, routes_of


def rulebase(tmp_path: Path, routed: dict[str, int], core: int = 2):
    lines = ["rules:"]
    for i in range(core):
        lines.append(f"  - {{name: core_{i}, when: {{all: [{{match: {{band: answer}}}}]}}, then: [{{clarify: {{}}}}]}}")
    for playbook, count in routed.items():
        for i in range(count):
            lines.append(f"  - {{name: {playbook}_{i}, when: {{all: [{{match: {{playbook: {playbook}}}}}, "
                         f"{{metric: {{value: {{gt: {i}}}}}}}]}}, then: [{{decline: {{}}}}]}}")
    path = tmp_path / "r.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_rules([path])


def test_routes_come_from_literal_playbooks_in_every_alternative(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("""rules:
  - {name: one_playbook, when: {all: [{match: {playbook: a}}]}, then: [{decline: {}}]}
  - name: two_playbooks
    when: {any: [{match: {playbook: {in: [a, b]}}}, {match: {playbook: c}}]}
    then: [{decline: {}}]
  - {name: any_playbook, when: {any: [{match: {playbook: a}}, {metric: {}}]}, then: [{decline: {}}]}
  - name: by_reference
    when: {all: [{candidate: {}}, {match: {playbook: {ref: candidate.playbook}}}]}
    then: [{decline: {}}]
""", encoding="utf-8")
    routes = {r.name: routes_of(r) for r in load_rules([path]).rules}
    assert routes == {"one_playbook": {"a"}, "two_playbooks": {"a", "b", "c"}, "any_playbook": None,
                      "by_reference": None}


def test_a_small_rule_base_is_one_shard(tmp_path):
    plan = plan_shards(rulebase(tmp_path, {"a": 3}), capacity=100)
    assert len(plan.shards) == 1 and plan.shard_for("a") == 0 and plan.shard_for("zzz") == 0


def test_a_large_rule_base_is_split_by_playbook_with_the_core_in_every_shard(tmp_path):
    base = rulebase(tmp_path, {"a": 6, "b": 5, "c": 4, "d": 3}, core=2)
    plan = plan_shards(base, capacity=12, reserved=2)  # room for 10: the core (2) and 8 routed rules
    assert all(shard.size <= 10 for shard in plan.shards)
    for shard in plan.shards:
        assert {"core_0", "core_1"} <= {r.name for r in shard.rules}
    for playbook, count in {"a": 6, "b": 5, "c": 4, "d": 3}.items():
        held = {r.name for r in plan.shards[plan.shard_for(playbook)].rules}
        assert {f"{playbook}_{i}" for i in range(count)} <= held
    assert sum(len(s.rules) for s in plan.shards) == 18 + 2 * len(plan.shards)


def test_shards_that_cannot_hold_a_decision_are_refused(tmp_path):
    with pytest.raises(ShardError, match=r"test no literal match\.playbook"):
        plan_shards(rulebase(tmp_path, {}, core=11), capacity=10)
    with pytest.raises(ShardError, match="playbook 'a' has 9 compiled rules"):
        plan_shards(rulebase(tmp_path, {"a": 9, "b": 1}, core=2), capacity=10)
