"""The only module that touches durable-rules.

Designed around its measured limits (../shared/notes/durable-rules.md and docs/measurements.md):

- A registered ruleset cannot change, so each rule base version is registered under its own names and
  swapped in atomically; a session keeps the version it started on, and a retired version's rulesets are
  deleted when its last session ends.
- A ruleset of 512 rules hangs durable-rules, so a large rule base is split into shards by playbook
  (`rules.shards`) and a decision runs in the one shard that holds its playbook.
- Sessions are capped per ruleset, so each decision runs in its own short-lived session, deleted at the end.
- Exceptions in actions are swallowed by durable-rules, so every action is caught and recorded here, and the
  engine goes on with the next one.
- A batch with one fact that no rule tests is refused whole (after which deleting its session crashes the
  process), so every fact type has an "accept" rule that tests it and never fires.
- Its `$not` drops other rules' pending activations when it flips (see `rules.compiler`), so `none` patterns
  are checked here, just before a rule fires; an activation they hold back goes back on durable-rules' agenda
  when the fact that blocked it is retracted.
"""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import durable_rules_engine
from durable import engine as durable

from engine.decision.trace import Fact, Firing, Intent, Run, Skip
from rules.compiler import REVIVE, REVIVE_FACT, TYPE_FIELD, alternative_name, compile_rules, split_alternative
from rules.evaluate import blocker
from rules.loader import fill, render
from rules.model import Rule, RuleBase
from rules.shards import ROUTE, SHARD_CAPACITY, ShardPlan, plan_shards

ACCEPT_PREFIX = "__accept_"
ACCEPT_PRIORITY = 1_000_000  # after every real rule (their pri is 0..1000)
SESSION_FACT = "__session"  # one per session, so durable-rules stores its state (see accept_rules)
NEVER_FACT = "__never"  # a fact type nobody asserts

__all__ = ["Fact", "Firing", "Intent", "RuleEngine", "Run", "Session", "Skip"]


