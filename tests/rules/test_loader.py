from pathlib import Path

import pytest

from core.errors import RuleError
from core.settings import PROJECT_ROOT
from rules.compiler import compile_rulebase, compiled_size
from rules.loader import fill, load_rules, render

ACTIONS = {"restart_service": frozenset({"api", "web"}), "rebuild_cache": frozenset({"cache"})}
PLAYBOOKS = frozenset({"dashboard_slow", "refund_request"})


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str):
    return load_rules([write(tmp_path, text)], ACTIONS, known_playbooks=PLAYBOOKS)


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load(tmp_path, text)
    return [str(p) for p in caught.value.problems]


def rule(when: str, then: str = "[{decline: {}}]", name: str = "a_rule") -> str:
    return f"rules:\n  - name: {name}\n    when: {when}\n    then: {then}\n"


def test_builtin_rules_load_and_compile():
    rulebase = load_rules([PROJECT_ROOT / "rules" / "builtin"])
    names = {rule.name for rule in rulebase.rules}
    assert {"business_request_goes_to_a_person", "out_of_scope_is_declined", "unsure_match_asks_which",
            "never_repeat_a_remedy_that_just_failed"} <= names
    assert {r.ruleset for r in rulebase.rules} == {"policy", "diagnosis", "safety", "healing"}
    compiled = compile_rulebase(rulebase)
    assert len(compiled) == sum(compiled_size(r) for r in rulebase.rules)
    assert {name.split("#")[0] for name in compiled if not name.startswith("__revive")} == names


def test_compiled_form_of_a_rule(tmp_path):
    rulebase = load(tmp_path, """
rules:
  - name: restart_busy_api
    salience: 10
    when:
      all:
        - metric: {service: api, name: {in: [cpu_pct, memory_pct]}, value: {gt: 90}}
        - none: {hypothesis: {name: maintenance}}
    then:
      - remediate: {name: restart_service, target: api}
""")
    assert compile_rulebase(rulebase) == {
        "restart_busy_api#0": {
            "all": [{"metric": {"$and": [
                {"t": "metric"}, {"service": "api"},
                {"$or": [{"name": "cpu_pct"}, {"name": "memory_pct"}]},
                {"$gt": {"value": 90}},
            ]}}],
            "run": "restart_busy_api#0",
            "pri": 990,
        },
        # The negation is checked by the engine; this rule puts a held-back activation back on the agenda.
        "__revive#restart_busy_api#0": {
            "all": [{"revive": {"$and": [{"t": "__revive"}, {"rule": "restart_busy_api#0"}]}}],
            "run": "__revive#restart_busy_api#0",
            "pri": 990,
        },
    }
    (only,) = rulebase.rules
    assert [p.describe() for p in only.alternatives[0]] == [
        "metric (service == 'api', name in ('cpu_pct', 'memory_pct'), value > 90)",
        "no hypothesis (name == 'maintenance')",
    ]


def test_nested_all_any_none_become_alternatives(tmp_path):
    rulebase = load(tmp_path, """
rules:
  - name: nested_rule
    when:
      all:
        - match: {kind: technical}
        - any:
            - metric: {name: cpu_pct, status: unhealthy}
            - all:
                - metric: {name: memory_pct, trend: rising}
                - service: {name: {ref: metric.service}, root_cause: true}
        - none: [{veto: {}}, {proposal: {}}]
    then:
      - assert: {hypothesis: {name: busy, service: "{metric.service}"}}
""")
    (nested,) = rulebase.rules
    assert [[p.describe() for p in alt] for alt in nested.alternatives] == [
        ["match (kind == 'technical')", "metric (name == 'cpu_pct', status == 'unhealthy')",
         "no veto (any)", "no proposal (any)"],
        ["match (kind == 'technical')", "metric (name == 'memory_pct', trend == 'rising')",
         "service (name == metric.service, root_cause == True)", "no veto (any)", "no proposal (any)"],
    ]
    # Both branches of `any` bind `metric`, so the action may use it.
    assert set(nested.bound_everywhere()) == {"match", "metric"}
    assert len(compile_rulebase(rulebase)) == 4  # two alternatives, each with its revival rule


