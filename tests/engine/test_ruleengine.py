import threading
from pathlib import Path

from engine.ruleengine import Fact, RuleEngine
from rules.loader import load_rules

CHAIN = """
rules:
  - name: slow_db_is_a_hypothesis
    salience: 50
    when:
      all:
        - metric: {service: database, name: slow_queries, status: unhealthy}
    then:
      - assert: {hypothesis: {name: db_slow, service: "{metric.service}", metric: "{metric.name}"}}
  - name: fix_db_slow
    salience: 40
    when:
      all:
        - hypothesis: {name: db_slow}
        - remedy: {signal_service: {ref: hypothesis.service}}
    then:
      - remediate: {from: remedy}
  - name: business_escalates
    salience: 90
    when:
      all:
        - match: {kind: business}
    then:
      - escalate: {category: "{match.category}", summary: "about {match.playbook}"}
"""


def engine_from(tmp_path: Path, text: str) -> RuleEngine:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return RuleEngine(load_rules([path]))


def metric(status: str) -> Fact:
    return Fact("metric", {"service": "database", "name": "slow_queries", "value": 30, "limit": 8, "status": status})


def remedy() -> Fact:
    return Fact("remedy", {"rank": 1, "action": "kill_slow_queries", "target": "database",
                           "signal_service": "database", "signal_metric": "slow_queries", "default_rank": 0})


def test_forward_chaining_through_an_asserted_hypothesis(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([metric("unhealthy"), remedy()])
    assert [f.rule for f in run.firings] == ["slow_db_is_a_hypothesis", "fix_db_slow"]
    assert [f.type for f in run.asserted] == ["hypothesis"]
    assert run.asserted[0].fields == {"name": "db_slow", "service": "database", "metric": "slow_queries"}
    (intent,) = run.intents
    assert intent.verb == "remediate" and (intent.args["name"], intent.args["target"]) == (
        "kill_slow_queries", "database")
    assert run.facts[run.firings[1].facts["hypothesis"]].fields["name"] == "db_slow"
    assert not run.errors


def test_nothing_fires_when_nothing_matches(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([metric("ok"), remedy()])
    assert run.firings == [] and run.intents == [] and not run.errors


def test_templates_are_filled_from_matched_facts(tmp_path):
    match = Fact("match", {"playbook": "discount", "category": "pricing", "kind": "business", "band": "answer"})
    run = engine_from(tmp_path, CHAIN).run([match])
    assert run.intents[0].args == {"category": "pricing", "summary": "about discount"}


def test_salience_orders_firings(tmp_path):
    match = Fact("match", {"playbook": "discount", "category": "pricing", "kind": "business", "band": "answer"})
    run = engine_from(tmp_path, CHAIN).run([metric("unhealthy"), remedy(), match])
    assert [f.rule for f in run.firings] == ["business_escalates", "slow_db_is_a_hypothesis", "fix_db_slow"]


def test_concurrent_decisions_never_see_each_other(tmp_path):
    engine = engine_from(tmp_path, CHAIN)
    results: dict[int, list[str]] = {}
    errors = []

    def decide(i: int) -> None:
        try:
            for _ in range(25):
                facts = [metric("unhealthy"), remedy()] if i % 2 else [metric("ok"), remedy()]
                run = engine.run(facts)
                results.setdefault(i, []).append(",".join(f.rule for f in run.firings))
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i, outcomes in results.items():
        expected = "slow_db_is_a_hypothesis,fix_db_slow" if i % 2 else ""
        assert set(outcomes) == {expected}, (i, set(outcomes))


def test_swap_makes_the_new_version_current(tmp_path):
    engine = engine_from(tmp_path, CHAIN)
    old = engine.rulebase.version
    path = tmp_path / "r2.yaml"
    path.write_text(CHAIN.replace("salience: 90", "salience: 95"), encoding="utf-8")
    engine.swap(load_rules([path]))
    assert engine.rulebase.version != old
    match = Fact("match", {"playbook": "discount", "category": "pricing", "kind": "business", "band": "answer"})
    assert engine.run([match]).ruleset_version == engine.rulebase.version


def test_many_decisions_do_not_exhaust_sessions(tmp_path):
    # durable-rules allows 1024 live sessions per ruleset; each decision's session must be freed.
    engine = engine_from(tmp_path, CHAIN)
    for _ in range(1100):
        engine.run([metric("ok")])


def test_an_empty_fact_list_is_harmless(tmp_path):
    assert engine_from(tmp_path, CHAIN).run([]).firings == []
