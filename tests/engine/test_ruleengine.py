import threading
from pathlib import Path

from core.settings import PROJECT_ROOT
from engine.decision.ruleengine import Fact, RuleEngine
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
BUSINESS = Fact("match", {"playbook": "discount", "category": "pricing", "kind": "business", "band": "answer"})


def engine_from(tmp_path: Path, text: str, name: str = "r.yaml") -> RuleEngine:
    return RuleEngine(load_rules([write(tmp_path, text, name)]))


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def metric(status: str, service: str = "database", name: str = "slow_queries") -> Fact:
    return Fact("metric", {"service": service, "name": name, "value": 30, "limit": 8, "status": status})


def remedy() -> Fact:
    return Fact("remedy", {"rank": 1, "action": "kill_slow_queries", "target": "database",
                           "signal_service": "database", "signal_metric": "slow_queries", "default_rank": 0})


def fired(run) -> list[str]:
    return [f.rule for f in run.firings]


def test_forward_chaining_through_an_asserted_hypothesis(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([metric("unhealthy"), remedy()])
    assert fired(run) == ["slow_db_is_a_hypothesis", "fix_db_slow"]
    assert [f.type for f in run.asserted] == ["hypothesis"]
    assert run.asserted[0].fields == {"name": "db_slow", "service": "database", "metric": "slow_queries"}
    (intent,) = run.intents
    assert intent.verb == "remediate" and (intent.args["name"], intent.args["target"]) == (
        "kill_slow_queries", "database")
    assert not run.errors


def test_the_trace_names_the_facts_each_firing_matched(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([metric("unhealthy"), remedy()])
    trace = run.trace()
    facts = {f["id"]: f for f in trace["facts"]}
    first, second = trace["fired"]
    assert (first["seq"], first["rule"], first["facts"]) == (1, "slow_db_is_a_hypothesis", {"metric": "f1"})
    (hypothesis,) = first["asserted"]
    assert facts[hypothesis]["origin"] == "rule" and facts[hypothesis]["by"] == 1
    assert second["facts"] == {"hypothesis": hypothesis, "remedy": "f2"}
    assert second["intents"][0]["verb"] == "remediate"


def test_nothing_fires_when_nothing_matches(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([metric("ok"), remedy()])
    assert run.firings == [] and run.intents == [] and not run.errors


def test_templates_are_filled_from_matched_facts(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([BUSINESS])
    assert run.intents[0].args == {"category": "pricing", "summary": "about discount"}


def test_salience_orders_firings(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([metric("unhealthy"), remedy(), BUSINESS])
    assert fired(run) == ["business_escalates", "slow_db_is_a_hypothesis", "fix_db_slow"]


NEGATION = """
rules:
  - name: blocker
    salience: 90
    when: {all: [{match: {}}]}
    then: [{assert: {veto: {action: x, target: y, reason: "no"}}}]
  - name: guarded
    salience: 50
    when: {all: [{proposal: {}}, {none: {veto: {action: {ref: proposal.action}}}}]}
    then: [{decline: {}}]
"""


def test_none_is_checked_when_the_rule_fires_not_when_it_was_activated(tmp_path):
    # `guarded` is activated by the input facts, before `blocker` asserts the veto that forbids it.
    run = engine_from(tmp_path, NEGATION).run([Fact("match", {}), Fact("proposal", {"action": "x"})])
    assert fired(run) == ["blocker"]
    (skip,) = run.skips
    assert skip.rule == "guarded" and "does not hold" in skip.reason
    assert engine_from(tmp_path, NEGATION).run([Fact("proposal", {"action": "x"})]).intents[0].verb == "decline"


def test_a_held_back_rule_fires_when_its_blocker_is_retracted(tmp_path):
    text = NEGATION + """
  - name: lifts_the_veto
    salience: 10
    when: {all: [{veto: {}}]}
    then: [{retract: veto}]
"""
    run = engine_from(tmp_path, text).run([Fact("match", {}), Fact("proposal", {"action": "x"})])
    assert fired(run) == ["blocker", "lifts_the_veto", "guarded"]
    assert [i.verb for i in run.intents] == ["decline"]


def test_one_rules_negation_does_not_drop_another_rules_activation(tmp_path):
    # durable-rules' own $not dropped `learned` here once `generic` asserted what its negation forbids.
    text = """
rules:
  - name: generic
    salience: 500
    when: {all: [{match: {}}, {metric: {status: unhealthy}}, {none: {hypothesis: {}}}]}
    then: [{assert: {hypothesis: {name: x}}}]
  - name: learned
    salience: 450
    when: {all: [{match: {}}, {candidate: {playbook: {ref: match.playbook}}}, {metric: {status: unhealthy}}]}
    then: [{decline: {}}]
"""
    facts = [Fact("match", {"playbook": "p"}), metric("unhealthy"), Fact("candidate", {"playbook": "p"})]
    assert fired(engine_from(tmp_path, text).run(facts)) == ["generic", "learned"]


def test_a_retracted_fact_cancels_the_activations_that_need_it(tmp_path):
    text = """
rules:
  - name: withdraw
    salience: 90
    when: {all: [{proposal: {}}, {action: {name: {ref: proposal.action}, status: failed}}]}
    then: [{retract: proposal}]
  - name: run_it
    salience: 10
    when: {all: [{proposal: {}}]}
    then: [{remediate: {from: proposal}}]
"""
    proposal = Fact("proposal", {"action": "restart_service", "target": "api"})
    failed = Fact("action", {"name": "restart_service", "status": "failed"})
    engine = engine_from(tmp_path, text)
    assert fired(engine.run([proposal, failed])) == ["withdraw"]
    assert fired(engine.run([proposal])) == ["run_it"]


def test_an_action_that_raises_is_a_failed_action_and_the_engine_goes_on(tmp_path):
    text = """
rules:
  - name: retracts_twice
    salience: 90
    when: {all: [{proposal: {}}]}
    then: [{retract: proposal}, {retract: proposal}, {clarify: {}}]
  - name: later_rule
    salience: 10
    when: {all: [{match: {}}]}
    then: [{decline: {}}]
"""
    run = engine_from(tmp_path, text).run([Fact("match", {}), Fact("proposal", {"action": "x"})])
    assert fired(run) == ["retracts_twice", "later_rule"]
    (failure,) = run.failures
    assert (failure.rule, failure.verb) == ("retracts_twice", "retract") and "already retracted" in failure.error
    assert [i.verb for i in run.intents] == ["clarify", "decline"]  # the actions after it, and later rules, ran
    assert run.trace()["fired"][0]["failures"] == [f"retract: {failure.error}"]


def test_durable_rules_errors_are_recorded_not_raised(tmp_path):
    # One fact passing more than 64 distinct conditions at once is refused by durable-rules (error 303).
    rules = "\n".join(f"  - {{name: rule_{i:03d}, when: {{all: [{{match: {{score: {{ge: {i}}}}}}}]}}, "
                      "then: [{decline: {}}]}" for i in range(70))
    engine = engine_from(tmp_path, "rules:\n" + rules + "\n")
    run = engine.run([Fact("match", {"score": 100})])
    assert run.firings == [] and any("error code: 303" in e for e in run.errors)
    for _ in range(1100):  # a refused session holds no state, so the 1024 sessions are not used up either
        engine.run([Fact("match", {"score": 100})])
    assert len(engine.run([Fact("match", {"score": 5})]).firings) == 6


def test_facts_of_unknown_types_are_ignored_and_reported(tmp_path):
    run = engine_from(tmp_path, CHAIN).run([Fact("weather", {"sunny": True}), BUSINESS])
    assert fired(run) == ["business_escalates"]
    assert run.errors == ["facts of unknown type ignored: weather"]


def test_an_empty_fact_list_is_harmless(tmp_path):
    assert engine_from(tmp_path, CHAIN).run([]).firings == []


def test_many_decisions_do_not_exhaust_sessions(tmp_path):
    # durable-rules allows 1024 live sessions per ruleset; each decision's session must be freed.
    engine = engine_from(tmp_path, CHAIN)
    for _ in range(1100):
        engine.run([metric("ok")])


ISOLATION = """
rules:
  - name: name_the_suspect
    salience: 50
    when: {all: [{message: {}}, {metric: {status: unhealthy}}]}
    then: [{assert: {hypothesis: {name: "{message.text}", service: "{metric.service}"}}}]
  - name: act_on_own_suspect
    salience: 40
    when: {all: [{hypothesis: {}}, {message: {text: {ref: hypothesis.name}}}]}
    then: [{reply: {template: "{message.text}"}}]
  - name: react_to_a_veto
    salience: 30
    when: {all: [{veto: {}}]}
    then: [{decline: {}}]
"""


def test_concurrent_conversations_never_see_each_others_facts(tmp_path):
    engine = engine_from(tmp_path, ISOLATION)
    problems: list[str] = []

    def converse(thread: int) -> None:
        for turn in range(40):
            marker = f"t{thread}_{turn}"
            facts = [Fact("message", {"text": marker, "length": len(marker)}), metric("unhealthy", f"svc{thread}")]
            if thread % 2:  # odd threads also carry a veto; even threads must never react to one
                facts.append(Fact("veto", {"action": marker}))
            try:
                run = engine.run(facts)
            except Exception as error:  # noqa: BLE001 - reported below with the thread that hit it
                problems.append(f"{marker}: {error!r}")
                continue
            values = {str(v) for f in run.facts.values() for v in f.fields.values()}
            foreign = {v for v in values if v.startswith("t") and "_" in v and v != marker} | (
                {v for v in values if v.startswith("svc") and v != f"svc{thread}"})
            expected = ["name_the_suspect", "act_on_own_suspect"] + (["react_to_a_veto"] if thread % 2 else [])
            if foreign or fired(run) != expected or [i.args.get("template") for i in run.intents][:1] != [marker]:
                problems.append(f"{marker}: fired {fired(run)}, foreign facts {sorted(foreign)}")

    threads = [threading.Thread(target=converse, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems, problems[:5]


def test_swap_makes_the_new_version_current_and_sessions_in_flight_finish_on_theirs(tmp_path):
    engine = engine_from(tmp_path, CHAIN)
    old = engine.rulebase.version
    new_rules = load_rules([write(tmp_path, CHAIN.replace("name: business_escalates", "name: business_goes_up"),
                                  "r2.yaml")])
    with engine.session() as in_flight:
        engine.swap(new_rules)
        assert engine.rulebase.version == new_rules.version != old
        in_flight.add([BUSINESS])
        assert engine.registered_rulesets() == 2  # the old version waits for this session
    assert (in_flight.run.ruleset_version, fired(in_flight.run)) == (old, ["business_escalates"])
    assert engine.registered_rulesets() == 1 and engine.deleted_versions == 1  # drained, then deleted
    run = engine.run([BUSINESS])
    assert (run.ruleset_version, fired(run)) == (new_rules.version, ["business_goes_up"])


def test_rules_change_while_decisions_run(tmp_path):
    versions = {
        "blue": load_rules([write(tmp_path, CHAIN.replace("business_escalates", "blue_rule"), "blue.yaml")]),
        "green": load_rules([write(tmp_path, CHAIN.replace("business_escalates", "green_rule"), "green.yaml")]),
    }
    rule_of = {rb.version: f"{colour}_rule" for colour, rb in versions.items()}
    engine = RuleEngine(versions["blue"])
    stop = threading.Event()
    problems: list[str] = []
    counts = []

    def decide() -> None:
        count = 0
        while not stop.is_set():
            run = engine.run([BUSINESS])
            count += 1
            if run.errors or fired(run) != [rule_of[run.ruleset_version]]:
                problems.append(f"{run.ruleset_version}: fired {fired(run)}, errors {run.errors}")
        counts.append(count)

    threads = [threading.Thread(target=decide) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(30):
        engine.swap(versions["green" if i % 2 == 0 else "blue"])
    stop.set()
    for thread in threads:
        thread.join()
    assert not problems, problems[:5]
    assert sum(counts) > 30
    assert engine.deleted_versions == 30 and engine.registered_rulesets() == 1


def test_five_thousand_learned_rules_are_sharded_and_each_decision_finds_its_own(tmp_path):
    from bench import synthetic

    pack = synthetic.default_pack()
    rulebase = load_rules(synthetic.write_rules(tmp_path / "rules", 5000, pack))
    assert len(rulebase) == 5000 + len(load_rules([PROJECT_ROOT / "rules" / "builtin"]))
    engine = RuleEngine(rulebase)
    assert engine.shards > 10  # durable-rules hangs on one ruleset of 512 rules
    for i in range(0, len(pack.playbooks), 7):
        playbook, signal = pack.playbooks[i], pack.signals[(3 * i) % len(pack.signals)]
        want = synthetic.expected(5000, pack, playbook, signal)
        run = engine.run(synthetic.decision(pack, playbook, signal))
        learned = {f.rule for f in run.firings if f.rule.startswith("learned_")}
        remediations = {(i.args["name"], i.args["target"]) for i in run.intents if i.verb == "remediate"}
        assert not run.errors
        assert remediations == set(want), (playbook, signal)
        assert all(len(learned & names) == 1 for names in want.values())  # one per remediation, the rest redundant


def test_aliases_may_be_any_name_even_ones_durable_rules_uses(tmp_path):
    # durable-rules' closure has attributes `s` (the session state) and `m`; aliases must not reach them.
    text = """
rules:
  - name: odd_aliases
    when: {all: [{as: s, metric: {}}, {as: m, remedy: {signal_service: {ref: s.service}}}]}
    then: [{reply: {template: "{s.service} {m.action}"}}]
"""
    run = engine_from(tmp_path, text).run([metric("unhealthy"), remedy()])
    assert [i.args["template"] for i in run.intents] == ["database kill_slow_queries"]


def test_numbers_in_exponent_form_reach_the_rules(tmp_path):
    """durable-rules drops a whole batch, silently, at "1e+16" or "1e-05" (how Python writes 1e16 and 0.00001):
    every finite number must still match, and a non-finite one is refused with a word, not dropped silently."""
    engine = engine_from(tmp_path, CHAIN)
    for value in (1e16, 2e-05, 1e-05, 3e300, 1.5e-07, 123456789012345678.0, 9e-10):
        fact = Fact("metric", {"service": "database", "name": "slow_queries", "value": value, "limit": 8,
                               "status": "unhealthy", "history": [value, 1e20]})
        assert fired(engine.run([fact, remedy()])) == ["slow_db_is_a_hypothesis", "fix_db_slow"], value
    run = engine.run([Fact("metric", {"service": "database", "name": "slow_queries", "value": float("inf"),
                                      "limit": 8, "status": "unhealthy"}), remedy()])
    assert fired(run) == [] and any("not finite" in e for e in run.errors)
