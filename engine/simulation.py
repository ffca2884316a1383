"""The built-in simulated infrastructure: seeded and deterministic, with faults that remediation really clears.

Metrics start at the topology's baselines with a little seeded noise; an injected fault pushes metrics of its
service past their limits and slows or breaks the services that depend on it; the matching action clears it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from core.errors import ConfigurationError, RemediationError
from engine.catalogue import ACTIONS
from engine.topology import Topology


@dataclass(frozen=True)
class FaultSpec:
    """A fault: the metric that picks its default service, what it does there, and what it does upstream."""

    key_metric: str
    direct: Mapping[str, float]  # metric -> value as a multiple of its limit
    upstream: Mapping[str, float] = field(default_factory=dict)  # on services depending on it
    growth_per_min: Mapping[str, float] = field(default_factory=dict)  # absolute units a minute


FAULTS: dict[str, FaultSpec] = {
    "slow_queries": FaultSpec("slow_queries", {"slow_queries": 4.0, "latency_p95_ms": 3.0}, {"latency_p95_ms": 1.8}),
    "cache_degradation": FaultSpec("cache_hit_ratio", {"cache_hit_ratio": 0.55}, {"latency_p95_ms": 1.4}),
    "memory_leak": FaultSpec("memory_pct", {}, {}, {"memory_pct": 1.5}),
    "bad_deploy": FaultSpec("error_rate", {"error_rate": 6.0}, {"error_rate": 2.5}),
    "traffic_surge": FaultSpec("cpu_pct", {"cpu_pct": 1.12, "latency_p95_ms": 2.2}, {"latency_p95_ms": 1.3}),
    "pool_exhaustion": FaultSpec("pool_used_pct", {"pool_used_pct": 1.11}, {"error_rate": 2.0, "latency_p95_ms": 1.5}),
    "failed_jobs": FaultSpec("failed_jobs", {"failed_jobs": 8.0}),
}

# Which faults an action clears on its target. Per-user actions clear none: they change one user's state.
CLEARS: dict[str, frozenset[str]] = {
    "restart_service": frozenset({"memory_leak", "pool_exhaustion"}),
    "rollback_deploy": frozenset({"bad_deploy"}),
    "scale_out": frozenset({"traffic_surge"}),
    "rebuild_cache": frozenset({"cache_degradation"}),
    "kill_slow_queries": frozenset({"slow_queries"}),
    "analyze_tables": frozenset({"slow_queries"}),
    "reset_connection_pool": frozenset({"pool_exhaustion"}),
    "retry_failed_jobs": frozenset({"failed_jobs"}),
}

NOISE = 0.03


@dataclass
class _ActiveFault:
    name: str
    service: str
    since: float


class SimulatedInfrastructure:
    """An in-process stand-in for the tenant's production, for demos, tests and simulated scenarios."""

    def __init__(self, topology: Topology, seed: int = 7, clock: Callable[[], float] = time.time) -> None:
        self.topology = topology
        self.seed = seed
        self.clock = clock
        self._faults: list[_ActiveFault] = []
        self._operations: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def inject(self, fault: str) -> str:
        """Start a fault, written `name` or `name@service`; returns the service it hit."""
        name, _, service = fault.partition("@")
        spec = FAULTS.get(name)
        if spec is None:
            raise ConfigurationError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
        if not service:
            candidates = [s for s in self.topology.services.values() if spec.key_metric in s.limits]
            if not candidates:
                raise ConfigurationError(f"fault {name}: no service has the metric {spec.key_metric}")
            service = candidates[0].name
        if service not in self.topology.services:
            raise ConfigurationError(f"fault {fault!r}: unknown service {service!r}")
        with self._lock:
            self._faults.append(_ActiveFault(name, service, self.clock()))
        return service

    def faults(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(f.name, f.service) for f in self._faults]

    def observe(self, at: float | None = None) -> dict[str, dict[str, float]]:
        """Every metric of every service now, or at an earlier instant `at` (faults started later are absent)."""
        now = self.clock() if at is None else at
        tick = int(now // 15)  # noise changes every 15 s, like a scrape interval
        with self._lock:
            faults = [f for f in self._faults if f.since <= now]
        telemetry = {}
        for name, service in self.topology.services.items():
            values = {}
            for metric, baseline in service.baselines.items():
                values[metric] = baseline * (1 + NOISE * self._noise(name, metric, tick))
            telemetry[name] = values
        for fault in faults:
            self._apply(fault, telemetry, now)
        return {s: {m: round(v, 4) for m, v in values.items()} for s, values in telemetry.items()}

    def recent(self, window_s: float, step_s: float) -> list[tuple[float, dict[str, dict[str, float]]]]:
        """Samples over the last `window_s` seconds, every `step_s`, oldest first, ending now."""
        now = self.clock()
        count = max(1, int(window_s // step_s))
        return [(now - i * step_s, self.observe(now - i * step_s)) for i in range(count, -1, -1)]

    def execute(self, action: str, target: str, params: Mapping[str, object]) -> str:
        """Run a remediation; returns what was done. Raises RemediationError when it cannot run."""
        if action not in ACTIONS:
            raise RemediationError(f"unknown action {action!r}", action=action, target=target)
        if target not in self.topology.services:
            raise RemediationError(f"unknown service {target!r}", action=action, target=target)
        clears = CLEARS.get(action, frozenset())
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if not (f.service == target and f.name in clears)]
            cleared = before - len(self._faults)
            self._operations.append((self.clock(), action, target))
        return f"{action} on {target}" + (f" cleared {cleared} fault(s)" if cleared else "")

    def operations(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self._operations)

    def _apply(self, fault: _ActiveFault, telemetry: dict[str, dict[str, float]], now: float) -> None:
        spec = FAULTS[fault.name]
        limits = self.topology.services[fault.service].limits
        values = telemetry[fault.service]
        for metric, factor in spec.direct.items():
            if metric in limits:
                values[metric] = _worse(values[metric], limits[metric] * factor, self._below(metric))
        minutes = max(0.0, now - fault.since) / 60
        for metric, per_min in spec.growth_per_min.items():
            if metric in values:
                values[metric] = min(99.5, values[metric] + per_min * minutes)
        for dependent in nx.ancestors(self.topology.graph, fault.service):
            dependent_limits = self.topology.services[dependent].limits
            for metric, factor in spec.upstream.items():
                if metric in dependent_limits:
                    worse = dependent_limits[metric] * factor
                    telemetry[dependent][metric] = _worse(telemetry[dependent][metric], worse, self._below(metric))

    def _below(self, metric: str) -> bool:
        return self.topology.metrics[metric].worse == "below"

    def _noise(self, service: str, metric: str, tick: int) -> float:
        digest = hashlib.sha256(f"{self.seed}:{service}:{metric}:{tick}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 * 2 - 1  # uniform in [-1, 1)


def _worse(current: float, candidate: float, lower_is_worse: bool) -> float:
    return min(current, candidate) if lower_is_worse else max(current, candidate)
