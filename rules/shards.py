"""Splitting a large rule base over several durable-rules rulesets, each small enough for durable-rules.

durable-rules 2.0.28 hangs creating a ruleset of 512 rules and refuses one of about 500 at the first fact
(error 303). A decision only ever needs the rules that can match its playbook, so rules whose every
alternative requires `match.playbook` to be a literal (or one of a list) are *routed*: each shard holds all
the unrouted (core) rules plus the routed rules of a group of playbooks, and a decision runs in the one shard
that holds its playbook. Within a shard, forward chaining and salience are exact, because every rule that can
fire for that playbook is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import Problem, RuleError
from rules.compiler import compiled_size
from rules.model import Rule, RuleBase

ROUTE = ("match", "playbook")  # the fact type and field a decision is routed by
# Compiled rules per durable-rules ruleset: well under the 512 at which durable-rules hangs, with room for
# the engine's own per-fact-type rules.
SHARD_CAPACITY = 400


@dataclass(frozen=True)
class Shard:
    """One durable-rules ruleset's worth of rules, and the playbooks routed to it."""

    rules: tuple[Rule, ...]
    playbooks: frozenset[str]

    @property
    def size(self) -> int:
        return sum(compiled_size(rule) for rule in self.rules)


@dataclass(frozen=True)
class ShardPlan:
    shards: tuple[Shard, ...]
    route: Mapping[str, int]  # playbook -> shard index; a playbook not listed runs in shard 0

    def shard_for(self, playbook: str | None) -> int:
        return self.route.get(playbook, 0) if playbook is not None else 0


class ShardError(RuleError):
    """The rule base cannot be split so that every decision finds its rules in one shard."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem("rule base", None, "", message)])


def routes_of(rule: Rule) -> frozenset[str] | None:
    """The playbooks a rule can fire for, or None when it can fire for any (it tests no literal playbook)."""
    found: set[str] = set()
    for alternative in rule.alternatives:
        here: set[str] | None = None
        for pattern in alternative:
            if pattern.negated or pattern.fact_type != ROUTE[0]:
                continue
            for test in pattern.tests:
                if test.field == ROUTE[1] and test.ref is None and test.op in ("eq", "in"):
                    values = {test.value} if test.op == "eq" else set(test.value)
                    here = values if here is None else here & values
        if here is None:
            return None
        found |= here
    return frozenset(found)


def plan_shards(rulebase: RuleBase, capacity: int = SHARD_CAPACITY, reserved: int = 0) -> ShardPlan:
    """Group rules into shards of at most `capacity - reserved` compiled rules each (see the module doc)."""
    room = capacity - reserved
    core: list[Rule] = []
    by_playbook: dict[str, list[Rule]] = {}
    for rule in rulebase.rules:
        routes = routes_of(rule)
        if routes is None:
            core.append(rule)
        for playbook in sorted(routes or ()):
            by_playbook.setdefault(playbook, []).append(rule)
    core_size = sum(compiled_size(r) for r in core)
    if core_size > room:
        raise ShardError(f"{core_size} compiled rules test no literal match.playbook, and one durable-rules "
                         f"ruleset holds {room}; give rules a `match: {{playbook: ...}}` pattern")
    if core_size + sum(compiled_size(r) for rules in by_playbook.values() for r in rules) <= room:
        return ShardPlan((Shard(rulebase.rules, frozenset(by_playbook)),), {})
    return _pack(core, by_playbook, room - core_size)


def _pack(core: list[Rule], by_playbook: dict[str, list[Rule]], room: int) -> ShardPlan:
    """First-fit decreasing: playbooks with the most rules first, each into the first shard with room."""
    groups: list[tuple[list[str], dict[str, Rule]]] = []
    for playbook in sorted(by_playbook, key=lambda p: (-len(by_playbook[p]), p)):
        rules = {r.name: r for r in by_playbook[playbook]}
        need = sum(compiled_size(r) for r in rules.values())
        if need > room:
            raise ShardError(f"playbook {playbook!r} has {need} compiled rules besides the core; a shard has room "
                             f"for {room}. Retire or merge some of its learned rules (`firstline learned`)")
        for playbooks, held in groups:
            extra = sum(compiled_size(r) for name, r in rules.items() if name not in held)
            if sum(compiled_size(r) for r in held.values()) + extra <= room:
                playbooks.append(playbook)
                held.update(rules)
                break
        else:
            groups.append(([playbook], dict(rules)))
    shards = tuple(Shard((*core, *held.values()), frozenset(playbooks)) for playbooks, held in groups)
    route = {playbook: i for i, shard in enumerate(shards) for playbook in shard.playbooks}
    return ShardPlan(shards, route)
