"""Simulated scenarios for `firstline heal --simulate` and the benchmark: a fault, simulated time, the real
monitor, healer, rules and ledger, and the measures that say whether users would have noticed.

Time is simulated (a 60-minute scenario runs in seconds): the clock moves one monitor interval per tick. The
seed fixes the noise, when the fault starts and how fast it grows. The same scenario is also replayed with
no one acting (the counterfactual), which says when users *would* have been hit: the first moment any metric
of any service passes its limit in the infrastructure file.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.settings import Settings
from engine.actions.actuator import Actuator
from engine.actions.adapters import AdapterRouter
from engine.actions.adapters.simulated import SimulatedAdapter
from engine.actions.safety import SafetyPolicy
from engine.decision.ruleengine import RuleEngine
from engine.healing.detection import DetectionConfig, Detector
from engine.healing.healer import Event, Healer
from engine.healing.monitor import Monitor
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import SimulationSource
from engine.infra.topology import Topology
from engine.store import DuckDBStore
from engine.store.healing import HealingLedger

EPOCH = 1_800_000_000.0  # simulated wall-clock start; only differences are reported
ONSET_S = (300, 900)  # the fault starts between 5 and 15 minutes in


@dataclass(frozen=True)
class ScenarioSpec:
    fault: str | None  # `name@service`, None for the healthy run
    ramp_s: tuple[float, float] = (0.0, 0.0)  # the fault reaches full strength after this long (drawn)
    help: str = ""


SCENARIOS: dict[str, ScenarioSpec] = {
    "memory_leak": ScenarioSpec("memory_leak@api", (1800, 3000), "the API leaks memory until it runs out"),
    "bad_deploy": ScenarioSpec("bad_deploy@api", (600, 1200), "a rolling deploy of the API raises its errors"),
    "slow_queries": ScenarioSpec("slow_queries@database", (900, 1800), "queries pile up and slow everything"),
    "cache_degradation": ScenarioSpec("cache_degradation@cache", (1200, 2400), "the cache hit ratio decays"),
    "traffic_surge": ScenarioSpec("traffic_surge@api", (900, 1500), "traffic climbs past what the API can serve"),
    "pool_exhaustion": ScenarioSpec("pool_exhaustion@database", (1200, 2400), "the connection pool fills up"),
    "healthy": ScenarioSpec(None, help="no fault: any action is a false action"),
}


@dataclass
class ScenarioReport:
    """What happened, when, and the measures; `contract()` is the `heal --json` object."""

    scenario: str
    seed: int
    minutes: float
    detection: str
    fault: str | None
    fault_at_s: float | None
    would_hit_at_s: float | None
    detected_at_s: float | None
    acted_at_s: float | None
    recovered_at_s: float | None
    user_impact_s: float
    actions: list[dict[str, str]]
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def executed(self) -> list[dict[str, str]]:
        return [a for a in self.actions if a["status"] not in ("skipped", "dry_run")]

    @property
    def prevented(self) -> bool:
        """The fault was fixed before any limit was crossed (a healthy run has nothing to prevent)."""
        return self.fault is not None and self.recovered_at_s is not None and self.user_impact_s == 0

    @property
    def lead_time_s(self) -> float | None:
        if self.acted_at_s is None or self.would_hit_at_s is None:
            return None
        return self.would_hit_at_s - self.acted_at_s

    @property
    def time_to_recovery_s(self) -> float | None:
        if self.recovered_at_s is None or self.fault_at_s is None:
            return None
        return self.recovered_at_s - self.fault_at_s

    @property
    def false_actions(self) -> int:
        """Actions run when nothing was wrong: all of them in a healthy run, those before the fault otherwise."""
        if self.fault_at_s is None:
            return len(self.executed)
        return sum(1 for a in self.executed if float(a["at_s"]) < self.fault_at_s)

    def contract(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "prevented": self.prevented, "detected_at_s": self.detected_at_s,
            "acted_at_s": self.acted_at_s, "recovered_at_s": self.recovered_at_s,
            "user_impact_s": self.user_impact_s,
            "actions": [{"name": a["name"], "target": a["target"], "status": a["status"]} for a in self.actions],
            "seed": self.seed, "minutes": self.minutes, "detection": self.detection, "fault": self.fault,
            "fault_at_s": self.fault_at_s, "would_hit_at_s": self.would_hit_at_s, "lead_time_s": self.lead_time_s,
            "time_to_recovery_s": self.time_to_recovery_s, "false_actions": self.false_actions,
            "timeline": self.timeline,
        }


class SimClock:
    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def scenario_spec(name: str) -> ScenarioSpec:
    spec = SCENARIOS.get(name)
    if spec is None:
        raise InputError(f"unknown scenario {name!r}; scenarios: {', '.join(SCENARIOS)}", code="unknown_scenario")
    return spec


def run_scenario(
    name: str,
    minutes: float,
    seed: int,
    settings: Settings,
    topology: Topology,
    rules: RuleEngine,
    predictive: bool = True,
    audit: Path | None = None,
) -> ScenarioReport:
    """Run one scenario in simulated time with the real monitor; `audit` keeps its ledger in a DuckDB file."""
    spec = scenario_spec(name)
    interval = settings.monitor_interval_s
    rng = random.Random(f"{name}:{seed}")
    onset = round(rng.uniform(*ONSET_S) / interval) * interval if spec.fault else None
    ramp = rng.uniform(*spec.ramp_s)
    ticks = int(minutes * 60 // interval) + 1
    would_hit = _first_breach(spec, topology, seed, onset, ramp, ticks, interval)

    clock = SimClock()
    infrastructure = SimulatedInfrastructure(topology, seed, clock)
    events: list[Event] = []
    counter = itertools.count(1)
    new_id = lambda: f"{next(counter):06d}"  # noqa: E731 - deterministic ids keep a seeded run reproducible
    store = DuckDBStore(audit or Path(":memory:"), clock)
    try:
        ledger = HealingLedger(store, new_id)
        policy = SafetyPolicy.from_settings(settings)
        actuator = Actuator(AdapterRouter(SimulatedAdapter(infrastructure), {}, topology), ledger, topology, policy,
                            infrastructure.observe, clock, new_id, events.append)
        healer = Healer(topology, rules, actuator, ledger, policy, clock, events.append)
        monitor = Monitor(SimulationSource(infrastructure), Detector(topology, DetectionConfig.from_settings(
            settings, predictive)), healer, ledger, interval, clock, record_samples=audit is not None)
        impact, recovered = 0.0, None
        for tick in range(ticks):
            clock.now = EPOCH + tick * interval
            if onset is not None and tick * interval == onset:
                infrastructure.inject(spec.fault or "", ramp_s=ramp)
                events.append(Event(clock.now, "fault", f"{spec.fault} begins ({spec.help}; full strength after "
                                                        f"{ramp / 60:.0f} min)"))
            report = monitor.tick()
            if report.snapshot and topology.unhealthy_services(report.snapshot.metrics):
                if not impact:
                    events.append(Event(clock.now, "users_hit", "a limit is crossed: users notice"))
                impact += interval
            if recovered is None and onset is not None and not infrastructure.faults() and \
                    any(e.kind == "verified" for e in events):
                recovered = clock.now
                events.append(Event(clock.now, "recovered", "the fault is gone and the fix is verified"))
        rows = ledger.remediations()
    finally:
        store.close()
    return _report(name, seed, minutes, predictive, spec, onset, would_hit, impact, recovered, events, rows)


def _first_breach(spec: ScenarioSpec, topology: Topology, seed: int, onset: float | None, ramp: float, ticks: int,
                  interval: float) -> float | None:
    """The counterfactual: when would a limit first be crossed if nobody acted?"""
    if spec.fault is None or onset is None:
        return None
    clock = SimClock()
    infrastructure = SimulatedInfrastructure(topology, seed, clock)
    for tick in range(ticks):
        clock.now = EPOCH + tick * interval
        if tick * interval == onset:
            infrastructure.inject(spec.fault, ramp_s=ramp)
        if topology.unhealthy_services(infrastructure.observe()):
            return tick * interval
    return None


def _report(name: str, seed: int, minutes: float, predictive: bool, spec: ScenarioSpec, onset: float | None,
            would_hit: float | None, impact: float, recovered: float | None, events: list[Event],
            rows: list) -> ScenarioReport:
    def rel(at: float | None) -> float | None:
        return None if at is None else round(at - EPOCH, 3)

    detected = next((e.at for e in events if e.kind == "detected"), None)
    executed = [r for r in rows if r.status not in ("skipped", "dry_run")]
    return ScenarioReport(
        scenario=name, seed=seed, minutes=minutes, detection="predictive" if predictive else "threshold",
        fault=spec.fault, fault_at_s=onset, would_hit_at_s=would_hit, detected_at_s=rel(detected),
        acted_at_s=rel(executed[0].started_at) if executed else None, recovered_at_s=rel(recovered),
        user_impact_s=impact,
        actions=[{"name": r.action, "target": r.target, "status": r.status, "rule": r.rule or "",
                  "at_s": str(rel(r.started_at)), "detail": r.detail} for r in rows],
        timeline=[{"at_s": rel(e.at), "kind": e.kind, "summary": e.summary} for e in events],
    )
