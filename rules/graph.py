"""The rule graph: which rule's asserted facts feed which rule, and what a curator should look at.

An edge A -> B means A asserts a fact that B consumes (`feeds`), or that B's `none` pattern forbids
(`blocks`), or A retracts a fact B consumes (`retracts`); an edge is drawn only if the literal values A
asserts can pass B's tests. From it: cycles (rules that can keep feeding each other), rules that can never
fire (they need a fact no rule asserts, or their own tests contradict each other), and overlapping rules
with conflicting actions (both can hold on the same decision, and they decide different things).

The analysis is static and errs on the side of reporting: a pair listed as overlapping may, in practice,
never meet, but a pair not listed cannot both fire on one decision.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from rules.loader import PLACEHOLDER
from rules.model import COMPARISONS, ENGINEERING, Pattern, Rule, RuleBase, Test
from rules.shards import routes_of

# What the assistant does when rules ask for several decisions (engine.chat.assistant): the first wins.
DECISION_ORDER = ("escalate", "handoff", "clarify", "decline", "remediate")
MAX_CYCLES = 50


@dataclass(frozen=True)
class Conflict:
    first: str
    second: str
    actions: tuple[str, str]
    outcome: str


@dataclass(frozen=True)
class Report:
    graph: nx.MultiDiGraph
    cycles: tuple[tuple[str, ...], ...]
    never_fire: tuple[tuple[str, str], ...]  # (rule, reason)
    conflicts: tuple[Conflict, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": [{"rule": n, **data} for n, data in self.graph.nodes(data=True)],
            "edges": [{"from": a, "to": b, "kind": d["kind"], "fact": d["fact"]}
                      for a, b, d in self.graph.edges(data=True)],
            "cycles": [list(c) for c in self.cycles],
            "never_fire": [{"rule": r, "reason": why} for r, why in self.never_fire],
            "conflicts": [{"rules": [c.first, c.second], "actions": list(c.actions), "outcome": c.outcome}
                          for c in self.conflicts],
        }

    def json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def dot(self) -> str:
        lines = ["digraph rules {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
        for name, data in self.graph.nodes(data=True):
            label = name + "\\n" + f"{data['ruleset']} · salience {data['salience']}"  # \n: a line break in DOT
            lines.append(f"  {_q(name)} [label={_q(label)}];")
        style = {"feeds": "solid", "blocks": "dashed", "retracts": "dotted"}
        for a, b, data in self.graph.edges(data=True):
            label = data["fact"] if data["kind"] == "feeds" else f"{data['kind']} {data['fact']}"
            lines.append(f"  {_q(a)} -> {_q(b)} [label={_q(label)}, style={style[data['kind']]}];")
        lines.append("}")
        return "\n".join(lines)

    def lines(self) -> list[str]:
        feeds = sum(1 for *_, d in self.graph.edges(data=True) if d["kind"] == "feeds")
        out = [f"{self.graph.number_of_nodes()} rules, {feeds} feed edges, "
               f"{self.graph.number_of_edges() - feeds} block/retract edges"]
        out.append(f"cycles: {len(self.cycles)}")
        out += [f"  {' -> '.join((*c, c[0]))}" for c in self.cycles]
        out.append(f"rules that can never fire: {len(self.never_fire)}")
        out += [f"  {rule}: {why}" for rule, why in self.never_fire]
        out.append(f"overlapping rules with conflicting actions: {len(self.conflicts)}")
        out += [f"  {c.first} ({c.actions[0]}) / {c.second} ({c.actions[1]}): {c.outcome}" for c in self.conflicts]
        return out


def _q(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def analyse(rulebase: RuleBase) -> Report:
    """Build the rule graph of `rulebase` and find cycles, rules that cannot fire, and conflicts."""
    graph = nx.MultiDiGraph()
    consumers: dict[str, list[Rule]] = {}
    for rule in rulebase.rules:
        graph.add_node(rule.name, ruleset=rule.ruleset, salience=rule.salience, file=rule.source, line=rule.line)
        for fact_type in {p.fact_type for p in rule.patterns}:
            consumers.setdefault(fact_type, []).append(rule)
    for producer in rulebase.rules:
        touched = {t for t, _ in _asserted(producer)} | _retracted_types(producer)
        candidates = {r.name: r for t in touched for r in consumers.get(t, ())}
        for consumer in candidates.values():
            for kind, fact in _links(producer, consumer):
                graph.add_edge(producer.name, consumer.name, kind=kind, fact=fact)
    feeds = nx.DiGraph((a, b) for a, b, d in graph.edges(data=True) if d["kind"] == "feeds")
    cycles = tuple(tuple(c) for c in itertools.islice(nx.simple_cycles(feeds), MAX_CYCLES))
    return Report(graph, cycles, tuple(_never_fire(rulebase)), tuple(_conflicts(rulebase)))


# -- edges -------------------------------------------------------------------------------------------------

def _asserted(rule: Rule) -> list[tuple[str, Mapping[str, Any]]]:
    return [next(iter(a.args.items())) for a in rule.actions if a.verb == "assert"]


def _links(producer: Rule, consumer: Rule) -> Iterable[tuple[str, str]]:
    found = set()
    for fact_type, fields in _asserted(producer):
        for pattern in consumer.patterns:
            if pattern.fact_type == fact_type and _may_match(fields, pattern):
                found.add(("blocks" if pattern.negated else "feeds", fact_type))
    retracted = _retracted_types(producer)
    for pattern in consumer.patterns:
        if pattern.fact_type in retracted and not pattern.negated and producer.name != consumer.name:
            found.add(("retracts", pattern.fact_type))
    return sorted(found)


def _retracted_types(rule: Rule) -> set[str]:
    bound = rule.bound_everywhere()
    return {bound[a.args["alias"]].fact_type for a in rule.actions if a.verb == "retract"}


def _may_match(fields: Mapping[str, Any], pattern: Pattern) -> bool:
    """Can a fact asserted with these field values pass the pattern's literal tests?"""
    for test in pattern.tests:
        if test.ref is not None or test.field not in fields:
            continue
        value = fields[test.field]
        if isinstance(value, str) and PLACEHOLDER.search(value):
            continue  # filled from the matched facts: unknown here
        if not _literal_holds(test, value):
            return False
    return True


