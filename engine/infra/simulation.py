"""The built-in simulated infrastructure: seeded and deterministic, with faults that remediation really clears.

Metrics start at the topology's baselines with a little seeded noise; an injected fault pushes metrics of its
service past their limits and slows or breaks the services that depend on it; the matching action clears it.
A fault may ramp up over a number of seconds instead of striking at once (a leak, a rolling deploy, a surge),
which is what gives prediction something to predict. Each service also has a deployed version (a release
number): a bad deploy raises it, a rollback restores it, and scale_out adds an instance.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from core.errors import ConfigurationError, RemediationError
from engine.infra.topology import Topology


@dataclass(frozen=True)
class FaultSpec:
    """A fault: the metric that picks its default service, what it does there, and what it does upstream."""

    key_metric: str
    direct: Mapping[str, float]  # metric -> value at full strength, as a multiple of its limit
    upstream: Mapping[str, float] = field(default_factory=dict)  # on services depending on it
    ramp_s: float = 0.0  # seconds from onset to full strength when `inject` is not told otherwise


FAULTS: dict[str, FaultSpec] = {
    "slow_queries": FaultSpec("slow_queries", {"slow_queries": 4.0, "latency_p95_ms": 3.0}, {"latency_p95_ms": 1.8}),
    "cache_degradation": FaultSpec("cache_hit_ratio", {"cache_hit_ratio": 0.55}, {"latency_p95_ms": 1.4}),
    "memory_leak": FaultSpec("memory_pct", {"memory_pct": 1.1}, {}, ramp_s=2400.0),
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
# Actions on one user's state: the simulation accepts them and changes no service.
PER_USER = frozenset({"clear_user_cache", "resync_account", "revoke_sessions", "unlock_account", "resend_email",
                      "reconnect_integration", "reset_user_settings"})
SIMULATED = frozenset(CLEARS) | PER_USER  # every action of engine.actions.catalogue (a test keeps them equal)

# Actions whose effect can be taken back (a rollback after failed verification): everything else either cannot
# be undone (a restart) or has nothing to undo.
REVERSIBLE = frozenset({"scale_out", "rollback_deploy"})
NOISE = 0.03


@dataclass
class _ActiveFault:
    name: str
    service: str
    since: float
    ramp_s: float = 0.0

    def strength(self, now: float) -> float:
        if self.ramp_s <= 0:
            return 1.0
        return min(1.0, max(0.0, now - self.since) / self.ramp_s)


@dataclass
class _Change:
    """What one action changed on its target, kept so that it can be undone."""

    cleared: list[_ActiveFault]
    version: int
    replicas: int


class SimulatedInfrastructure:
    """An in-process stand-in for the tenant's production, for demos, tests and simulated scenarios."""

    def __init__(self, topology: Topology, seed: int = 7, clock: Callable[[], float] = time.time) -> None:
        self.topology = topology
        self.seed = seed
        self.clock = clock
        self._faults: list[_ActiveFault] = []
        self._operations: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._versions = {name: 100 + self._release(name) for name in topology.services}
        self._replicas = dict.fromkeys(topology.services, 2)
        self._changes: dict[tuple[str, str], _Change] = {}

    def inject(self, fault: str, ramp_s: float | None = None) -> str:
        """Start a fault, written `name` or `name@service`; returns the service it hit.

        `ramp_s` is how long it takes to reach full strength (default: the fault's own; 0 strikes at once).
        """
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
        ramp = spec.ramp_s if ramp_s is None else ramp_s
        with self._lock:
            self._faults.append(_ActiveFault(name, service, self.clock(), max(0.0, ramp)))
            if name == "bad_deploy":
                self._versions[service] += 1  # the deploy that brought the fault in
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
        # A fault pushes a value past its limit, never past what the metric can physically be (a leak fills memory
        # to 100%, not 101.2%): the checks would drop such a reading as broken, and the fault would go unseen.
        return {s: {m: round(self._physical(m, v), 4) for m, v in values.items()} for s, values in telemetry.items()}

    def _physical(self, metric: str, value: float) -> float:
        spec = self.topology.metrics.get(metric)
        if spec is None:
            return value
        low = -math.inf if spec.min is None else spec.min
        high = math.inf if spec.max is None else spec.max
        return min(max(value, low), high)

    def recent(self, window_s: float, step_s: float) -> list[tuple[float, dict[str, dict[str, float]]]]:
        """Samples over the last `window_s` seconds, every `step_s`, oldest first, ending now."""
        now = self.clock()
        count = max(1, int(window_s // step_s))
        return [(now - i * step_s, self.observe(now - i * step_s)) for i in range(count, -1, -1)]

    def execute(self, action: str, target: str, params: Mapping[str, object]) -> str:
        """Run a remediation; returns what was done. Raises RemediationError when it cannot run."""
        if action not in SIMULATED:
            raise RemediationError(f"unknown action {action!r}", action=action, target=target)
        if target not in self.topology.services:
            raise RemediationError(f"unknown service {target!r}", action=action, target=target)
        clears = CLEARS.get(action, frozenset())
        with self._lock:
            change = _Change([f for f in self._faults if f.service == target and f.name in clears],
                             self._versions[target], self._replicas[target])
            if action == "rollback_deploy":
                if not any(f.name == "bad_deploy" for f in change.cleared):
                    raise RemediationError(f"{target} has no newer version to roll back from", action=action,
                                           target=target)
                self._versions[target] -= 1
            if action == "scale_out":
                self._replicas[target] += 1
            self._faults = [f for f in self._faults if f not in change.cleared]
            self._changes[(action, target)] = change
            self._operations.append((self.clock(), action, target))
        cleared = len(change.cleared)
        return f"{action} on {target}" + (f" cleared {cleared} fault(s)" if cleared else "")

    def undo(self, action: str, target: str) -> str | None:
        """Take back the last `action` on `target`; None when it cannot be undone or there is nothing to undo."""
        if action not in REVERSIBLE:
            return None
        with self._lock:
            change = self._changes.pop((action, target), None)
            if change is None:
                return None
            self._faults += change.cleared
            self._versions[target] = change.version
            self._replicas[target] = change.replicas
            self._operations.append((self.clock(), f"undo {action}", target))
        return f"undid {action} on {target}"

    def versions(self) -> dict[str, int]:
        """The release number deployed on each service."""
        with self._lock:
            return dict(self._versions)

    def replicas(self) -> dict[str, int]:
        with self._lock:
            return dict(self._replicas)

    def operations(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self._operations)

    def _apply(self, fault: _ActiveFault, telemetry: dict[str, dict[str, float]], now: float) -> None:
        spec = FAULTS[fault.name]
        strength = fault.strength(now)
        self._push(telemetry[fault.service], self.topology.services[fault.service].limits, spec.direct, strength)
        for dependent in nx.ancestors(self.topology.graph, fault.service):
            self._push(telemetry[dependent], self.topology.services[dependent].limits, spec.upstream, strength)

    def _push(self, values: dict[str, float], limits: Mapping[str, float], factors: Mapping[str, float],
              strength: float) -> None:
        """Move each metric from where it is towards its faulty value by `strength` (0..1)."""
        for metric, factor in factors.items():
            if metric in limits:
                current = values[metric]
                faulty = current + strength * (limits[metric] * factor - current)
                values[metric] = _worse(current, faulty, self._below(metric))

    def _below(self, metric: str) -> bool:
        return self.topology.metrics[metric].worse == "below"

    def _release(self, service: str) -> int:
        return int.from_bytes(hashlib.sha256(f"{self.seed}:{service}:release".encode()).digest()[:2], "big") % 900

    def _noise(self, service: str, metric: str, tick: int) -> float:
        digest = hashlib.sha256(f"{self.seed}:{service}:{metric}:{tick}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 * 2 - 1  # uniform in [-1, 1)


def _worse(current: float, candidate: float, lower_is_worse: bool) -> float:
    return min(current, candidate) if lower_is_worse else max(current, candidate)
