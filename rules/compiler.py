"""Rule records -> durable-rules' JSON ruleset form. Pure data in, pure data out."""

from __future__ import annotations

from typing import Any

from rules.model import Pattern, Rule, RuleBase, Test

TYPE_FIELD = "t"  # every fact carries its type here; no fact field may use this name
COMPARISONS = {"ne": "$neq", "lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte"}


def compile_rulebase(rulebase: RuleBase) -> dict[str, dict[str, Any]]:
    """The ruleset body: {rule_name: {"all"|"any": [...], "run": rule_name, "pri": n}}."""
    return {rule.name: compile_rule(rule) for rule in rulebase.rules}


def compile_rule(rule: Rule) -> dict[str, Any]:
    clauses = [{_clause_name(p): _expression(p)} for p in rule.patterns]
    # durable-rules runs lower `pri` first; salience is the familiar "higher fires first".
    return {rule.mode: clauses, "run": rule.name, "pri": 1000 - rule.salience}


def _clause_name(pattern: Pattern) -> str:
    return f"{pattern.alias}$not" if pattern.negated else pattern.alias


def _expression(pattern: Pattern) -> dict[str, Any]:
    terms = [{TYPE_FIELD: pattern.fact_type}, *(_test(t) for t in pattern.tests)]
    return {"$and": terms}


def _test(test: Test) -> dict[str, Any]:
    if test.ref is not None:
        alias, field = test.ref
        return {test.field: {alias: field}}
    if test.op == "eq":
        return {test.field: test.value}
    if test.op in COMPARISONS:
        return {COMPARISONS[test.op]: {test.field: test.value}}
    if test.op == "in":
        options = [{test.field: v} for v in test.value]
        return options[0] if len(options) == 1 else {"$or": options}
    if test.op == "not_in":
        return {"$and": [{"$neq": {test.field: v}} for v in test.value]}
    if test.op == "exists":
        return {"$ex" if test.value else "$nex": {test.field: 1}}
    raise ValueError(f"operator {test.op!r} has no durable-rules form")
