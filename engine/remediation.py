"""Running a remedy safely: dry-run, a cooldown per (action, target) from stored state, and verification."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import RemediationError
from engine.catalogue import ACTIONS
from engine.store import EventStore
from engine.topology import Topology


class Infrastructure(Protocol):
    """A remediation target: something that reports metrics and runs actions."""

    def observe(self) -> dict[str, dict[str, float]]: ...

    def recent(self, window_s: float, step_s: float) -> list[tuple[float, dict[str, dict[str, float]]]]:
        """Samples over the last `window_s` seconds, oldest first (a metrics store's range query)."""
        ...

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str: ...


@dataclass(frozen=True)
class RemedyRequest:
    action: str
    target: str
    explain: str
    params: Mapping[str, Any] = field(default_factory=dict)
    verify: tuple[str, str] | None = None  # (service, metric) that must be within its limit afterwards
    rule: str | None = None


@dataclass(frozen=True)
class Outcome:
    request: RemedyRequest
    status: str  # succeeded | failed | dry_run | skipped
    detail: str
    started_at: float
    finished_at: float


class Remediator:
    """Runs remedies on the infrastructure and checks that each one worked."""

    def __init__(
        self,
        infrastructure: Infrastructure,
        topology: Topology,
        store: EventStore,
        cooldown_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.infrastructure = infrastructure
        self.topology = topology
        self.store = store
        self.cooldown_s = cooldown_s
        self.clock = clock

    def run(self, request: RemedyRequest, dry_run: bool) -> Outcome:
        started = self.clock()
        spec = ACTIONS.get(request.action)
        if spec is None:
            return self._done(request, "failed", f"unknown action {request.action!r}", started)
        if dry_run:
            return self._done(request, "dry_run", f"would run {request.action} on {request.target}", started)
        if not spec.per_user:
            last = self.store.last_action_at(request.action, request.target, ("succeeded",))
            if last is not None and started - last < self.cooldown_s:
                wait = self.cooldown_s - (started - last)
                return self._done(request, "skipped", f"cooling down: ran {started - last:.0f} s ago, "
                                  f"may run again in {wait:.0f} s", started)
        try:
            detail = self.infrastructure.execute(request.action, request.target, dict(request.params))
        except RemediationError as error:
            return self._done(request, "failed", str(error), started)
        except Exception as error:  # noqa: BLE001 - an adapter failure is a failed action, never a crash
            return self._done(request, "failed", f"{type(error).__name__}: {error}", started)
        problem = self._verification_problem(request)
        if problem:
            return self._done(request, "failed", f"{detail}; verification failed: {problem}", started)
        return self._done(request, "succeeded", f"{detail}; verified", started)

    def _verification_problem(self, request: RemedyRequest) -> str | None:
        telemetry = self.infrastructure.observe()
        everything = [(request.target, metric) for metric in telemetry.get(request.target, {})]
        checks = [request.verify] if request.verify else everything
        for service, metric in checks:
            value = telemetry.get(service, {}).get(metric)
            if value is not None and self.topology.is_unhealthy(service, metric, value):
                limit = self.topology.services[service].limits[metric]
                return f"{service} {metric} is {value:g} (limit {limit:g})"
        return None

    def _done(self, request: RemedyRequest, status: str, detail: str, started: float) -> Outcome:
        return Outcome(request, status, detail, started, self.clock())
