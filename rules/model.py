"""Typed, immutable rule records, and the vocabulary of facts rules may test and assert.

A rule's condition is a tree of `all` / `any` / `none` over fact patterns. The loader flattens it into
alternatives (disjunctive normal form): the rule holds when every pattern of one alternative matches and no
negated pattern of it does. Each alternative compiles to one durable-rules rule, and explanations walk the
same alternatives, so what is explained is what runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from core.taxonomy import BUSINESS, CATEGORIES

Kinds = type | tuple[type, ...]
NUMBER: tuple[type, ...] = (int, float)
RESERVED_FIELDS = frozenset({"t", "id", "sid"})  # the compiled form uses these on every fact
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists")
COMPARISONS = ("lt", "le", "gt", "ge")
# Verbs that decide what happens to the user's message; `assert` and `retract` only change the facts.
DECISION_VERBS = ("remediate", "escalate", "clarify", "decline", "reply")
ACTION_VERBS = (*DECISION_VERBS, "assert", "retract")
ENGINEERING = "engineering"  # `escalate` to engineering is a technical hand-off, never a business decision
ESCALATION_TARGETS = (*BUSINESS, ENGINEERING)
MAX_ALTERNATIVES = 16


@dataclass(frozen=True)
class Vocabulary:
    """The fact types rules may name, the fields of each, which ones rules may assert, and known values."""

    facts: Mapping[str, Mapping[str, Kinds]]
    assertable: frozenset[str]
    domains: Mapping[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    singletons: frozenset[str] = frozenset()  # at most one fact of these types per decision

    def __post_init__(self) -> None:
        clash = [f"{t}.{f}" for t, fields in self.facts.items() for f in fields if f in RESERVED_FIELDS]
        if clash:
            raise ValueError(f"fact fields {clash} clash with the compiled form's own {sorted(RESERVED_FIELDS)}")

    def fields(self, fact_type: str) -> Mapping[str, Kinds]:
        return self.facts[fact_type]

    def with_age(self) -> frozenset[str]:
        """Fact types that carry `age_s`, so a pattern on them may say `within: SECONDS`."""
        return frozenset(name for name, fields in self.facts.items() if "age_s" in fields)


# Firstline's own vocabulary. Rules naming anything else are refused at load time, not at firing time.
SUPPORT = Vocabulary(
    facts=MappingProxyType({
        "message": {"text": str, "length": int, "forbids_action": bool},
        # Another request in the same message, matched on its own ("... and can we get a discount").
        "aside": {"playbook": str, "category": str, "kind": str, "score": NUMBER},
        "match": {
            "playbook": str, "title": str, "category": str, "kind": str, "band": str,
            "confidence": NUMBER, "score": NUMBER, "group": str, "group_probability": NUMBER, "language": str,
        },
        "candidate": {"playbook": str, "category": str, "score": NUMBER, "rank": int},
        "metric": {
            "service": str, "name": str, "value": NUMBER, "limit": NUMBER, "status": str, "worse": str,
            "trend": str, "slope_per_min": NUMBER, "time_to_limit_s": NUMBER,
        },
        "service": {"name": str, "healthy": bool, "root_cause": bool},
        "remedy": {
            "rank": int, "action": str, "target": str, "signal_service": str, "signal_metric": str,
            "default_rank": int, "failed_recently": bool,
        },
        "conversation": {"attempt": int, "channel": str, "failed_actions": int, "succeeded_actions": int},
        "account": {"plan": str, "seats": int, "role": str},
        # An earlier remediation for this user, or one run in this decision (`current`), with how it went.
        "action": {
            "name": str, "target": str, "status": str, "rule": str, "age_s": NUMBER, "same_conversation": bool,
            "current": bool,
        },
        "hypothesis": {"name": str, "service": str, "metric": str},
        # From the monitor: a detected or alerted problem on one metric; `eta_s` is -1 unless it is a prediction.
        "signal": {
            "service": str, "metric": str, "kind": str, "state": str, "root_cause": bool, "root": str,
            "value": NUMBER, "limit": NUMBER, "eta_s": NUMBER,
        },
        "proposal": {"action": str, "target": str, "reason": str},
        "veto": {"action": str, "target": str, "reason": str},
    }),
    assertable=frozenset({"hypothesis", "proposal", "veto"}),
    singletons=frozenset({"match", "message", "conversation", "account"}),
    domains=MappingProxyType({
        ("match", "band"): ("answer", "clarify", "out_of_scope", "no_problem", "other_language"),
        ("match", "group"): ("technical", "business", "out_of_scope"),
        ("match", "kind"): ("technical", "business", "out_of_scope"),
        ("match", "category"): CATEGORIES,
        ("candidate", "category"): CATEGORIES,
        ("aside", "category"): CATEGORIES,
        ("aside", "kind"): ("technical", "business", "out_of_scope"),
        ("metric", "status"): ("ok", "unhealthy"),
        ("metric", "worse"): ("above", "below"),
        ("metric", "trend"): ("rising", "falling", "steady"),
        # unverified: an action on the user's account refused because nobody vouched for who is asking
        ("action", "status"): ("succeeded", "failed", "dry_run", "skipped", "unverified"),
    }),
)


@dataclass(frozen=True)
class Test:
    """One test on one field of a fact: `field op value`, or `field op alias.field` of an earlier pattern."""

    field: str
    op: str
    value: Any = None
    ref: tuple[str, str] | None = None  # (alias, field) of an earlier pattern; compared instead of `value`

    def describe(self) -> str:
        operand = f"{self.ref[0]}.{self.ref[1]}" if self.ref else repr(self.value)
        if self.op == "exists":
            return f"{self.field} {'exists' if self.value else 'is absent'}"
        return f"{self.field} {SYMBOLS[self.op]} {operand}"


SYMBOLS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "in": "in", "not_in": "not in"}


@dataclass(frozen=True)
class Pattern:
    """A fact of `fact_type` whose fields pass every test; bound to `alias`; `negated` means no such fact."""

    fact_type: str
    alias: str
    tests: tuple[Test, ...]
    negated: bool = False
    line: int | None = field(default=None, compare=False)
    at: tuple[str | int, ...] = field(default=(), compare=False, repr=False)  # where in its file

    def describe(self) -> str:
        tests = ", ".join(t.describe() for t in self.tests) or "any"
        if self.negated:
            return f"no {self.fact_type} ({tests})"
        named = self.fact_type if self.alias == self.fact_type else f"{self.fact_type} {self.alias}"
        return f"{named} ({tests})"


@dataclass(frozen=True)
class Action:
    verb: str
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Rule:
    """When every pattern of one alternative holds, do the actions in order."""

    name: str
    description: str
    salience: int
    alternatives: tuple[tuple[Pattern, ...], ...]
    actions: tuple[Action, ...]
    ruleset: str = ""
    source: str = ""
    line: int | None = None
    condition: Any = None  # the condition as written, for `rules show`

    @property
    def patterns(self) -> tuple[Pattern, ...]:
        """Every pattern of every alternative, in order."""
        return tuple(p for alternative in self.alternatives for p in alternative)

    def bound_everywhere(self) -> dict[str, Pattern]:
        """Aliases bound (not negated) in every alternative with the same fact type: what actions may use."""
        first, *rest = self.alternatives
        bound = {p.alias: p for p in first if not p.negated}
        for alternative in rest:
            here = {p.alias: p.fact_type for p in alternative if not p.negated}
            bound = {a: p for a, p in bound.items() if here.get(a) == p.fact_type}
        return bound

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


@dataclass(frozen=True)
class RuleBase:
    """A loaded, validated set of rules with a version derived from its content."""

    rules: tuple[Rule, ...]
    version: str
    vocabulary: Vocabulary = SUPPORT

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    @property
    def by_name(self) -> dict[str, Rule]:
        return {rule.name: rule for rule in self.rules}
