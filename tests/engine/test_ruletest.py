"""The shipped rule tests (rules/tests/*.yaml) run on the real engine, one pytest case each."""

from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from engine.decision.ruleengine import RuleEngine
from engine.decision.ruletest import run_case, run_cases
from rules.loader import load_rules
from rules.testfile import load_cases

BUILTIN = load_rules([PROJECT_ROOT / "rules" / "builtin"])
CASES = load_cases([PROJECT_ROOT / "rules" / "tests"])


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine(BUILTIN)


@pytest.mark.parametrize("case", CASES, ids=[f"{Path(c.source).stem}:{c.name}" for c in CASES])
def test_shipped_rule_test(engine, case):
    result = run_case(engine, case)
    assert result.passed, "\n".join(result.lines())


def test_a_failing_case_says_what_differed_and_why_the_rule_did_not_fire(engine, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("""tests:
  - name: expects the wrong thing
    facts:
      - match: {playbook: refund_request, category: policy, kind: business, band: clarify}
    expect:
      fired: [business_request_goes_to_a_person]
      actions: [{escalate: {category: policy}}]
      asserted: [{hypothesis: {name: x}}]
  - name: names a rule that does not exist
    facts: []
    expect: {not_fired: [no_such_rule]}
""", encoding="utf-8")
    wrong, unknown = run_cases(engine, load_cases([path]))
    text = "\n".join(wrong.lines())
    assert text.startswith(f"FAIL {path}:2 expects the wrong thing")
    assert "expected fired ['business_request_goes_to_a_person'], got ['unsure_match_asks_which']" in text
    assert "f1: band == 'answer' fails, the fact has 'clarify'" in text
    assert "expected actions [escalate {'category': 'policy'}], got [clarify {'candidates': []}]" in text
    assert "expected asserted [hypothesis {'name': 'x'}]" in text
    assert unknown.problems == ("no rule named no_such_rule in the rules under test",)