def accept_rules(fact_types: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One rule per fact type that tests it and never fires, so durable-rules accepts every batch; and one that
    fires once per session, on its `__session` fact.

    durable-rules refuses a whole batch that holds a fact no rule tests. A rule that only tests the type would
    fire once per fact (measured: half of a decision's time went on those empty actions); joined with a fact
    type nobody asserts, it tests the fact and never completes. But a session in which no action ever ran
    aborts the process when it is deleted, so each session's first batch carries one `__session` fact whose
    rule does fire. Built afresh each time: durable-rules deletes `run` from the definitions it is given.
    """
    rules = {ACCEPT_PREFIX + t: {"all": [{"fact": {TYPE_FIELD: t}}, {"never": {TYPE_FIELD: NEVER_FACT}}],
                                 "run": ACCEPT_PREFIX, "pri": ACCEPT_PRIORITY} for t in fact_types}
    rules[ACCEPT_PREFIX + SESSION_FACT] = {"all": [{"fact": {TYPE_FIELD: SESSION_FACT}}], "run": ACCEPT_PREFIX,
                                           "pri": ACCEPT_PRIORITY}
    return rules


def session_fact(sid: str, name: str = SESSION_FACT) -> dict[str, Any]:
    """The fact that makes durable-rules store a session's state (see `accept_rules`)."""
    return {TYPE_FIELD: SESSION_FACT, "id": name, "sid": sid}


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

    def unregister(self, name: str) -> None:
        """Delete a ruleset. durable-rules has no public way (issue #157), so this reaches into the host."""
        ruleset = self._ruleset_directory.pop(name, None)
        if ruleset is None:
            return
        self._ruleset_list.remove(ruleset)
        durable_rules_engine.delete_ruleset(ruleset._handle)


@dataclass
class _Version:
    """One registered rule base: its durable-rules ruleset names (one per shard) and how decisions route."""

    number: int
    rulebase: RuleBase
    rules: Mapping[str, Rule]
    names: tuple[str, ...]
    plan: ShardPlan
    active: int = 0
    retired: bool = False


class RuleEngine:
    """Runs a rule base over a decision's facts and reports firings, intents and asserted facts."""

    def __init__(self, rulebase: RuleBase, shard_capacity: int = SHARD_CAPACITY) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()  # guards _sessions, _current and the versions' counters
        self._serial = itertools.count(1)
        self._capacity = shard_capacity
        self._host = _Host(self._on_fire)
        self._current = self._register(rulebase)
        self.deleted_versions = 0

    @property
    def rulebase(self) -> RuleBase:
        return self._current.rulebase

    @property
    def shards(self) -> int:
        return len(self._current.names)

    def registered_rulesets(self) -> int:
        """How many durable-rules rulesets exist: the current version's shards and any still draining."""
        return len(self._host._ruleset_directory)

    def swap(self, rulebase: RuleBase) -> None:
        """Make `rulebase` current; sessions already open finish on the version they started with."""
        new = self._register(rulebase)  # slow part outside the lock: decisions keep running meanwhile
        with self._lock:
            old, self._current = self._current, new
            old.retired = True
            drained = old.active == 0
        if drained:
            self._delete(old)

    def _register(self, rulebase: RuleBase) -> _Version:
        number = next(self._serial)
        fact_types = (*rulebase.vocabulary.facts, REVIVE_FACT)
        plan = plan_shards(rulebase, self._capacity, reserved=len(fact_types) + 1)
        names = []
        for index, shard in enumerate(plan.shards):
            name = f"firstline_{rulebase.version}_{number}_{index}"
            self._host.register_rulesets({name: {**compile_rules(shard.rules), **accept_rules(fact_types)}})
            names.append(name)
        return _Version(number, rulebase, {rule.name: rule for rule in rulebase.rules}, tuple(names), plan)

    def _delete(self, version: _Version) -> None:
        for name in version.names:
            self._host.unregister(name)
        self.deleted_versions += 1

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A decision's own session on the current version; facts added to it chain until nothing fires."""
        with self._lock:
            version = self._current
            version.active += 1
        session = Session(self, version, uuid.uuid4().hex)
        with self._lock:
            self._sessions[session.sid] = session
        try:
            yield session
        finally:
            self._close(session)

    def run(self, facts: Sequence[Fact]) -> Run:
        """Assert `facts` in a fresh session, chain to quiescence, delete the session, return what happened."""
        with self.session() as session:
            session.add(facts)
        return session.run

    def _close(self, session: Session) -> None:
        if session.shard_name is not None:
            # After a refused first batch durable-rules holds a broken state that still takes one of the 1024
            # sessions, and deleting it aborts the process; one accepted fact repairs it, then it can go.
            if not session.stored:
                self._host.assert_facts(session.shard_name, [session_fact(session.sid, "__repair")])
            self._host.delete_state(session.shard_name, session.sid)
        with self._lock:
            self._sessions.pop(session.sid, None)
            version = session.version
            version.active -= 1
            drained = version.retired and version.active == 0
        if drained:
            self._delete(version)

    def _assert(self, session: Session, payload: list[dict[str, Any]]) -> None:
        self._host.assert_facts(session.shard_name, payload)

    def _on_fire(self, name: str, closure) -> None:
        if name == ACCEPT_PREFIX:
            return
        with self._lock:
            session = self._sessions.get(closure.s["sid"])
        if session is not None:
            session.fire(name, closure)


@dataclass
class _Activation:
    """A rule alternative with its bound facts, held back because a `none` pattern did not hold."""

    rule: Rule
    index: int
    bound: dict[str, str]  # alias -> fact id
    blocker: str  # the fact that matched the `none` pattern


class Session:
    """One decision's facts in durable-rules, and the record (`run`) of everything that happened to them."""

    def __init__(self, engine: RuleEngine, version: _Version, sid: str) -> None:
        self.engine = engine
        self.version = version
        self.sid = sid
        self.run = Run(version.rulebase.version)
        self.shard_name: str | None = None
        self.stored = False  # durable-rules holds state for this session (a batch was accepted)
        self._encoded: dict[str, dict[str, Any]] = {}  # fact id -> the dict durable-rules holds
        self._blocked: list[_Activation] = []
        self._revived: dict[str, _Activation] = {}
        self._revivals = itertools.count(1)

    def add(self, facts: Sequence[Fact], origin: str = "input") -> list[Intent]:
        """Assert `facts`, let the rules chain until nothing more fires, and return the new intents."""
        known = self.version.rulebase.vocabulary.facts
        unknown = sorted({f.type for f in facts if f.type not in known})
        if unknown:
            self.run.errors.append(f"facts of unknown type ignored: {', '.join(unknown)}")
        facts = [f for f in facts if f.type in known]
        unreadable = [f for f in facts if not _finite(f.fields)]
        if unreadable:
            self.run.errors.append("facts with a number that is not finite ignored: "
                                   + ", ".join(sorted({f.type for f in unreadable})))
            facts = [f for f in facts if f not in unreadable]
        if not facts:  # durable-rules crashes on an empty batch
            return []
        if self.shard_name is None:
            self.run.shard = self._route(facts)
            self.shard_name = self.version.names[self.run.shard]
        before = len(self.run.intents)
        payload = [self._register(fact, origin, None) for fact in facts]
        if not self.stored:
            payload.insert(0, session_fact(self.sid))
        try:
            self.engine._assert(self, payload)
            self.stored = True
        except Exception as error:  # noqa: BLE001 - durable-rules raises bare Exceptions
            self.run.errors.append(f"rule engine: {_message(error)}")
        return self.run.intents[before:]

    def _route(self, facts: Sequence[Fact]) -> int:
        kind, key = ROUTE
        playbook = next((f.fields.get(key) for f in facts if f.type == kind), None)
        return self.version.plan.shard_for(playbook)

    def _register(self, fact: Fact, origin: str, by: int | None) -> dict[str, Any]:
        fact_id = self.run.record(fact, origin, by)
        # A unique id on every fact: without one durable-rules reports false duplicates (issue #376).
        encoded = {**_readable(fact.fields), TYPE_FIELD: fact.type, "id": fact_id, "sid": self.sid}
        self._encoded[fact_id] = encoded
        return encoded

    def fire(self, name: str, closure) -> None:
        """A durable-rules activation of `name` (`RULE#N`, or a revival): check it, then do its actions."""
        if name.startswith(REVIVE):
            activation = self._revived.pop(str(_matched(closure)["revive"]["key"]), None)
            if activation is None or any(f in self.run.retracted for f in activation.bound.values()):
                return  # a fact it needs was retracted meanwhile: the activation is gone, as in Rete
        else:
            rule_name, index = split_alternative(name)
            rule = self.version.rules[rule_name]
            matched = _matched(closure)
            bound = {p.alias: str(matched[p.alias]["id"]) for p in rule.alternatives[index] if not p.negated}
            activation = _Activation(rule, index, bound, "")
        if not self._blocked_now(activation):
            self._execute(activation, closure)

    def _blocked_now(self, activation: _Activation) -> bool:
        """Check the `none` patterns against the facts now; hold the activation back if one fails."""
        pattern, found = self._first_blocker(activation)
        if found is None:
            return False
        activation.blocker = found.id
        self._blocked.append(activation)
        self.run.skips.append(Skip(activation.rule.name, activation.index, dict(activation.bound),
                                   f"`{pattern.describe()}` does not hold: {found.id} matches it"))
        return True

    def _first_blocker(self, activation: _Activation):
        negated = [p for p in activation.rule.alternatives[activation.index] if p.negated]
        if not negated:
            return None, None
        given = {alias: self.run.view(fact_id) for alias, fact_id in activation.bound.items()}
        for pattern in negated:
            found = blocker(pattern, self.run.candidates(pattern, given), given)
            if found is not None:
                return pattern, found
        return None, None

    def _execute(self, activation: _Activation, closure) -> None:
        rule, bound = activation.rule, activation.bound
        firing = self.run.fire(rule.name, activation.index, rule.salience, dict(bound))
        bindings = {alias: self.run.facts[fact_id].fields for alias, fact_id in bound.items()}
        pending: list[dict[str, Any]] = []
        for action in rule.actions:
            try:
                self._act(action, bindings, bound, firing, closure, pending)
            except Exception as error:  # noqa: BLE001 - an action that raises is a failed action; go on
                self.run.fail(firing, action.verb, _message(error))
        # Asserting inside an action can end the action early (durable-rules #350), so it goes last.
        for encoded in pending:
            try:
                closure.assert_fact(encoded)
            except Exception as error:  # noqa: BLE001 - the fact never entered the session
                if encoded[TYPE_FIELD] != REVIVE_FACT:
                    self.run.drop(encoded["id"], firing.seq)
                self.run.fail(firing, "assert", _message(error))

    def _act(self, action, bindings, bound, firing: Firing, closure, pending: list[dict[str, Any]]) -> None:
        if action.verb == "assert":
            fact_type, fields = next(iter(action.args.items()))
            encoded = self._register(Fact(fact_type, {k: fill(v, bindings) for k, v in fields.items()}), "rule",
                                     firing.seq)
            firing.asserted.append(encoded["id"])
            pending.append(encoded)
        elif action.verb == "retract":
            fact_id = bound[action.args["alias"]]
            if fact_id in self.run.retracted:
                raise RuntimeError(f"{fact_id} was already retracted")
            closure.retract_fact(dict(self._encoded[fact_id]))
            self.run.retract(fact_id, firing)
            pending += self._unblocked_by(fact_id)
        else:
            self.run.intend(Intent(action.verb, _arguments(action, bindings), firing.rule, firing.seq))

    def _unblocked_by(self, fact_id: str) -> list[dict[str, Any]]:
        """Activations held back by `fact_id` that now hold: facts that put them back on the agenda."""
        revive = []
        for activation in [a for a in self._blocked if a.blocker == fact_id]:
            self._blocked.remove(activation)
            _, found = self._first_blocker(activation)
            if found is not None:
                activation.blocker = found.id
                self._blocked.append(activation)
                continue
            key = f"r{next(self._revivals)}"
            self._revived[key] = activation
            revive.append({TYPE_FIELD: REVIVE_FACT, "rule": alternative_name(activation.rule.name, activation.index),
                           "key": key, "id": key, "sid": self.sid})
        return revive


def _finite(value: Any) -> bool:
    """No infinity or NaN anywhere in a fact's fields (JSON cannot carry them; durable-rules would drop the batch)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def _readable(value: Any) -> Any:
    """`value` with every float written so durable-rules reads it. Its JSON reader drops the whole batch, without a
    word, at a number in exponent form with no decimal point ("1e+16", "1e-05", as Python writes 1e16 and 0.00001),
    while "1.5e-07" reads fine; the next float away from zero (one unit in the last place, a relative change
    of 2e-16) is written with a point. Measured on durable-rules 2.0.28 (tests/engine/test_ruleengine.py)."""
    if isinstance(value, float):
        text = repr(value)
        return math.nextafter(value, math.copysign(math.inf, value)) if "e" in text and "." not in text else value
    if isinstance(value, Mapping):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_readable(v) for v in value]
    return value


def _matched(closure) -> Mapping[str, Mapping[str, Any]]:
    """The facts an activation matched, by alias. Read from the closure's own dict: `getattr(closure, alias)`
    would give durable-rules' attributes instead for aliases such as `s` (the session state) or `m`."""
    return closure._m


def _arguments(action, bindings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    if action.verb == "remediate" and "from" in action.args:
        source = bindings[action.args["from"]]
        return {"name": source["action"], "target": source["target"], "params": {}, "from": action.args["from"]}
    args: dict[str, Any] = {}
    for key, value in action.args.items():
        if isinstance(value, list):
            args[key] = [render(v, bindings) if isinstance(v, str) else v for v in value]
        elif isinstance(value, Mapping):
            args[key] = {k: fill(v, bindings) for k, v in value.items()}
        else:
            args[key] = fill(value, bindings)
    return args


def _message(error: BaseException) -> str:
    # durable-rules' exceptions often have an empty str(); their text is in `.message`.
    return str(error) or str(getattr(error, "message", "")) or type(error).__name__