def test_a_placeholder_bound_in_only_one_alternative_is_refused(tmp_path):
    text = rule("{any: [{match: {band: answer}}, {metric: {status: unhealthy}}]}",
                "[{reply: {template: 'about {match.playbook}'}}]")
    (problem,) = problems_of(tmp_path, text)
    assert "{match.playbook} names no matched fact; bound in every alternative: none" in problem


def test_unknown_fact_field_action_and_alias_are_refused_at_load(tmp_path):
    path = write(tmp_path, """
rules:
  - name: bad_rule
    when:
      all:
        - weather: {sunny: true}
        - match: {colour: blue}
    then:
      - remediate: {name: reboot_universe, target: api}
      - escalate: {category: pricing, summary: "{nothing.here}"}
  - name: second_rule
    when: {all: [{match: {}}]}
    then:
      - teleport: {}
""")
    with pytest.raises(RuleError) as caught:
        load_rules([path], ACTIONS)
    problems = [str(p) for p in caught.value.problems]
    text = "\n".join(problems)
    # file, line, rule and field of each problem
    assert f"{path}:6: rule bad_rule: when.all[0].weather: unknown fact 'weather'" in text
    assert f"{path}:7: rule bad_rule: when.all[1].match.colour: match has no field 'colour'" in text
    assert f"{path}:9: rule bad_rule: then[0].remediate.name: unknown remediation 'reboot_universe'" in text
    assert f"{path}:10: rule bad_rule: then[1].escalate.summary: {{nothing.here}} names no matched fact" in text
    assert "rule second_rule: then[0]: Additional properties are not allowed ('teleport' was unexpected)" in text
    assert all(p.startswith(f"{path}:") for p in problems)


@pytest.mark.parametrize(("when", "then", "message"), [
    ("{all: [{match: {band: answr}}]}", "[{clarify: {}}]", "'answr' is not one of: answer, clarify, out_of_scope"),
    ("{all: [{match: {confidence: {gt: high}}}]}", "[{clarify: {}}]", "'high' is not a number"),
    ("{all: [{match: {band: {near: answer}}}]}", "[{clarify: {}}]", "unknown operator 'near'"),
    ("{all: [{match: {band: {gt: answer}}}]}", "[{clarify: {}}]", "gt compares numbers, and band is a str"),
    ("{all: [{match: {band: {in: []}}}]}", "[{clarify: {}}]", "in takes a non-empty list"),
    ("{all: [{metric: {service: {ref: remedy.target}}}, {remedy: {}}]}", "[{clarify: {}}]",
     "ref remedy.target must name an earlier pattern of the same alternative (bound before it: none)"),
    ("{all: [{remedy: {}}, {metric: {value: {ref: remedy.target}}}]}", "[{clarify: {}}]",
     "ref remedy.target is a str and value a number"),
    ("{all: [{match: {}, within: 60}]}", "[{clarify: {}}]", "match facts have no age; `within` works on: action"),
    ("{all: [{none: {veto: {}}}]}", "[{clarify: {}}]", "at least one pattern that is not `none`"),
    ("{all: [{match: {}}, {none: {veto: {}}, as: v}]}", "[{clarify: {}}]", "`none` stands alone"),
    ("{all: [{match: {}}, {match: {}, as: match}]}", "[{clarify: {}}]", "alias 'match' is already used"),
    ("{all: [{match: {}}]}", "[{escalate: {category: performance}}]",
     "escalate goes to a business category (a person decides) or to engineering"),
    ("{all: [{match: {}}]}", "[{clarify: {candidates: [no_such_playbook]}}]",
     "unknown playbook 'no_such_playbook'"),
    ("{all: [{match: {}}]}", "[{remediate: {name: rebuild_cache, target: api}}]",
     "rebuild_cache cannot target 'api'; it can target: cache"),
    ("{all: [{match: {}}]}", "[{remediate: {target: api}}]",
     "remediate needs `from: ALIAS`, or `name` and `target`"),
    ("{all: [{match: {}}]}", "[{remediate: {from: match}}]",
     "'match' is not the alias of a matched fact with an action"),
    ("{all: [{match: {}}]}", "[{assert: {match: {band: answer}}}]",
     "rules may assert only: hypothesis, proposal, veto"),
    ("{all: [{match: {}}]}", "[{assert: {hypothesis: {colour: red}}}]", "hypothesis has no field 'colour'"),
    ("{all: [{match: {}}]}", "[{assert: {hypothesis: {name: 3}}}]", "3 is not a str"),
    ("{all: [{match: {}}]}", "[{assert: {veto: {action: '{match.confidence}'}}}]",
     "{match.confidence} is a number, the field a str"),
    ("{all: [{match: {}}]}", "[{retract: remedy}]", "retract names the alias of a matched fact"),
])
def test_meaning_errors_name_the_field(tmp_path, when, then, message):
    problems = problems_of(tmp_path, rule(when, then))
    assert any(message in p for p in problems), problems
    assert all(p.startswith(str(tmp_path / "rules.yaml") + ":") for p in problems)