def _literal_holds(test: Test, value: Any) -> bool:
    try:
        return {
            "eq": lambda: value == test.value, "ne": lambda: value != test.value,
            "lt": lambda: value < test.value, "le": lambda: value <= test.value,
            "gt": lambda: value > test.value, "ge": lambda: value >= test.value,
            "in": lambda: value in test.value, "not_in": lambda: value not in test.value,
            "exists": lambda: bool(test.value),
        }[test.op]()
    except TypeError:
        return False


# -- rules that can never fire -----------------------------------------------------------------------------

def _never_fire(rulebase: RuleBase) -> list[tuple[str, str]]:
    producers: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for rule in rulebase.rules:
        for fact_type, fields in _asserted(rule):
            producers.setdefault(fact_type, []).append((rule.name, fields))
    found = []
    for rule in rulebase.rules:
        reasons: list[str] = []
        for index, alternative in enumerate(rule.alternatives):
            reason = _impossible(alternative, rulebase, rule, producers)
            if reason is None:
                reasons = []
                break
            reasons.append(reason if len(rule.alternatives) == 1 else f"alternative {index}: {reason}")
        if reasons:
            found.append((rule.name, "; ".join(reasons)))
    return found


def _impossible(alternative: tuple[Pattern, ...], rulebase: RuleBase, rule: Rule,
                producers: Mapping[str, list[tuple[str, Mapping[str, Any]]]]) -> str | None:
    for pattern in alternative:
        if pattern.negated:
            continue
        contradiction = _contradiction(pattern.tests)
        if contradiction:
            return f"{pattern.describe()}: {contradiction}"
        made = producers.get(pattern.fact_type, ())
        if pattern.fact_type in rulebase.vocabulary.assertable and not any(
                name != rule.name and _may_match(fields, pattern) for name, fields in made):
            return f"needs a {pattern.fact_type} fact like `{pattern.describe()}`, and no other rule asserts one"
    singletons = _singleton_constraints(alternative, rulebase)
    for fact_type, tests in singletons.items():
        contradiction = _contradiction(tests)
        if contradiction:
            return f"its {fact_type} patterns contradict each other: {contradiction}"
    return None


def _contradiction(tests: Iterable[Test]) -> str | None:
    """Why no single value can pass all these literal tests on one field, or None if some value can."""
    by_field: dict[str, list[Test]] = {}
    for test in tests:
        if test.ref is None:
            by_field.setdefault(test.field, []).append(test)
    for name, field_tests in by_field.items():
        reason = _field_contradiction(field_tests)
        if reason:
            return f"{name}: {reason}"
    return None


