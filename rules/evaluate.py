"""Rule conditions evaluated in Python, with the same meaning as their compiled durable-rules form.

Used to explain why a rule did not fire (which pattern failed, and which test on which fact), and by the
engine to re-check a rule's `none` patterns when it is about to fire: durable-rules decides a negation when
the activation is made and does not withdraw it when a matching fact arrives later.

A test on a field the fact does not have fails, except `exists: false`: that is what durable-rules does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.model import Pattern, Rule, Test

MAX_CANDIDATES = 5
Bindings = Mapping[str, "Fact"]


@dataclass(frozen=True)
class Fact:
    """A fact as the evaluator sees it: an id to point at, a type and its fields."""

    id: str
    type: str
    fields: Mapping[str, Any]


def passes(test: Test, fields: Mapping[str, Any], bindings: Bindings) -> bool:
    """Does `fields` pass `test`, with refs read from the facts bound so far?"""
    if test.op == "exists":
        return (test.field in fields) == bool(test.value)
    if test.field not in fields:
        return False
    actual = fields[test.field]
    if test.ref is not None:
        bound = bindings.get(test.ref[0])
        if bound is None or test.ref[1] not in bound.fields:
            return False
        expected = bound.fields[test.ref[1]]
    else:
        expected = test.value
    try:
        return _compare(test.op, actual, expected)
    except TypeError:  # a number against text: durable-rules does not match either
        return False


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "lt":
        return actual < expected
    if op == "le":
        return actual <= expected
    if op == "gt":
        return actual > expected
    if op == "ge":
        return actual >= expected
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    raise ValueError(f"unknown operator {op!r}")


def first_failure(pattern: Pattern, fact: Fact, bindings: Bindings) -> Test | None:
    """The first test of `pattern` that `fact` fails, or None if the fact matches the pattern."""
    return next((t for t in pattern.tests if not passes(t, fact.fields, bindings)), None)


def blocker(pattern: Pattern, facts: Sequence[Fact], bindings: Bindings) -> Fact | None:
    """For a `none` pattern: the fact that matches it (so the negation fails), or None."""
    return next((f for f in facts if f.type == pattern.fact_type and first_failure(pattern, f, bindings) is None),
                None)


def matches(alternative: Sequence[Pattern], facts: Sequence[Fact]) -> Iterator[dict[str, Fact]]:
    """Every way `facts` satisfy one alternative, as {alias: fact} (a fact binds at most one alias)."""
    yield from _search(alternative, 0, facts, {})


def _search(alternative: Sequence[Pattern], i: int, facts: Sequence[Fact], bound: dict[str, Fact]):
    if i == len(alternative):
        yield dict(bound)
        return
    pattern = alternative[i]
    if pattern.negated:
        if blocker(pattern, facts, bound) is None:
            yield from _search(alternative, i + 1, facts, bound)
        return
    used = {f.id for f in bound.values()}
    for fact in facts:
        if fact.type == pattern.fact_type and fact.id not in used and first_failure(pattern, fact, bound) is None:
            bound[pattern.alias] = fact
            yield from _search(alternative, i + 1, facts, bound)
            del bound[pattern.alias]


@dataclass(frozen=True)
class Miss:
    """A fact that came closest to matching a pattern, and the test it failed."""

    fact: str
    test: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class AlternativeReport:
    """How far one alternative of a rule got against the facts."""

    index: int
    holds: bool
    matched: tuple[tuple[str, str], ...]  # (pattern, fact id) for the patterns that matched, in order
    failed_pattern: str | None = None
    reason: str = ""
    misses: tuple[Miss, ...] = ()


@dataclass(frozen=True)
class WhyNot:
    """Why a named rule did, or did not, fire on a decision's facts."""

    rule: str
    fired: bool
    alternatives: tuple[AlternativeReport, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fired": self.fired,
            "alternatives": [{
                "alternative": a.index, "holds": a.holds,
                "matched": [{"pattern": p, "fact": f} for p, f in a.matched],
                "failed_pattern": a.failed_pattern, "reason": a.reason,
                "closest": [{"fact": m.fact, "test": m.test, "expected": m.expected, "actual": m.actual}
                            for m in a.misses],
            } for a in self.alternatives],
        }

    def lines(self) -> list[str]:
        if self.fired:
            return [f"{self.rule} fired."]
        out = [f"{self.rule} did not fire:"]
        for a in self.alternatives:
            head = f"  alternative {a.index}: " if len(self.alternatives) > 1 else "  "
            given = ", ".join(f"{p} = {f}" for p, f in a.matched)
            if a.holds:
                out.append(f"{head}its conditions hold on the final facts ({given}); it was not active when they "
                           "did (a fact it needs came and went, or a `none` fact was retracted late)")
                continue
            out.append(f"{head}{a.failed_pattern}: {a.reason}" + (f" (given {given})" if given else ""))
            out += [f"      {m.fact}: {m.test} fails, the fact has {m.actual!r}" for m in a.misses]
        return out


