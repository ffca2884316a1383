"""The tenant's services as a dependency graph with metric limits: what is healthy, and what is the root cause.

Each metric is declared once under `metrics:` with what a sample of it may be (`MetricSpec`): its type in the
exposition (gauge, counter read as a rate, or histogram read at a quantile), its physical range (`min`, `max`,
`whole`) and the rule for several samples of one service (`duplicates`). The release number deployed on each
service (`deployed_version`) is declared there too, but has no limit: it is the version, not a metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from core.errors import ConfigurationError, Problem
from core.yamlfile import load_located

VERSION_METRIC = "deployed_version"  # the release number of each service: `firstline_deployed_version{service=...}`
MetricType = Literal["gauge", "counter", "histogram"]
DuplicateRule = Literal["worst", "highest", "lowest", "refuse"]


class _MetricSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    unit: str
    worse: Literal["above", "below"] | None = None  # required for every metric but the release number
    help: str = ""
    type: MetricType = "gauge"
    min: float | None = None
    max: float | None = None
    whole: bool = False
    quantile: float | None = Field(None, gt=0, lt=1)
    duplicates: DuplicateRule = "worst"


class _Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    baseline: float
    limit: float
    remedies: list[str] = Field(default_factory=list)  # actions that bring this metric back, best first


class _Replicas(BaseModel):
    """How many instances the service may run: scale_out's `replicas` must stay within these."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: StrictInt = Field(ge=1, le=10_000)
    max: StrictInt = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _ordered(self) -> _Replicas:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class _Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    help: str = ""
    depends_on: list[str] = Field(default_factory=list)
    provides: list[str] = Field(default_factory=list)
    metrics: dict[str, _Limit]
    replicas: _Replicas | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    product: str
    metrics: dict[str, _MetricSpec]
    services: dict[str, _Service]


@dataclass(frozen=True)
class MetricSpec:
    """What a sample of one metric may be; telemetry that is not is dropped and reported (engine/infra/samples.py)."""

    name: str
    unit: str
    worse: str  # "above" or "below"; "" for the release number, which has no limit
    help: str
    type: str = "gauge"  # gauge | counter (exposed as <name>_total, read as a rate per second) | histogram
    min: float | None = None  # the physical range: a value outside it is a broken reading, not a fault
    max: float | None = None
    whole: bool = False  # only whole numbers (a release number)
    quantile: float | None = None  # histogram: the quantile the metric is (0.95 for a p95)
    duplicates: str = "worst"  # several samples for one service: worst | highest | lowest | refuse

    def outside(self, value: float) -> tuple[str, str] | None:
        """Why `value` cannot be a reading of this metric, as (reason, message): not_finite, not_whole or
        out_of_range; None when it can."""
        if not math.isfinite(value):
            return "not_finite", f"{_number(value)} is not a finite number"
        if self.whole and value != int(value):
            return "not_whole", f"{value:g} is not a whole number"
        if self.min is not None and value < self.min:
            return "out_of_range", f"{value:g} is below the physical minimum {self.min:g} of {self.name}"
        if self.max is not None and value > self.max:
            return "out_of_range", f"{value:g} is above the physical maximum {self.max:g} of {self.name}"
        return None


DEFAULT_VERSION = MetricSpec(VERSION_METRIC, "release", "", "release number deployed on the service", min=0,
                             whole=True, duplicates="highest")


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf") if math.isinf(value) else f"{value:g}"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    help: str
    depends_on: tuple[str, ...]
    provides: frozenset[str]
    baselines: Mapping[str, float]
    limits: Mapping[str, float]
    remedies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # metric -> actions, best first
    replicas: tuple[int, int] | None = None  # (min, max) instances; None: not declared, so not scaled to a number


