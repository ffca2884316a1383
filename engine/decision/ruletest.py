"""Runs rule test cases (`rules.testfile`) on the real engine and says, per case, what differed and why.

A rule that was expected to fire and did not comes with its explanation: which pattern failed, and which
test on which fact (`rules.evaluate`), the same answer `--explain --why-not` gives for a live decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.decision.ruleengine import RuleEngine, Run
from engine.decision.trace import Fact, facts_of
from rules import evaluate
from rules.model import DECISION_VERBS, RuleBase
from rules.testfile import Case, Item


@dataclass(frozen=True)
class CaseResult:
    case: Case
    problems: tuple[str, ...]
    fired: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.case.location} {self.case.name}"
        return [head, *(f"    {line}" for problem in self.problems for line in problem.splitlines())]


def run_cases(engine: RuleEngine, cases: Sequence[Case]) -> list[CaseResult]:
    """Run every case in its own session on `engine`'s current rules."""
    return [run_case(engine, case) for case in cases]


def run_case(engine: RuleEngine, case: Case) -> CaseResult:
    rulebase = engine.rulebase
    unknown = sorted(case.expect.rules_named() - set(rulebase.by_name))
    if unknown:
        return CaseResult(case, (f"no rule named {', '.join(unknown)} in the rules under test",), ())
    run = engine.run([Fact(kind, dict(fields)) for kind, fields in case.facts])
    fired = tuple(f.rule for f in run.firings)
    problems = [*(f"engine: {error}" for error in run.errors)]
    problems += _fired_problems(case, fired, run, rulebase)
    problems += _action_problems(case, run)
    problems += _asserted_problems(case, run)
    return CaseResult(case, tuple(problems), fired)


def _fired_problems(case: Case, fired: tuple[str, ...], run: Run, rulebase: RuleBase) -> list[str]:
    expect = case.expect
    problems = []
    if expect.fired is not None and fired != expect.fired:
        problems.append(f"expected fired {list(expect.fired)}, got {list(fired)}")
    elif expect.fired_include and not _in_order(expect.fired_include, fired):
        problems.append(f"expected fired in this order {list(expect.fired_include)}, got {list(fired)}")
    missing = [r for r in (*(expect.fired or ()), *expect.fired_include) if r not in fired]
    for name in dict.fromkeys(missing):
        report = evaluate.why_not(rulebase.by_name[name], facts_of(run.trace()), fired=False)
        problems.append("\n".join(report.lines()))
    unwanted = [r for r in expect.not_fired if r in fired]
    if unwanted:
        problems.append(f"expected not to fire, but fired: {', '.join(unwanted)}")
    return problems


def _in_order(wanted: Sequence[str], fired: Sequence[str]) -> bool:
    remaining = iter(fired)
    return all(any(name == f for f in remaining) for name in wanted)


def _action_problems(case: Case, run: Run) -> list[str]:
    if case.expect.actions is None:
        return []
    got = [(i.verb, dict(i.args)) for i in run.intents if i.verb in DECISION_VERBS]
    wanted = list(case.expect.actions)
    if len(got) == len(wanted) and all(_agrees(w, g) for w, g in zip(wanted, got, strict=True)):
        return []
    return [f"expected actions {_show(wanted)}, got {_show(got)}"]


def _asserted_problems(case: Case, run: Run) -> list[str]:
    asserted = [(f.type, dict(f.fields)) for f in run.asserted]
    missing = [w for w in case.expect.asserted if not any(_agrees(w, a) for a in asserted)]
    return [f"expected asserted {_show(missing)}, asserted {_show(asserted)}"] if missing else []


def _agrees(wanted: Item, got: tuple[str, Mapping[str, Any]]) -> bool:
    """Same verb or fact type, and every field the test gives has the same value."""
    kind, fields = wanted
    return kind == got[0] and all(got[1].get(k) == v for k, v in fields.items())


def _show(items: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    return "[" + ", ".join(f"{kind} {dict(fields)}" for kind, fields in items) + "]"
