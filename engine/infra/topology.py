"""The tenant's services as a dependency graph with metric limits: what is healthy, and what is the root cause."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigurationError, Problem
from core.yamlfile import load_located


class _MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    unit: str
    worse: Literal["above", "below"]
    help: str = ""


class _Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    baseline: float
    limit: float
    remedies: list[str] = Field(default_factory=list)  # actions that bring this metric back, best first


class _Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    help: str = ""
    depends_on: list[str] = Field(default_factory=list)
    provides: list[str] = Field(default_factory=list)
    metrics: dict[str, _Limit]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    product: str
    metrics: dict[str, _MetricSpec]
    services: dict[str, _Service]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str
    worse: str  # "above" or "below"
    help: str


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    help: str
    depends_on: tuple[str, ...]
    provides: frozenset[str]
    baselines: Mapping[str, float]
    limits: Mapping[str, float]
    remedies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # metric -> actions, best first


class Topology:
    """Services, their dependencies (an edge points from a service to what it depends on) and limits."""

    def __init__(self, product: str, metrics: Mapping[str, MetricSpec], services: Mapping[str, ServiceSpec]):
        self.product = product
        self.metrics = dict(metrics)
        self.services = dict(services)
        self.graph = nx.DiGraph()
        for service in services.values():
            self.graph.add_node(service.name)
            for dependency in service.depends_on:
                self.graph.add_edge(service.name, dependency)

    def is_unhealthy(self, service: str, metric: str, value: float) -> bool:
        limit = self.services[service].limits[metric]
        return value < limit if self.metrics[metric].worse == "below" else value > limit

    def unhealthy_services(self, telemetry: Mapping[str, Mapping[str, float]]) -> set[str]:
        return {
            service
            for service, values in telemetry.items()
            if any(self.is_unhealthy(service, metric, value) for metric, value in values.items())
        }

    def root_causes(self, symptom: str, unhealthy: set[str]) -> list[str]:
        """The deepest unhealthy services `symptom` depends on (itself if none of its dependencies is unhealthy)."""
        reachable = ({symptom} | nx.descendants(self.graph, symptom)) & unhealthy
        return sorted(s for s in reachable if not (nx.descendants(self.graph, s) & unhealthy))

    def services_providing(self, capability: str | None) -> frozenset[str]:
        if capability is None:
            return frozenset(self.services)
        return frozenset(s.name for s in self.services.values() if capability in s.provides)

    def signals(self) -> dict[str, frozenset[str]]:
        return {name: frozenset(service.limits) for name, service in self.services.items()}


def load_topology(path: Path, actions: Mapping[str, str | None] | None = None) -> Topology:
    """Read and check the infrastructure file; every problem is reported with its line.

    `actions` (action name -> capability it needs) lets metric `remedies` be checked too.
    """
    documents, problems = load_located(path)
    if problems:
        raise ConfigurationError(f"infrastructure file: {problems[0]}")
    if len(documents) != 1:
        raise ConfigurationError(f"{path}: expected one YAML document")
    doc = documents[0]
    try:
        parsed = _File.model_validate(doc.data)
    except ValidationError as error:
        invalid = [doc.problem(list(e["loc"]), e["msg"]) for e in error.errors()]
        raise ConfigurationError("infrastructure file problems:\n" + "\n".join(f"  {p}" for p in invalid)) from None
    found: list[Problem] = []
    for name, service in parsed.services.items():
        for dependency in service.depends_on:
            if dependency not in parsed.services:
                found.append(doc.problem(["services", name, "depends_on"], f"unknown service {dependency!r}"))
        for metric in service.metrics:
            if metric not in parsed.metrics:
                found.append(doc.problem(["services", name, "metrics", metric], "metric not declared under `metrics`"))
            found += _remedy_problems(doc, name, service, metric, actions)
    if found:
        raise ConfigurationError("infrastructure file problems:\n" + "\n".join(f"  {p}" for p in found))
    topology = Topology(
        parsed.product,
        {name: MetricSpec(name, m.unit, m.worse, m.help) for name, m in parsed.metrics.items()},
        {
            name: ServiceSpec(
                name=name,
                help=s.help,
                depends_on=tuple(s.depends_on),
                provides=frozenset(s.provides),
                baselines={m: v.baseline for m, v in s.metrics.items()},
                limits={m: v.limit for m, v in s.metrics.items()},
                remedies={m: tuple(v.remedies) for m, v in s.metrics.items() if v.remedies},
            )
            for name, s in parsed.services.items()
        },
    )
    if not nx.is_directed_acyclic_graph(topology.graph):
        cycle = nx.find_cycle(topology.graph)
        raise ConfigurationError(f"{path}: services depend on each other in a cycle: {cycle}")
    return topology


def _remedy_problems(doc, name: str, service: _Service, metric: str,
                     actions: Mapping[str, str | None] | None) -> list[Problem]:
    if actions is None:
        return []
    found = []
    for i, action in enumerate(service.metrics[metric].remedies):
        at = ["services", name, "metrics", metric, "remedies", i]
        if action not in actions:
            found.append(doc.problem(at, f"unknown action {action!r}; known: {', '.join(sorted(actions))}"))
        elif actions[action] is not None and actions[action] not in service.provides:
            found.append(doc.problem(at, f"{action} needs a service that provides {actions[action]!r}"))
    return found
