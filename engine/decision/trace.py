"""What happened in one decision's rule session: facts, firings in order, intents, skips and failures.

This is the engine's own vocabulary (no durable-rules types), and the trace a decision carries: every fact
asserted with where it came from, every rule fired in order with the facts that matched each of its
patterns, what each firing asserted, retracted and asked for, and which activations were skipped and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules import evaluate
from rules.model import Pattern


@dataclass(frozen=True)
class Fact:
    """A typed fact; the engine's own vocabulary, never a durable-rules object."""

    type: str
    fields: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.fields}


@dataclass(frozen=True)
class Intent:
    """An action a rule asked for, with its arguments filled from the facts it matched."""

    verb: str
    args: Mapping[str, Any]
    rule: str
    firing: int = 0  # seq of the firing that asked for it


@dataclass
class Firing:
    """One rule firing: the rule, the alternative that held, and the fact bound to each alias."""

    seq: int
    rule: str
    alternative: int
    salience: int
    facts: dict[str, str]  # alias -> fact id
    asserted: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Skip:
    """An activation that did not fire, and why."""

    rule: str
    alternative: int
    facts: Mapping[str, str]
    reason: str


@dataclass(frozen=True)
class Failure:
    """A rule action that raised: recorded, and the engine went on."""

    rule: str
    firing: int
    verb: str
    error: str


@dataclass(frozen=True)
class TracedFact:
    id: str
    type: str
    fields: Mapping[str, Any]
    origin: str  # input | rule | outcome
    by: int | None  # seq of the firing that asserted it


@dataclass
class Run:
    """Everything that happened in one decision's session."""

    ruleset_version: str
    shard: int = 0
    facts: dict[str, TracedFact] = field(default_factory=dict)
    firings: list[Firing] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retracted: dict[str, int] = field(default_factory=dict)  # fact id -> seq of the firing that retracted it
    _live: dict[str, dict[str, evaluate.Fact]] = field(default_factory=dict, repr=False)  # type -> id -> fact
    # (type, field) -> value -> ids of live facts with it: `none` checks look facts up instead of scanning
    _index: dict[tuple[str, str], dict[Any, set[str]]] = field(default_factory=dict, repr=False)

    def record(self, fact: Fact, origin: str, by: int | None) -> str:
        fact_id = f"f{len(self.facts) + 1}"
        fields = dict(fact.fields)
        self.facts[fact_id] = TracedFact(fact_id, fact.type, fields, origin, by)
        view = evaluate.Fact(fact_id, fact.type, fields)
        self._live.setdefault(fact.type, {})[fact_id] = view
        for (kind, name), values in self._index.items():
            if kind == fact.type and name in fields and _hashable(fields[name]):
                values.setdefault(fields[name], set()).add(fact_id)
        return fact_id

    def fire(self, rule: str, alternative: int, salience: int, facts: dict[str, str]) -> Firing:
        firing = Firing(len(self.firings) + 1, rule, alternative, salience, facts)
        self.firings.append(firing)
        return firing

    def intend(self, intent: Intent) -> None:
        self.intents.append(intent)

    def retract(self, fact_id: str, firing: Firing) -> None:
        self.drop(fact_id, firing.seq)
        firing.retracted.append(fact_id)

    def drop(self, fact_id: str, seq: int) -> None:
        """The fact left the session (retracted by firing `seq`, or refused when it was asserted)."""
        self.retracted[fact_id] = seq
        fact = self._live.get(self.facts[fact_id].type, {}).pop(fact_id, None)
        if fact is None:
            return
        for (kind, name), values in self._index.items():
            if kind == fact.type and name in fact.fields and _hashable(fact.fields[name]):
                values.get(fact.fields[name], set()).discard(fact_id)

    def fail(self, firing: Firing, verb: str, error: str) -> None:
        self.failures.append(Failure(firing.rule, firing.seq, verb, error))
        firing.failures.append(f"{verb}: {error}")
        self.errors.append(f"rule {firing.rule}: {verb} failed: {error}")

    @property
    def asserted(self) -> list[Fact]:
        """Facts the rules asserted, in order."""
        return [Fact(f.type, f.fields) for f in self.facts.values() if f.origin == "rule"]

    def view(self, fact_id: str) -> evaluate.Fact:
        fact = self.facts[fact_id]
        return evaluate.Fact(fact.id, fact.type, fact.fields)

    def candidates(self, pattern: Pattern, bindings: Mapping[str, evaluate.Fact]) -> list[evaluate.Fact]:
        """Live facts that may match `pattern`: looked up by its first equality test, else all of its type."""
        live = self._live.get(pattern.fact_type, {})
        for test in pattern.tests:
            if test.op != "eq":
                continue
            if test.ref is None:
                value = test.value
            elif test.ref[0] in bindings and test.ref[1] in bindings[test.ref[0]].fields:
                value = bindings[test.ref[0]].fields[test.ref[1]]
            else:
                continue
            if not _hashable(value):
                continue
            ids = self._indexed(pattern.fact_type, test.field).get(value, ())
            return [live[i] for i in ids if i in live]
        return list(live.values())

    def _indexed(self, kind: str, name: str) -> dict[Any, set[str]]:
        key = (kind, name)
        if key not in self._index:
            values: dict[Any, set[str]] = {}
            for fact in self._live.get(kind, {}).values():
                if name in fact.fields and _hashable(fact.fields[name]):
                    values.setdefault(fact.fields[name], set()).add(fact.id)
            self._index[key] = values
        return self._index[key]

    def trace(self) -> dict[str, Any]:
        """The decision's trace as plain data (for JSON, the store and `--explain`)."""
        return {
            "ruleset_version": self.ruleset_version,
            "shard": self.shard,
            "facts": [{"id": f.id, "type": f.type, "fields": dict(f.fields), "origin": f.origin, "by": f.by,
                       "retracted_by": self.retracted.get(f.id)} for f in self.facts.values()],
            "fired": [{"seq": f.seq, "rule": f.rule, "alternative": f.alternative, "salience": f.salience,
                       "facts": dict(f.facts), "asserted": list(f.asserted), "retracted": list(f.retracted),
                       "intents": [_intent(i) for i in self.intents if i.firing == f.seq],
                       "failures": list(f.failures)} for f in self.firings],
            "skipped": [{"rule": s.rule, "alternative": s.alternative, "facts": dict(s.facts), "reason": s.reason}
                        for s in self.skips],
            "errors": list(self.errors),
        }


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _intent(intent: Intent) -> dict[str, Any]:
    return {"verb": intent.verb, "args": dict(intent.args)}