def _field_contradiction(tests: list[Test]) -> str | None:
    exists = [t.value for t in tests if t.op == "exists"]
    others = [t for t in tests if t.op != "exists"]
    if False in exists and (True in exists or others):
        return "must be absent and is also tested"
    allowed: set[Any] | None = None
    for test in others:
        if test.op in ("eq", "in"):
            values = {test.value} if test.op == "eq" else set(test.value)
            allowed = values if allowed is None else allowed & values
    for test in others:
        if allowed is not None and test.op in ("ne", "not_in", *COMPARISONS):
            allowed = {v for v in allowed if _literal_holds(test, v)}
    if allowed is not None and not allowed:
        return " and ".join(t.describe() for t in others) + " cannot all hold"
    low = max((t.value for t in others if t.op in ("gt", "ge")), default=None)
    high = min((t.value for t in others if t.op in ("lt", "le")), default=None)
    if low is not None and high is not None:
        strict = any(t.op in ("gt", "lt") and t.value in (low, high) for t in others)
        if low > high or (low == high and strict):
            return " and ".join(t.describe() for t in others if t.op in COMPARISONS) + " cannot all hold"
    return None


def _singleton_constraints(alternative: Iterable[Pattern], rulebase: RuleBase) -> dict[str, list[Test]]:
    """Literal tests on facts a decision has at most one of, pooled per type (they must hold together)."""
    pooled: dict[str, list[Test]] = {}
    for pattern in alternative:
        if not pattern.negated and pattern.fact_type in rulebase.vocabulary.singletons:
            pooled.setdefault(pattern.fact_type, []).extend(pattern.tests)
    return pooled


# -- overlapping rules with conflicting actions ------------------------------------------------------------

def _decisions(rule: Rule) -> set[str]:
    found = set()
    for action in rule.actions:
        if action.verb == "escalate" and action.args.get("playbook"):
            continue  # another request of the same message: escalated beside the decision, never instead of it
        if action.verb == "escalate":
            category = str(action.args.get("category"))
            found.add("handoff" if category == ENGINEERING else f"escalate {category}")
        elif action.verb in ("remediate", "clarify", "decline"):
            found.add(action.verb)
    return found


def _conflicts(rulebase: RuleBase) -> list[Conflict]:
    # Rules that decide the same thing cannot conflict, so only pairs across groups are compared: thousands of
    # remediating rules against the few that escalate, clarify or decline.
    groups: dict[frozenset[str], list[Rule]] = {}
    for rule in rulebase.rules:
        decided = frozenset(_decisions(rule))
        if decided:
            groups.setdefault(decided, []).append(rule)
    found = []
    for (da, left), (db, right) in itertools.combinations(sorted(groups.items(), key=lambda g: sorted(g[0])), 2):
        for a, b in itertools.product(left, right):
            if _may_route_together(a, b) and _may_overlap(a, b, rulebase):
                found.append(Conflict(a.name, b.name, (", ".join(sorted(da)), ", ".join(sorted(db))),
                                      _outcome(sorted(da)[0], sorted(db)[0])))
    return sorted(found, key=lambda c: (c.first, c.second))


def _may_route_together(a: Rule, b: Rule) -> bool:
    routes_a, routes_b = routes_of(a), routes_of(b)
    return routes_a is None or routes_b is None or bool(routes_a & routes_b)


def _may_overlap(a: Rule, b: Rule, rulebase: RuleBase) -> bool:
    """Can some alternative of `a` and some alternative of `b` hold on the same decision's facts?"""
    for left in a.alternatives:
        for right in b.alternatives:
            pooled = _singleton_constraints(left, rulebase)
            for fact_type, tests in _singleton_constraints(right, rulebase).items():
                pooled.setdefault(fact_type, []).extend(tests)
            if not any(_contradiction(tests) for tests in pooled.values()):
                return True
    return False


def _outcome(first: str, second: str) -> str:
    def rank(decision: str) -> int:
        return DECISION_ORDER.index(decision.split()[0])

    if first.startswith("escalate") and second.startswith("escalate"):
        return "both escalate to different categories: the higher salience's escalation is used"
    winner = min((first, second), key=rank)
    return f"if both fire, the assistant does {winner} ({' > '.join(DECISION_ORDER)})"
