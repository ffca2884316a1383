"""Unattended remediation: signals -> root cause -> rules -> the actuator's gate -> verification on later ticks.

The monitor hands the healer every current signal once per tick. Confirmed signals are walked down the dependency
graph to their root cause, turned into facts, and run through the same rule engine as the chat
(rules/builtin/healing.yaml decides what to do). Each action goes through the one actuator
(`engine/actions/actuator.py`) the chat uses too, so both share cooldowns, limits and the breaker; it is then
verified on later ticks: its metric must come back in bounds, and stay there, before `verify_timeout_s`, or the
actuator undoes it where it can and hands the problem to engineering. Every step is written to the ledger:
signal, rule, action, verification, rollback, hand-off.

A problem that comes back after a verified fix (a new episode on the same service and metric within
`recurrence_window_s`) makes that fix a failure in the ledger, and the rules see its returns as a `signal` of kind
`recurrence`: soft while under `recurrence_limit`, hard once it keeps coming back; then its remedies stop and one
hand-off, deduplicated in the store, gives engineering the history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import networkx as nx

from engine.actions.actuator import MONITOR, ActionRequest, Actuator, Event, alert_requester
from engine.actions.safety import SafetyPolicy, keeps_coming_back
from engine.decision.ruleengine import Fact, RuleEngine
from engine.healing.detection import Detector, Signal, SignalKind
from engine.healing.incidents import Storms
from engine.infra.telemetry import VERSION_METRIC
from engine.infra.topology import Topology
from engine.store.alert_intake import AlertIntake
from engine.store.healing import HealingLedger, Recurrence, RemediationRow

ROLLBACK_ACTION = "rollback_deploy"  # the remedy of a recent deploy
RECURRENCE = "recurrence"  # the kind of the `signal` fact of a problem that came back after remediation
log = logging.getLogger("firstline.healing")
__all__ = ["ROLLBACK_ACTION", "Event", "Healer"]


@dataclass
class _Episode:
    signal_id: str
    handed_off: bool = False


class Healer:
    """Decides and runs remediations for the monitor; stateless across restarts except for the ledger."""

    def __init__(
        self,
        topology: Topology,
        rules: RuleEngine,
        actuator: Actuator,
        ledger: HealingLedger,
        policy: SafetyPolicy,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.topology = topology
        self.rules = rules
        self.actuator = actuator
        self.ledger = ledger
        self.policy = policy
        self.clock = clock
        self.on_event = on_event
        # Which signals are already in the audit trail: only a new episode (a signal turning hard) is recorded.
        self._episodes: dict[tuple[str, str, str], _Episode] = {}
        self.storms = Storms(AlertIntake(ledger), topology, emit=on_event)  # alert storms as one incident each

    # -- acting -------------------------------------------------------------------------------------

    def step(self, signals: Sequence[Signal], detector: Detector) -> list[RemediationRow]:
        """Act on the confirmed signals among `signals`; verify what is waiting. Returns the attempts made."""
        now = self.clock()
        self._end_episodes(signals)
        actionable = [s for s in signals if s.actionable]
        unhealthy = {s.service for s in signals if s.kind is not SignalKind.DEPLOY} | detector.suspects()
        incident = self.storms.begin(now, unhealthy)  # many alerts at once: one incident, one escalation
        busy = {row.target for row in self.ledger.verifying()}
        roots = {s: self._root(s, unhealthy) for s in actionable}
        ids = {s: self._episode(s, roots[s], detector.last_deploy(s.service)).signal_id for s in actionable}
        # An action waiting for verification owns its service and everything that depends on it: callers of a
        # database being fixed look sick for a little longer, and must not get a remedy of their own for that.
        fresh = [s for s in actionable
                 if not busy & ({s.service, roots[s]} | nx.descendants(self.topology.graph, s.service))]
        attempts: list[RemediationRow] = []
        if fresh:
            attempts = self._decide_and_act(fresh, [s for s in signals if s.kind is SignalKind.DEPLOY], roots, ids, now)
        self.verify(detector)
        self.storms.escalate(incident, now)  # once per storm, saying what was done
        return attempts

    def _decide_and_act(self, fresh: list[Signal], deploys: list[Signal], roots: dict[Signal, str],
                        ids: dict[Signal, str], now: float) -> list[RemediationRow]:
        facts = [self._signal_fact(s, roots.get(s, s.service)) for s in fresh + deploys]
        facts += self._remedy_facts(fresh, deploys, roots, now)
        run = self.rules.run(facts)
        for error in run.errors:
            log.warning("healing rules: %s", error)
        by_place = {(s.service, s.metric): s for s in fresh}
        attempts = []
        seen: set[tuple[str, str]] = set()
        firings = {f.seq: f for f in run.firings}

        def bound(intent, alias: str) -> dict:
            """The fields of the fact the intent's firing bound to `alias` (empty if none)."""
            firing = firings.get(intent.firing)
            fact_id = firing.facts.get(alias) if firing else None
            return dict(run.facts[fact_id].fields) if fact_id in run.facts else {}

        for intent in (i for i in run.intents if i.verb == "escalate"):
            self._escalate(bound(intent, "signal"), str(intent.args.get("summary", "")), now)
        for intent in run.intents:
            if intent.verb != "remediate" or "from" not in intent.args:
                continue
            remedy = bound(intent, str(intent.args["from"]))
            key = (str(intent.args["name"]), str(intent.args["target"]))
            if key in seen:
                continue
            seen.add(key)
            service, metric = remedy.get("signal_service"), remedy.get("signal_metric")
            signal = (by_place.get((service, metric)) if service and metric else None) or self._spike(fresh, key[1])
            attempts.append(self._attempt(key[0], key[1], intent.rule, signal, ids.get(signal) if signal else None))
        return [a for a in attempts if a is not None]

    def _attempt(self, action: str, target: str, rule: str, signal: Signal | None,
                 signal_id: str | None) -> RemediationRow | None:
        requester = alert_requester(signal.fingerprint) if signal is not None and signal.fingerprint else MONITOR
        verify = (signal.service, signal.metric) if signal else None
        outcome = self.actuator.run(ActionRequest(action, target, requester, verify=verify, rule=rule,
                                                  signal_id=signal_id))
        # None: a refusal the gate had already recorded a moment ago, so there is nothing new to report.
        return self.ledger.remediation(outcome.attempt_id) if outcome.attempt_id else None

    # -- verifying ----------------------------------------------------------------------------------

    def verify(self, detector: Detector) -> None:
        """Settle every action waiting for verification: verified, or past its deadline and rolled back."""
        now = self.clock()
        for row in self.ledger.verifying():
            settled = detector.settled(*row.verify, since=row.started_at) if row.verify else None
            if settled and row.verify:
                value = detector.latest(*row.verify)
                self.actuator.settle(row, True, f"{row.detail}; verified: {row.verify[0]} {row.verify[1]} back in "
                                     f"bounds ({value:g})")
                self._emit(Event(now, "verified", f"{row.verify[0]} {row.verify[1]} back in bounds after "
                                 f"{row.action}", row.action, row.target, "succeeded"))
            elif row.verify_by is not None and now >= row.verify_by:
                self._verification_failed(row, detector, now)

    def _verification_failed(self, row: RemediationRow, detector: Detector, now: float) -> None:
        where = f"{row.verify[0]} {row.verify[1]}" if row.verify else row.target
        value = detector.latest(*row.verify) if row.verify else None
        seen = f" (now {value:g})" if value is not None else ""
        self._emit(Event(now, "verification_failed", f"{where} not back in bounds after {row.action}", row.action,
                         row.target, "failed"))
        self.actuator.settle(row, False, f"{row.detail}; verification failed: {where} not back in bounds within "
                             f"{self.policy.verify_timeout_s:g} s{seen}", f"did not bring {where} back")

    # -- facts --------------------------------------------------------------------------------------

    def _root(self, signal: Signal, unhealthy: set[str]) -> str:
        roots = self.topology.root_causes(signal.service, unhealthy | {signal.service})
        return signal.service if signal.service in roots else (roots[0] if roots else signal.service)

    def _signal_fact(self, signal: Signal, root: str | None) -> Fact:
        return Fact("signal", {
            "service": signal.service, "metric": signal.metric, "kind": signal.kind.value,
            "state": signal.state.value, "root_cause": root == signal.service, "root": root or signal.service,
            "value": signal.value, "limit": signal.limit, "eta_s": -1 if signal.eta_s is None else signal.eta_s,
        })

    def _remedy_facts(self, fresh: list[Signal], deploys: list[Signal], roots: dict[Signal, str],
                      now: float) -> list[Fact]:
        facts = []
        places = {(s.service, s.metric) for s in fresh if roots[s] == s.service}
        for service, metric in sorted(places):
            for rank, action in enumerate(self.topology.services[service].remedies.get(metric, ()), 1):
                facts.append(self._remedy(rank, action, service, metric, now))
            recurring = self._recurrence_fact(service, metric)
            if recurring is not None:
                facts.append(recurring)
        for deploy in deploys:
            facts.append(self._remedy(1, ROLLBACK_ACTION, deploy.service, VERSION_METRIC, now))
        return facts

    def _remedy(self, rank: int, action: str, service: str, metric: str, now: float) -> Fact:
        failed = self.ledger.failed_since(action, service, now - self.policy.rate_window_s)
        return Fact("remedy", {"rank": rank, "action": action, "target": service, "signal_service": service,
                               "signal_metric": metric, "default_rank": 0, "failed_recently": bool(failed)})

    # -- audit --------------------------------------------------------------------------------------

    def _episode(self, signal: Signal, root: str, deployed_at: float | None) -> _Episode:
        key = (signal.service, signal.metric, signal.kind.value)
        episode = self._episodes.get(key)
        if episode is None:
            episode = _Episode(self.ledger.record_signal(signal, root))
            self._episodes[key] = episode
            self._emit(Event(signal.at, "detected", signal.describe() + (f"; root cause {root}" if root !=
                                                                         signal.service else "")))
            self._came_back(signal, episode.signal_id, deployed_at)
        return episode

    def _end_episodes(self, signals: Sequence[Signal]) -> None:
        current = {(s.service, s.metric, s.kind.value) for s in signals if s.actionable}
        for key in [k for k in self._episodes if k not in current]:
            del self._episodes[key]

    def _escalate(self, bound: Any, summary: str, now: float) -> None:
        if bound.get("kind") == RECURRENCE:
            self._hand_off_recurring(str(bound.get("service")), str(bound.get("metric")), summary, now)
            return
        key = (str(bound.get("service")), str(bound.get("metric")), str(bound.get("kind")))
        episode = self._episodes.get(key)
        if episode is None or episode.handed_off:
            return  # one hand-off per episode, however many ticks it lasts
        episode.handed_off = True
        if self.storms.fold(summary or f"{key[0]} {key[1]}: no automated remedy", now):
            return  # a storm is under way: its one escalation speaks for this too
        self.actuator.hand_off(episode.signal_id, summary or "a confirmed problem with no automated remedy",
                               {"signal": dict(bound)}, now)

    # -- problems that come back after remediation ----------------------------------------------------

    def _came_back(self, signal: Signal, signal_id: str, deployed_at: float | None) -> None:
        """A new episode of a problem a remedy was verified as fixing within the window: that remedy failed,
        unless the service has run a new version since (`deployed_at`): the new release is the new cause."""
        back = self.ledger.record_recurrence(signal.service, signal.metric, signal.at,
                                             self.policy.recurrence_window_s, signal_id, deployed_at)
        if back is not None:
            self._emit(Event(signal.at, "recurred", f"{signal.service} {signal.metric} came back "
                             f"{back.recurred_at - back.verified_at:.0f} s after {back.action} on {back.target} was "
                             "verified; counted as a failure", back.action, back.target, "failed"))

    def _recurrence_fact(self, service: str, metric: str) -> Fact | None:
        """The problem's returns in a row after remediation, as a `signal` of kind `recurrence` (value: how many;
        limit: how many are allowed): hard once it keeps coming back or its hand-off is still open, else soft.
        None when it has not come back."""
        open_id, since = self.ledger.recurring_handoff(service, metric)
        streak = self.ledger.recurrence_streak(service, metric, since)
        if not streak and open_id is None:
            return None
        hard = keeps_coming_back(self.policy, len(streak), open_id is not None)
        return Fact("signal", {
            "service": service, "metric": metric, "kind": RECURRENCE, "state": "hard" if hard else "soft",
            "root_cause": True, "root": service, "value": len(streak), "limit": self.policy.recurrence_limit,
            "eta_s": -1,
        })

    def _hand_off_recurring(self, service: str, metric: str, summary: str, now: float) -> None:
        """One hand-off for a problem that keeps coming back, with each attempt and its return; the store refuses a
        second while the first is open, however many ticks (or processes) ask."""
        open_id, since = self.ledger.recurring_handoff(service, metric)
        streak = self.ledger.recurrence_streak(service, metric, since)
        if open_id is not None or not streak:
            return
        summary = summary or f"{service} {metric} keeps coming back after remediation"
        text = f"{summary}: " + "; ".join(f"{i}) {_attempt(r)}" for i, r in enumerate(streak, 1))
        diagnostics = {"recurrences": len(streak), "window_s": self.policy.recurrence_window_s,
                       "history": [_history(r) for r in streak]}
        source = streak[-1].signal_id or streak[-1].remediation_id
        if self.ledger.record_recurring_handoff(service, metric, source, text, diagnostics, now) is not None:
            self._emit(Event(now, "handoff", f"handed to engineering: {text}", status="created"))

    def _spike(self, fresh: list[Signal], service: str) -> Signal | None:
        return next((s for s in fresh if s.service == service and s.metric == "error_rate"), None)

    def _emit(self, event: Event) -> None:
        log.info("%s: %s", event.kind, event.summary)
        if self.on_event is not None:
            self.on_event(event)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _attempt(back: Recurrence) -> str:
    return (f"{back.action} on {back.target} at {_when(back.started_at)}, verified at {_when(back.verified_at)}, "
            f"back at {_when(back.recurred_at)} ({back.recurred_at - back.verified_at:.0f} s later)")


def _history(back: Recurrence) -> dict[str, Any]:
    """One attempt of a recurring problem's hand-off, for the engineers (JSON)."""
    return {"remediation_id": back.remediation_id, "action": back.action, "target": back.target, "rule": back.rule,
            "requester": back.requester, "started_at": _when(back.started_at),
            "verified_at": _when(back.verified_at), "result": back.detail, "recurred_at": _when(back.recurred_at),
            "came_back_after_s": round(back.recurred_at - back.verified_at), "signal_id": back.signal_id}
