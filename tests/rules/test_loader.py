from pathlib import Path

import pytest

from core.errors import RuleError
from core.settings import PROJECT_ROOT
from rules.compiler import compile_rulebase
from rules.loader import load_rules, render

ACTIONS = {"restart_service": frozenset({"api", "web"})}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load_rules([path], ACTIONS)
    return [str(p) for p in caught.value.problems]


def test_builtin_rules_load_and_compile():
    rulebase = load_rules([PROJECT_ROOT / "rules" / "builtin"])
    names = {rule.name for rule in rulebase.rules}
    assert {"business_request_goes_to_a_person", "out_of_scope_is_declined", "unsure_match_asks_which"} <= names
    compiled = compile_rulebase(rulebase)
    assert {name.split("#")[0] for name in compiled} == names


def test_compiled_form_of_a_rule(tmp_path):
    path = write(tmp_path, """
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
    compiled = compile_rulebase(load_rules([path], ACTIONS))
    assert compiled == {
        "restart_busy_api#0": {
            "all": [
                {"metric": {"$and": [
                    {"t": "metric"}, {"service": "api"},
                    {"$or": [{"name": "cpu_pct"}, {"name": "memory_pct"}]},
                    {"$gt": {"value": 90}},
                ]}},
                {"not_hypothesis_1$not": {"$and": [{"t": "hypothesis"}, {"name": "maintenance"}]}},
            ],
            "run": "restart_busy_api#0",
            "pri": 990,
        }
    }


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
    problems = problems_of(path)
    text = "\n".join(problems)
    assert "rules[0].when.all[0].weather: unknown fact 'weather'" in text
    assert "rules[0].when.all[1].match.colour: match has no field 'colour'" in text
    assert "rules[0].then[0].remediate.name: unknown remediation 'reboot_universe'" in text
    assert "{nothing.here} names no matched fact" in text
    assert "rules[1].then[0]: Additional properties are not allowed ('teleport' was unexpected)" in text
    assert all(p.startswith(f"{path}:") for p in problems)
    assert any(":10:" in p or ":11:" in p for p in problems)  # lines point into the file


def test_type_and_operator_errors(tmp_path):
    path = write(tmp_path, """
rules:
  - name: typed_rule
    when:
      all:
        - match: {confidence: {gt: high}, band: {near: answer}}
    then:
      - clarify: {}
""")
    text = "\n".join(problems_of(path))
    assert "'high' is not a number" in text
    assert "unknown operator 'near'" in text


def test_duplicate_rule_names_are_refused(tmp_path):
    rule = "  - name: same_name\n    when: {all: [{match: {}}]}\n    then: [{clarify: {}}]\n"
    path = write(tmp_path, "rules:\n" + rule + rule)
    (problem,) = problems_of(path)
    assert "duplicate rule name" in problem


def test_schema_errors_are_reported(tmp_path):
    path = write(tmp_path, "rules:\n  - name: x\n")
    problems = problems_of(path)
    assert any("'when' is a required property" in p for p in problems)


def test_version_changes_with_content(tmp_path):
    rule = ("rules:\n  - name: one_rule\n    salience: {s}\n"
            "    when: {{all: [{{match: {{}}}}]}}\n    then: [{{clarify: {{}}}}]\n")
    first = load_rules([write(tmp_path, rule.format(s=1))], ACTIONS).version
    second = load_rules([write(tmp_path, rule.format(s=2))], ACTIONS).version
    assert first != second


def test_render_is_substitution_not_evaluation():
    bindings = {"match": {"category": "pricing"}}
    assert render("{match.category}: {match.__class__}", bindings) == "pricing: {match.__class__}"
    assert render("{__import__.os}", bindings) == "{__import__.os}"
