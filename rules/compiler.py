"""Rule records -> durable-rules' JSON ruleset form. Pure data in, pure data out.

Each alternative of a rule becomes one durable-rules rule named `RULE#N` (durable-rules' own `any` fires once
per partial match with odd bindings, so alternatives are kept apart). `run` carries the same name, so the
engine knows which rule and alternative fired.

Negated (`none`) patterns are not given to durable-rules. Measured on 2.0.28: when a fact arrives that makes
one rule's `$not` false, durable-rules also drops the pending activations of *other* rules whose facts include
that rule's matched facts (a rule joining `match` and `metric` silently never fired once another rule's
`match, metric, not hypothesis` was blocked). So the engine checks negations itself when a rule is about to
fire, and an activation blocked then is put back on durable-rules' agenda, at the rule's priority, through
a `REVIVE` rule when the fact that blocked it is retracted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rules.model import Pattern, Rule, RuleBase, Test

TYPE_FIELD = "t"  # every fact carries its type here; no fact field may use this name
ALTERNATIVE_MARK = "#"  # not allowed in rule names, so `RULE#N` cannot clash with a curator's name
REVIVE = "__revive#"  # prefix of the rule that fires an activation again once its blocker is gone
REVIVE_FACT = "__revive"
COMPARISONS = {"ne": "$neq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


def compile_rulebase(rulebase: RuleBase) -> dict[str, dict[str, Any]]:
    """The ruleset body: {"RULE#N": {"all": [...], "run": "RULE#N", "pri": n}} for every alternative."""
    return compile_rules(rulebase.rules)


def compile_rules(rules: Iterable[Rule]) -> dict[str, dict[str, Any]]:
    compiled: dict[str, dict[str, Any]] = {}
    for rule in rules:
        compiled.update(compile_rule(rule))
    return compiled


def compile_rule(rule: Rule) -> dict[str, dict[str, Any]]:
    # durable-rules runs lower `pri` first; salience is the familiar "higher fires first".
    priority = 1000 - rule.salience
    compiled = {}
    for index, alternative in enumerate(rule.alternatives):
        name = alternative_name(rule.name, index)
        compiled[name] = {"all": [{p.alias: _expression(p)} for p in alternative if not p.negated], "run": name,
                          "pri": priority}
        if any(p.negated for p in alternative):
            compiled[REVIVE + name] = {"all": [{"revive": {"$and": [{TYPE_FIELD: REVIVE_FACT}, {"rule": name}]}}],
                                       "run": REVIVE + name, "pri": priority}
    return compiled


def compiled_size(rule: Rule) -> int:
    """How many durable-rules rules `rule` compiles to."""
    return sum(1 + any(p.negated for p in alternative) for alternative in rule.alternatives)


def alternative_name(rule: str, index: int) -> str:
    return f"{rule}{ALTERNATIVE_MARK}{index}"


def split_alternative(name: str) -> tuple[str, int]:
    """`RULE#N` -> (RULE, N)."""
    rule, _, index = name.rpartition(ALTERNATIVE_MARK)
    return rule, int(index)


def _expression(pattern: Pattern) -> dict[str, Any]:
    return {"$and": [{TYPE_FIELD: pattern.fact_type}, *(_test(t) for t in pattern.tests)]}


def _test(test: Test) -> dict[str, Any]:
    operand: Any = {test.ref[0]: test.ref[1]} if test.ref is not None else test.value
    if test.op == "eq":
        return {test.field: operand}
    if test.op in COMPARISONS:
        return {COMPARISONS[test.op]: {test.field: operand}}
    if test.op == "in":
        options = [{test.field: v} for v in test.value]
        return options[0] if len(options) == 1 else {"$or": options}
    if test.op == "not_in":
        return {"$and": [{"$neq": {test.field: v}} for v in test.value]}
    if test.op == "exists":
        return {"$ex" if test.value else "$nex": {test.field: 1}}
    raise ValueError(f"operator {test.op!r} has no durable-rules form")
