"""The Python evaluator (used for explanations and `none`) agrees with durable-rules on what matches."""

import random

from engine.decision.ruleengine import Fact, RuleEngine
from rules import evaluate
from rules.loader import load_rules

RULES = """
rules:
  - {name: eq_and_range, when: {all: [{metric: {name: cpu_pct, value: {gt: 40, le: 80}}}]}, then: [{decline: {}}]}
  - name: membership
    when: {all: [{metric: {service: {in: [api, web]}, name: {not_in: [cpu_pct]}}}]}
    then: [{decline: {}}]
  - {name: not_equal, when: {all: [{metric: {status: {ne: ok}}}]}, then: [{decline: {}}]}
  - {name: absent, when: {all: [{metric: {trend: {exists: false}}}]}, then: [{decline: {}}]}
  - name: joined
    when: {all: [{remedy: {}}, {metric: {service: {ref: remedy.target}, value: {ge: {ref: remedy.rank}}}}]}
    then: [{decline: {}}]
  - {name: either, when: {any: [{metric: {name: memory_pct}}, {remedy: {rank: 1}}]}, then: [{decline: {}}]}
"""


def random_facts(rng: random.Random) -> list[Fact]:
    facts = []
    for _ in range(rng.randint(1, 3)):
        fields = {"service": rng.choice(["api", "web", "db"]), "name": rng.choice(["cpu_pct", "memory_pct"]),
                  "value": rng.choice([10, 40, 41, 80, 81, 95]), "status": rng.choice(["ok", "unhealthy"])}
        if rng.random() < 0.5:
            fields["trend"] = "steady"
        if rng.random() < 0.2:
            del fields["status"]
        facts.append(Fact("metric", fields))
    if rng.random() < 0.6:
        facts.append(Fact("remedy", {"rank": rng.choice([1, 40, 90]), "target": rng.choice(["api", "db"])}))
    return facts


def test_the_evaluator_fires_exactly_what_durable_rules_fires(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RULES, encoding="utf-8")
    rulebase = load_rules([path])
    engine = RuleEngine(rulebase)
    rng = random.Random(4)
    checked = 0
    for _ in range(300):
        facts = random_facts(rng)
        run = engine.run(facts)
        views = [evaluate.Fact(f"f{i}", f.type, f.fields) for i, f in enumerate(facts, 1)]
        for rule in rulebase.rules:
            expected = sum(len(list(evaluate.matches(alt, views))) for alt in rule.alternatives)
            assert sum(f.rule == rule.name for f in run.firings) == expected, (rule.name, facts)
            checked += expected
    assert checked > 300  # the facts really exercise the rules