def test_every_problem_in_every_file_is_reported_at_once(tmp_path):
    first = write(tmp_path, rule("{all: [{weather: {}}]}", name="first_rule"), "a.yaml")
    second = write(tmp_path, rule("{all: [{match: {band: nope}}]}", name="second_rule"), "b.yaml")
    broken = write(tmp_path, "rules: [", "c.yaml")
    with pytest.raises(RuleError) as caught:
        load_rules([tmp_path], ACTIONS)
    text = str(caught.value)
    assert str(first) in text and str(second) in text and f"{broken}:" in text and "YAML syntax" in text
    assert text.startswith("3 rule problems:")


def test_too_many_alternatives_are_refused(tmp_path):
    branch = "{any: [{metric: {name: a}}, {metric: {name: b}}]}"
    problems = problems_of(tmp_path, rule("{all: [" + ", ".join([branch] * 5) + "]}"))
    assert any("expands to" in p and "the limit is 16" in p for p in problems)


def test_within_is_an_age_test(tmp_path):
    (only,) = load(tmp_path, rule("{all: [{match: {}}, {action: {status: failed}, within: 600}]}")).rules
    assert only.alternatives[0][1].describe() == "action (status == 'failed', age_s <= 600)"


def test_duplicate_rule_names_are_refused(tmp_path):
    one = "  - name: same_name\n    when: {all: [{match: {}}]}\n    then: [{clarify: {}}]\n"
    (problem,) = problems_of(tmp_path, "rules:\n" + one + one)
    assert "duplicate rule name" in problem


def test_schema_errors_are_reported(tmp_path):
    problems = problems_of(tmp_path, "rules:\n  - name: x\n")
    assert any("'when' is a required property" in p for p in problems)


def test_a_missing_folder_is_a_problem(tmp_path):
    with pytest.raises(RuleError, match="no such file or folder"):
        load_rules([tmp_path / "nowhere"])


def test_version_changes_with_content(tmp_path):
    text = ("rules:\n  - name: one_rule\n    salience: {s}\n    when: {{all: [{{match: {{}}}}]}}\n"
            "    then: [{{clarify: {{}}}}]\n")
    first = load_rules([write(tmp_path, text.format(s=1))], ACTIONS).version
    again = load_rules([write(tmp_path, text.format(s=1))], ACTIONS).version
    second = load_rules([write(tmp_path, text.format(s=2))], ACTIONS).version
    assert first == again != second


def test_render_is_substitution_not_evaluation():
    bindings = {"match": {"category": "pricing"}}
    assert render("{match.category}: {match.__class__}", bindings) == "pricing: {match.__class__}"
    assert render("{__import__.os}", bindings) == "{__import__.os}"


def test_fill_keeps_the_type_of_a_whole_placeholder():
    bindings = {"metric": {"value": 12.5, "service": "db"}}
    assert fill("{metric.value}", bindings) == 12.5
    assert fill("{metric.service} at {metric.value}", bindings) == "db at 12.5"
    assert fill(7, bindings) == 7


def test_an_empty_rule_file_is_refused(tmp_path):
    # A reload can see a file an editor is halfway through saving; reading it as "no rules" would switch them off.
    write(tmp_path, rule("{all: [{match: {}}]}"), "a.yaml")
    empty = write(tmp_path, "", "b.yaml")
    with pytest.raises(RuleError, match=f"{empty}: the file is empty"):
        load_rules([tmp_path])