# Facts that describe the infrastructure rather than the user's own problem.
TELEMETRY = frozenset({"metric", "service", "signal", "hypothesis"})


def for_user(trace: Mapping[str, Any]) -> dict[str, Any]:
    """The trace as the user it answered may see it: the problem, the actions and the rules that fired, with
    the telemetry those rules rested on; the readings, limits and trends of every other service are staff-only.
    Skipped activations that rested on hidden facts are left out too (they would name them)."""
    used = {fid for firing in trace["fired"] for fid in (*firing["facts"].values(), *firing["asserted"])}
    shown = [f for f in trace["facts"] if f["type"] not in TELEMETRY or f["id"] in used]
    visible = {f["id"] for f in shown}
    skipped = [s for s in trace.get("skipped", ()) if set(s["facts"].values()) <= visible]
    return {**trace, "facts": shown, "skipped": skipped}


def facts_of(trace: Mapping[str, Any], live_only: bool = True) -> list[evaluate.Fact]:
    """The facts of a stored trace, as the evaluator wants them (by default, those not retracted)."""
    return [evaluate.Fact(f["id"], f["type"], f["fields"]) for f in trace["facts"]
            if not (live_only and f.get("retracted_by"))]


def trace_lines(trace: Mapping[str, Any]) -> list[str]:
    """A trace as text: rules fired in order, with the facts each matched and what each did."""
    facts = {f["id"]: f for f in trace["facts"]}
    origins = {origin: sum(f["origin"] == origin for f in trace["facts"]) for origin in ("input", "rule", "outcome")}
    head = f"trace: decision {trace.get('decision_id', '?')}, rules version {trace['ruleset_version']}"
    out = [head, f"  facts: {origins['input']} input, {origins['rule']} asserted by rules, "
                 f"{origins['outcome']} from remediation outcomes"]
    for firing in trace["fired"]:
        matched = ", ".join(f"{alias}={fid} {_brief(facts[fid])}" for alias, fid in firing["facts"].items())
        out.append(f"  {firing['seq']}. {firing['rule']} (salience {firing['salience']}) on {matched}")
        out += [f"       asserted {fid} {_brief(facts[fid])}" for fid in firing["asserted"]]
        out += [f"       retracted {fid}" for fid in firing["retracted"]]
        out += [f"       asks {i['verb']} {json.dumps(i['args'], default=str)}" for i in firing["intents"]]
        out += [f"       FAILED {failure}" for failure in firing["failures"]]
    for skip in trace["skipped"]:
        out.append(f"  skipped {skip['rule']} on {', '.join(f'{a}={f}' for a, f in skip['facts'].items())}: "
                   f"{skip['reason']}")
    for report in trace.get("why_not", ()):
        out += [f"  {line}" for line in report["text"]]
        out += [f"  ({report['note']})"] if report.get("note") else []
    out += [f"  error: {error}" for error in trace["errors"]]
    return out


def _brief(fact: Mapping[str, Any]) -> str:
    fields = ", ".join(f"{k}={v}" for k, v in list(fact["fields"].items())[:4])
    return f"{fact['type']}({fields}{', ...' if len(fact['fields']) > 4 else ''})"