def why_not(rule: Rule, facts: Sequence[Fact], fired: bool) -> WhyNot:
    """Explain `rule` against `facts`: for each alternative, the first pattern no fact satisfies, and why."""
    if fired:
        return WhyNot(rule.name, True)
    return WhyNot(rule.name, False, tuple(_report(i, alt, facts) for i, alt in enumerate(rule.alternatives)))


def _report(index: int, alternative: Sequence[Pattern], facts: Sequence[Fact]) -> AlternativeReport:
    best = _deepest(alternative, facts)
    depth, bound = best
    matched = tuple((p.describe(), bound[p.alias].id) for p in alternative[:depth] if not p.negated)
    if depth == len(alternative):
        return AlternativeReport(index, True, matched)
    pattern = alternative[depth]
    if pattern.negated:
        found = blocker(pattern, facts, bound)
        return AlternativeReport(index, False, matched, pattern.describe(),
                                 f"fact {found.id if found else '?'} matches it")
    same_type = [f for f in facts if f.type == pattern.fact_type]
    if not same_type:
        return AlternativeReport(index, False, matched, pattern.describe(), f"there is no {pattern.fact_type} fact")
    misses = []
    for fact in same_type[:MAX_CANDIDATES]:
        test = first_failure(pattern, fact, bound)
        if test is None:  # matches alone, but is already bound to an earlier pattern
            misses.append(Miss(fact.id, "already bound to an earlier pattern", None, None))
            continue
        expected = bound[test.ref[0]].fields.get(test.ref[1]) if test.ref and test.ref[0] in bound else test.value
        misses.append(Miss(fact.id, test.describe(), expected, fact.fields.get(test.field, "(absent)")))
    more = f"; {len(same_type) - MAX_CANDIDATES} more not shown" if len(same_type) > MAX_CANDIDATES else ""
    return AlternativeReport(index, False, matched, pattern.describe(),
                             f"none of {len(same_type)} {pattern.fact_type} facts matches{more}", tuple(misses))


def _deepest(alternative: Sequence[Pattern], facts: Sequence[Fact]) -> tuple[int, dict[str, Fact]]:
    """The longest prefix of `alternative` that some binding satisfies, and that binding."""
    best: list[Any] = [0, {}]

    def walk(i: int, bound: dict[str, Fact]) -> bool:
        if i > best[0]:
            best[0], best[1] = i, dict(bound)
        if i == len(alternative):
            return True
        pattern = alternative[i]
        if pattern.negated:
            return blocker(pattern, facts, bound) is None and walk(i + 1, bound)
        used = {f.id for f in bound.values()}
        for fact in facts:
            if fact.type == pattern.fact_type and fact.id not in used and first_failure(pattern, fact, bound) is None:
                bound[pattern.alias] = fact
                if walk(i + 1, bound):
                    return True
                del bound[pattern.alias]
        return False

    walk(0, {})
    return best[0], best[1]
