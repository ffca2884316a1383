"""Rule test files: facts in, the rules that must fire and the decisions they must make out.

The format, like StackStorm's st2-rule-tester but for many cases per file:

    tests:
      - name: slow database queries are killed
        facts:
          - match: {playbook: dashboard_slow, category: performance, kind: technical, band: answer}
          - metric: {service: database, name: slow_queries, value: 32, limit: 8, status: unhealthy}
        expect:
          fired_include: [performance_slow_database_queries, run_a_proposed_remedy]
          actions: [{remediate: {name: kill_slow_queries, target: database}}]

Files are checked like rule files (schema, then every fact type and field against the vocabulary), and
every problem is reported at once as `file:line: field: message`. The engine runs the cases
(`engine.decision.ruletest`), because only the engine may touch durable-rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import Problem, RuleError
from core.yamlfile import Located, load_documents, load_schema, schema_problems
from rules.loader import fits, rule_files, type_name
from rules.model import DECISION_VERBS, SUPPORT, Vocabulary

SCHEMA_PATH = Path(__file__).parent / "schema" / "ruletest.schema.json"
Item = tuple[str, Mapping[str, Any]]  # (fact type or verb, fields or arguments)


@dataclass(frozen=True)
class Expect:
    fired: tuple[str, ...] | None = None
    fired_include: tuple[str, ...] = ()
    not_fired: tuple[str, ...] = ()
    actions: tuple[Item, ...] | None = None
    asserted: tuple[Item, ...] = ()

    def rules_named(self) -> set[str]:
        return {*(self.fired or ()), *self.fired_include, *self.not_fired}


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    line: int | None
    facts: tuple[Item, ...]
    expect: Expect

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


def load_cases(paths: list[Path], vocabulary: Vocabulary = SUPPORT) -> list[Case]:
    """Every case in the test files named by `paths`; raise RuleError listing every problem."""
    files, problems = rule_files(paths)
    documents, errors = load_documents(files)
    problems += errors
    if not files and not problems:
        problems.append(Problem(", ".join(map(str, paths)), None, "", "no rule test files (*.yaml) found"))
    validator = load_schema(SCHEMA_PATH)
    cases: list[Case] = []
    for doc in documents:
        errors = schema_problems(validator, doc)
        problems += errors
        if errors:
            continue
        for i, raw in enumerate(doc.data["tests"]):
            case, errors = _case(doc, i, raw, vocabulary)
            problems += errors
            cases.append(case)
    if problems:
        raise RuleError(problems)
    return cases


def _case(doc: Located, index: int, raw: dict, vocabulary: Vocabulary) -> tuple[Case, list[Problem]]:
    at: list[str | int] = ["tests", index]
    problems: list[Problem] = []
    facts = []
    for j, item in enumerate(raw["facts"]):
        fact_type, fields = next(iter(item.items()))
        problems += _fact_problems(doc, [*at, "facts", j, fact_type], fact_type, fields or {}, vocabulary)
        facts.append((fact_type, MappingProxyType(dict(fields or {}))))
    expect = raw["expect"]
    actions = None
    if "actions" in expect:
        actions = []
        for j, item in enumerate(expect["actions"]):
            verb, args = next(iter(item.items()))
            if verb not in DECISION_VERBS:
                problems.append(doc.problem([*at, "expect", "actions", j, verb],
                                            f"unknown decision {verb!r}; use one of: {', '.join(DECISION_VERBS)}"))
            actions.append((verb, MappingProxyType(dict(args or {}))))
    asserted = []
    for j, item in enumerate(expect.get("asserted", [])):
        fact_type, fields = next(iter(item.items()))
        problems += _fact_problems(doc, [*at, "expect", "asserted", j, fact_type], fact_type, fields or {},
                                   vocabulary)
        asserted.append((fact_type, MappingProxyType(dict(fields or {}))))
    return Case(
        name=raw["name"], source=doc.file, line=doc.line_of(at), facts=tuple(facts),
        expect=Expect(
            fired=tuple(expect["fired"]) if "fired" in expect else None,
            fired_include=tuple(expect.get("fired_include", ())),
            not_fired=tuple(expect.get("not_fired", ())),
            actions=tuple(actions) if actions is not None else None,
            asserted=tuple(asserted),
        ),
    ), problems


def _fact_problems(doc: Located, at: list, fact_type: str, fields: Mapping[str, Any],
                   vocabulary: Vocabulary) -> list[Problem]:
    if fact_type not in vocabulary.facts:
        return [doc.problem(at, f"unknown fact {fact_type!r}; known facts: {', '.join(vocabulary.facts)}")]
    known = vocabulary.fields(fact_type)
    problems = []
    for name, value in fields.items():
        kinds = known.get(name)
        if kinds is None:
            problems.append(doc.problem([*at, name], f"{fact_type} has no field {name!r}; it has: {', '.join(known)}"))
        elif not fits(value, kinds):
            problems.append(doc.problem([*at, name], f"{value!r} is not a {type_name(kinds)}"))
    return problems

