from pathlib import Path

import pytest

from core.errors import RuleError
from core.settings import PROJECT_ROOT
from rules.testfile import load_cases


def test_the_shipped_rule_tests_load():
    cases = load_cases([PROJECT_ROOT / "rules" / "tests"])
    assert len(cases) >= 18  # the learned-resolution cases went with that rule
    assert {Path(c.source).stem for c in cases} == {"policy", "diagnosis", "safety"}
    first = cases[0]
    assert first.line and first.facts and first.expect.rules_named()


def test_bad_facts_and_expectations_are_located(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("""tests:
  - name: broken
    facts:
      - weather: {sunny: true}
      - match: {band: 3, colour: red}
    expect:
      actions: [{teleport: {}}]
      asserted: [{hypothesis: {nme: x}}]
""", encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_cases([path])
    text = str(caught.value)
    assert f"{path}:4: tests[0].facts[0].weather: unknown fact 'weather'" in text
    assert f"{path}:5: tests[0].facts[1].match.band: 3 is not a str" in text
    assert "tests[0].facts[1].match.colour: match has no field 'colour'" in text
    assert "tests[0].expect.actions[0].teleport: unknown decision 'teleport'" in text
    assert "tests[0].expect.asserted[0].hypothesis.nme: hypothesis has no field 'nme'" in text


def test_schema_problems_and_empty_folders(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("tests:\n  - name: no expectations\n    facts: []\n", encoding="utf-8")
    with pytest.raises(RuleError, match="'expect' is a required property"):
        load_cases([path])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuleError, match="no rule test files"):
        load_cases([empty])