class Topology:
    """Services, their dependencies (an edge points from a service to what it depends on) and limits."""

    def __init__(self, product: str, metrics: Mapping[str, MetricSpec], services: Mapping[str, ServiceSpec],
                 version: MetricSpec = DEFAULT_VERSION):
        self.product = product
        self.metrics = dict(metrics)  # the metrics with limits; the release number is `version`
        self.version = version
        self.services = dict(services)
        self.graph = nx.DiGraph()
        for service in services.values():
            self.graph.add_node(service.name)
            for dependency in service.depends_on:
                self.graph.add_edge(service.name, dependency)

    def spec(self, metric: str) -> MetricSpec | None:
        """The declaration of a metric, or of the release number; None for a name not declared."""
        return self.version if metric == VERSION_METRIC else self.metrics.get(metric)

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
    found: list[Problem] = [p for name, m in parsed.metrics.items() for p in _metric_problems(doc, name, m)]
    for name, service in parsed.services.items():
        for dependency in service.depends_on:
            if dependency not in parsed.services:
                found.append(doc.problem(["services", name, "depends_on"], f"unknown service {dependency!r}"))
        for metric in service.metrics:
            if metric == VERSION_METRIC:
                found.append(doc.problem(["services", name, "metrics", metric], "the release number has no limit: "
                                         f"it is read from firstline_{VERSION_METRIC} for every service"))
            elif metric not in parsed.metrics:
                found.append(doc.problem(["services", name, "metrics", metric], "metric not declared under `metrics`"))
            else:
                found += _limit_problems(doc, name, metric, service.metrics[metric], parsed.metrics[metric])
            found += _remedy_problems(doc, name, service, metric, actions)
    if found:
        raise ConfigurationError("infrastructure file problems:\n" + "\n".join(f"  {p}" for p in found))
    specs = {name: MetricSpec(name, m.unit, m.worse or "", m.help, m.type, m.min, m.max, m.whole, m.quantile,
                              m.duplicates) for name, m in parsed.metrics.items()}
    topology = Topology(
        parsed.product,
        {name: spec for name, spec in specs.items() if name != VERSION_METRIC},
        {
            name: ServiceSpec(
                name=name,
                help=s.help,
                depends_on=tuple(s.depends_on),
                provides=frozenset(s.provides),
                baselines={m: v.baseline for m, v in s.metrics.items()},
                limits={m: v.limit for m, v in s.metrics.items()},
                remedies={m: tuple(v.remedies) for m, v in s.metrics.items() if v.remedies},
                replicas=(s.replicas.min, s.replicas.max) if s.replicas else None,
            )
            for name, s in parsed.services.items()
        },
        specs.get(VERSION_METRIC, DEFAULT_VERSION),
    )
    if not nx.is_directed_acyclic_graph(topology.graph):
        raise ConfigurationError(f"infrastructure file problems:\n  {_cycle_problem(doc, topology)}")
    return topology


def _cycle_problem(doc, topology: Topology) -> Problem:
    """The first dependency cycle, as `a -> b -> a`, at the `depends_on` of its first service in the file (a cycle
    has no root cause: the walk in `root_causes` would have no deepest service to stop at)."""
    edges = nx.find_cycle(topology.graph)
    chain = [edge[0] for edge in edges] + [edges[0][0]]
    order = list(topology.services)
    first = min(chain[:-1], key=order.index)
    start = chain.index(first)
    chain = chain[start:-1] + chain[:start] + [first]
    return doc.problem(["services", first, "depends_on"],
                       f"services depend on each other in a cycle: {' -> '.join(chain)}")


def _metric_problems(doc, name: str, metric: _MetricSpec) -> list[Problem]:
    """What a metric's declaration says that cannot hold together."""
    at = ["metrics", name]
    found = []
    if name == VERSION_METRIC:
        if metric.type != "gauge":
            found.append(doc.problem([*at, "type"], "the release number is a gauge"))
    elif metric.worse is None:
        found.append(doc.problem(at, "`worse` is required: above (a higher value is worse) or below"))
    if metric.min is not None and metric.max is not None and metric.min >= metric.max:
        found.append(doc.problem([*at, "max"], f"max {metric.max:g} is not above min {metric.min:g}"))
    if (metric.type == "histogram") != (metric.quantile is not None):
        found.append(doc.problem([*at, "quantile"], "a histogram is read at one quantile: give `quantile` (0.95 for "
                                 "a p95) with `type: histogram`, and only then"))
    if metric.duplicates == "worst" and metric.worse is None:
        found.append(doc.problem([*at, "duplicates"], "`worst` needs `worse`; say highest, lowest or refuse"))
    return found


def _limit_problems(doc, service: str, name: str, limit: _Limit, metric: _MetricSpec) -> list[Problem]:
    """A baseline or limit outside the metric's physical range could never be read."""
    spec = MetricSpec(name, metric.unit, metric.worse or "", metric.help, metric.type, metric.min, metric.max,
                      metric.whole)
    found = []
    for key in ("baseline", "limit"):
        why = spec.outside(getattr(limit, key))
        if why is not None:
            found.append(doc.problem(["services", service, "metrics", name, key], f"{why[1]} (see metrics.{name})"))
    return found


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
