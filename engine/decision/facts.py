"""The facts of one decision: what was matched, what the infrastructure shows, who asks, and what was tried.

The order is deliberate. durable-rules refuses a fact that completes more than 64 activations at once
(error 303), so the facts that many rules join on come first and the many per-candidate facts come last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.taxonomy import Kind
from engine.actions.catalogue import ACTIONS
from engine.decision.trace import Fact
from engine.infra.topology import Topology
from engine.infra.trends import STEP_S, WINDOW_S, trend
from engine.store.decisions import EventStore, PastAction
from knowledge.base import Match
from knowledge.playbooks import Playbook

HISTORY_S = 24 * 3600.0  # earlier actions the rules can see
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class Asking:
    """Who asks and where: the part of a turn the facts need besides the match."""

    user_id: str
    conversation_id: str
    channel: str
    text: str


class Infrastructure(Protocol):
    """What the facts read of the infrastructure: recent samples, the latest last, for its state and trends."""

    def recent(self, window_s: float, step_s: float) -> list[tuple[float, dict[str, dict[str, float]]]]:
        """Samples over the last `window_s` seconds, oldest first (a metrics store's range query)."""
        ...


RemedyOrder = Callable[[str, list[tuple[str, str]], str], list[tuple[str, str]]]


class FactBuilder:
    """Turns a turn's match, the telemetry and the stored history into facts for the rules."""

    def __init__(self, infrastructure: Infrastructure, topology: Topology, store: EventStore,
                 clock: Callable[[], float],
                 remedy_order: RemedyOrder | None = None) -> None:
        self.infrastructure = infrastructure
        self.remedy_order = remedy_order
        self.topology = topology
        self.store = store
        self.clock = clock

    def build(self, asking: Asking, match: Match, playbook: Playbook | None) -> list[Fact]:
        now = self.clock()
        history = [a for a in self.store.past_actions(asking.user_id, now - HISTORY_S, HISTORY_LIMIT)
                   if a.name in ACTIONS]  # remediations only, not hand-offs or failed rule actions
        facts = [_match_fact(match, playbook),
                 Fact("message", {"text": asking.text, "length": len(asking.text),
                                  "forbids_action": match.forbids_action})]
        facts += [Fact("aside", {"playbook": a.playbook, "category": a.category, "kind": a.group, "score": a.score})
                  for a in match.asides]
        facts += self._telemetry()
        facts += _remedies(playbook, self._defaults_order(playbook, asking.conversation_id))
        facts.append(_conversation(asking, self.store.user_turns(asking.conversation_id), history))
        account = self.store.account(asking.user_id)
        if account is not None:
            facts.append(Fact("account", {"plan": account.plan, "seats": account.seats, "role": account.role}))
        facts += [_action(a, now, asking.conversation_id) for a in history]
        facts += [Fact("candidate", {"playbook": c.playbook, "category": c.category, "score": c.score, "rank": i})
                  for i, c in enumerate(match.candidates, 1)]
        return facts

    def _defaults_order(self, playbook: Playbook | None, seed: str) -> list[tuple[str, str]] | None:
        """The playbook's safe defaults (remedies no telemetry points at) in the order learning suggests:
        a Thompson sample of each one's success posterior, stable within a conversation."""
        if self.remedy_order is None or playbook is None:
            return None
        defaults = [(r.action, r.target) for r in playbook.remedies if r.indicated_by is None]
        return self.remedy_order(playbook.id, defaults, seed) if len(defaults) > 1 else None

    def _telemetry(self) -> list[Fact]:
        samples = self.infrastructure.recent(WINDOW_S, STEP_S)
        latest = samples[-1][1]
        unhealthy: set[str] = set()
        facts = []
        for service, values in latest.items():
            for metric, value in values.items():
                limit = self.topology.services[service].limits[metric]
                worse = self.topology.metrics[metric].worse
                bad = self.topology.is_unhealthy(service, metric, value)
                unhealthy |= {service} if bad else set()
                series = [(t, v[service][metric]) for t, v in samples if metric in v.get(service, {})]
                moving = trend(series, limit, worse, bad)
                fields = {"service": service, "name": metric, "value": value, "limit": limit,
                          "status": "unhealthy" if bad else "ok", "worse": worse, "trend": moving.direction,
                          "slope_per_min": moving.slope_per_min}
                if moving.time_to_limit_s is not None:
                    fields["time_to_limit_s"] = moving.time_to_limit_s
                facts.append(Fact("metric", fields))
        for service in latest:
            roots = self.topology.root_causes(service, unhealthy) if service in unhealthy else []
            facts.append(Fact("service", {"name": service, "healthy": service not in unhealthy,
                                          "root_cause": service in roots}))
        return facts


def _match_fact(match: Match, playbook: Playbook | None) -> Fact:
    return Fact("match", {
        "playbook": match.best.playbook, "title": playbook.title if playbook else "",
        "category": match.best.category, "kind": playbook.kind.value if playbook else Kind.OUT_OF_SCOPE.value,
        "band": match.band.value, "confidence": round(match.confidence, 4), "score": match.best.score,
        "group": match.group or (playbook.kind.value if playbook else Kind.OUT_OF_SCOPE.value),
        "group_probability": round(match.group_probability, 4), "language": match.language,
    })


def _remedies(playbook: Playbook | None, defaults_order: list[tuple[str, str]] | None = None) -> list[Fact]:
    """One fact per remedy; `default_rank` orders the safe defaults (the playbook's order unless learning
    gave another)."""
    facts = []
    defaults = 0
    for rank, remedy in enumerate(playbook.remedies if playbook else (), 1):
        signal = remedy.indicated_by
        defaults += signal is None
        default_rank = defaults if signal is None else 0
        if signal is None and defaults_order:
            default_rank = defaults_order.index((remedy.action, remedy.target)) + 1
        facts.append(Fact("remedy", {
            "rank": rank, "action": remedy.action, "target": remedy.target,
            "signal_service": signal.service if signal else "", "signal_metric": signal.metric if signal else "",
            "default_rank": default_rank,
        }))
    return facts


def _conversation(asking: Asking, turns: int, history: Sequence[PastAction]) -> Fact:
    here = [a for a in history if a.conversation_id == asking.conversation_id]
    return Fact("conversation", {
        "attempt": turns, "channel": asking.channel,
        "failed_actions": sum(a.status == "failed" for a in here),
        "succeeded_actions": sum(a.status == "succeeded" for a in here),
    })


def _action(action: PastAction, now: float, conversation_id: str) -> Fact:
    return Fact("action", {
        "name": action.name, "target": action.target, "status": action.status, "rule": action.rule,
        "age_s": round(max(0.0, now - action.finished_at), 1),
        "same_conversation": action.conversation_id == conversation_id, "current": False,
    })


def outcome_fact(name: str, target: str, status: str, rule: str) -> Fact:
    """A remediation run in this decision, asserted back so rules can react to how it went."""
    return Fact("action", {"name": name, "target": target, "status": status, "rule": rule, "age_s": 0.0,
                           "same_conversation": True, "current": True})
