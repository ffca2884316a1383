"""Typed, immutable rule records, and the vocabulary of facts rules may test."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Fact types and their fields. Rules naming anything else are refused at load time, not at firing time.
FACT_FIELDS: Mapping[str, Mapping[str, type | tuple[type, ...]]] = MappingProxyType({
    "message": {"text": str, "length": int},
    "match": {
        "playbook": str, "title": str, "category": str, "kind": str, "band": str,
        "confidence": (int, float), "score": (int, float), "indicated_remedies": int,
    },
    "metric": {"service": str, "name": str, "value": (int, float), "limit": (int, float), "status": str},
    "service": {"name": str, "healthy": bool},
    "remedy": {
        "rank": int, "action": str, "target": str, "signal_service": str, "signal_metric": str,
        "default_rank": int, "failed_recently": bool,
    },
    "conversation": {"attempt": int, "channel": str},
    "account": {"plan": str, "seats": int, "role": str},
    "hypothesis": {"name": str, "service": str, "metric": str},
    # From the monitor: a detected or alerted problem on one metric; `eta_s` is -1 unless it is a prediction.
    "signal": {
        "service": str, "metric": str, "kind": str, "state": str, "root_cause": bool, "root": str,
        "value": (int, float), "limit": (int, float), "eta_s": (int, float),
    },
})
# Facts rules may create themselves (the rest come from matching, telemetry and stored state).
ASSERTABLE = frozenset({"hypothesis"})
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists")
ACTION_VERBS = ("remediate", "escalate", "clarify", "decline", "reply", "assert", "retract")


@dataclass(frozen=True)
class Test:
    """One test on one field of a fact: `field op value`, or equality with a field of an earlier fact."""

    field: str
    op: str
    value: Any = None
    ref: tuple[str, str] | None = None  # (alias, field) of an earlier pattern


@dataclass(frozen=True)
class Pattern:
    """A fact of `fact_type` whose fields pass every test; bound to `alias`; `negated` means no such fact."""

    fact_type: str
    alias: str
    tests: tuple[Test, ...]
    negated: bool = False


@dataclass(frozen=True)
class Action:
    verb: str
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Rule:
    """When the patterns hold (all of them, or any), do the actions in order."""

    name: str
    description: str
    salience: int
    mode: str  # "all" or "any"
    patterns: tuple[Pattern, ...]
    actions: tuple[Action, ...]
    source: str = ""
    line: int | None = None


@dataclass(frozen=True)
class RuleBase:
    """A loaded, validated set of rules with a version derived from its content."""

    rules: tuple[Rule, ...]
    version: str

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
