"""The only module that touches durable-rules.

Design around its measured limits (shared notes): a registered ruleset cannot change, so each rule base
version is registered under its own name and swapped in atomically; sessions are capped per ruleset, so
each decision runs in its own short-lived session that is deleted at the end; exceptions in actions are
swallowed by durable-rules, so our action catches and records them itself; every fact gets a unique id;
and a batch containing one fact that no rule tests is refused whole (after which deleting its session
crashes the process), so every fact type has a lowest-priority "accept" rule that does nothing.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durable import engine as durable

from rules.compiler import TYPE_FIELD, compile_rulebase
from rules.loader import render
from rules.model import FACT_FIELDS, Rule, RuleBase

ACCEPT_PREFIX = "__accept_"
ACCEPT_PRIORITY = 1_000_000  # after every real rule (their pri is 0..1000)


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


@dataclass(frozen=True)
class Firing:
    """One rule firing: the rule and the facts bound to each of its aliases."""

    rule: str
    bindings: Mapping[str, Mapping[str, Any]]


@dataclass
class Run:
    """Everything that happened in one decision's session."""

    ruleset_version: str
    firings: list[Firing] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    asserted: list[Fact] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _Host(durable.Host):
    """A durable-rules host with no background dispatch threads: actions run on the caller's thread."""

    def __init__(self, dispatch) -> None:
        self._dispatch = dispatch
        super().__init__()

    def _run(self) -> None:  # durable-rules starts timer threads here; decisions never need them
        return

    def get_action(self, action_name: str):
        def action(closure) -> None:
            self._dispatch(action_name, closure)

        return action


@dataclass(frozen=True)
class _Version:
    name: str
    rulebase: RuleBase
    rules: Mapping[str, Rule]


class RuleEngine:
    """Runs a rule base over a decision's facts and reports firings, intents and asserted facts."""

    def __init__(self, rulebase: RuleBase) -> None:
        self._runs: dict[str, tuple[Run, _Version]] = {}
        self._runs_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._serial = itertools.count(1)
        self._host = _Host(self._on_fire)
        self._current = self._register(rulebase)

    @property
    def rulebase(self) -> RuleBase:
        return self._current.rulebase

    def swap(self, rulebase: RuleBase) -> None:
        """Make `rulebase` current; decisions already running finish on the version they started with."""
        with self._swap_lock:
            self._current = self._register(rulebase)

    def _register(self, rulebase: RuleBase) -> _Version:
        name = f"firstline_{rulebase.version}_{next(self._serial)}"
        definition = compile_rulebase(rulebase)
        for fact_type in FACT_FIELDS:
            definition[ACCEPT_PREFIX + fact_type] = {
                "all": [{"fact": {TYPE_FIELD: fact_type}}], "run": ACCEPT_PREFIX, "pri": ACCEPT_PRIORITY}
        self._host.register_rulesets({name: definition})
        return _Version(name, rulebase, {rule.name: rule for rule in rulebase.rules})

    def run(self, facts: Sequence[Fact]) -> Run:
        """Assert `facts` in a fresh session, chain to quiescence, delete the session, return what fired."""
        version = self._current  # pinned: a swap during this run does not affect it
        sid = uuid.uuid4().hex
        run = Run(version.rulebase.version)
        with self._runs_lock:
            self._runs[sid] = (run, version)
        payload = [_encode(fact, sid) for fact in facts if fact.type in FACT_FIELDS]
        unknown = sorted({fact.type for fact in facts if fact.type not in FACT_FIELDS})
        if unknown:
            run.errors.append(f"facts of unknown type ignored: {', '.join(unknown)}")
        session_exists = False
        try:
            if payload:  # durable-rules crashes on an empty batch
                self._host.assert_facts(version.name, payload)
                session_exists = True
        except Exception as error:  # noqa: BLE001 - durable-rules raises bare Exceptions
            run.errors.append(f"rule engine: {_message(error)}")
        finally:
            if session_exists:
                self._host.delete_state(version.name, sid)
            with self._runs_lock:
                self._runs.pop(sid, None)
        return run

    def _on_fire(self, rule_name: str, closure) -> None:
        if rule_name == ACCEPT_PREFIX:
            return
        sid = closure.s["sid"]
        with self._runs_lock:
            entry = self._runs.get(sid)
        if entry is None:
            return
        run, version = entry
        rule = version.rules[rule_name]
        try:
            bindings = _bindings(rule, closure)
            run.firings.append(Firing(rule.name, bindings))
            deferred = []
            for action in rule.actions:
                if action.verb == "assert":
                    fact_type, fields = next(iter(action.args.items()))
                    values = {k: render(v, bindings) if isinstance(v, str) else v for k, v in fields.items()}
                    deferred.append(Fact(fact_type, values))
                elif action.verb == "retract":
                    closure.retract_fact(dict(bindings[action.args["alias"]]))
                else:
                    args = {k: render(v, bindings) if isinstance(v, str) else v for k, v in action.args.items()}
                    if action.verb == "remediate" and "from" in args:
                        args = {"remedy": dict(bindings[action.args["from"]])}
                    run.intents.append(Intent(action.verb, args, rule.name))
            # Asserting inside an action can end the action early (durable-rules #350), so it goes last.
            for fact in deferred:
                run.asserted.append(fact)
                closure.assert_fact(_encode(fact, sid))
        except Exception as error:  # noqa: BLE001 - never let durable-rules swallow it silently
            run.errors.append(f"rule {rule_name}: {_message(error)}")


def _encode(fact: Fact, sid: str) -> dict[str, Any]:
    # A unique id on every fact: without one durable-rules reports false duplicates (issue #376).
    return {**fact.fields, TYPE_FIELD: fact.type, "id": uuid.uuid4().hex, "sid": sid}


def _bindings(rule: Rule, closure) -> dict[str, dict[str, Any]]:
    bound = {}
    for pattern in rule.patterns:
        if pattern.negated:
            continue
        try:
            content = getattr(closure, pattern.alias)
        except (AttributeError, KeyError):
            continue  # under `any`, only the alternative that matched is bound
        if content is None:
            continue
        data = dict(content._d) if hasattr(content, "_d") else dict(content)
        bound[pattern.alias] = {k: v for k, v in data.items() if k not in ("id", "sid", TYPE_FIELD)}
    return bound


def _message(error: BaseException) -> str:
    # durable-rules' exceptions often have an empty str(); their text is in `.message`.
    return str(error) or str(getattr(error, "message", "")) or type(error).__name__
