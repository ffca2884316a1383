"""Telemetry in: one snapshot shape, from the simulated infrastructure or a Prometheus text-format scrape.

Every source yields a `Snapshot`: each service's metrics (the names of the infrastructure file) and the
release number deployed on it. The simulated infrastructure also speaks Prometheus text format (`exposition`),
so a real Prometheus can scrape it, and the scrape source reads that format back with prometheus-client's
parser: `firstline_<metric>{service="..."}` gauges, and `firstline_deployed_version{service="..."}`.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.errors import TelemetryError
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import Topology

PREFIX = "firstline_"
VERSION_METRIC = "deployed_version"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger("firstline.telemetry")


@dataclass(frozen=True)
class Snapshot:
    """Every metric of every service at one moment, and the version deployed on each service."""

    at: float
    metrics: Mapping[str, Mapping[str, float]]
    versions: Mapping[str, int] = field(default_factory=dict)


class TelemetrySource(Protocol):
    """Anything that can be read for a snapshot now. Raises TelemetryError when it cannot."""

    name: str

    def read(self) -> Snapshot: ...


class SimulationSource:
    """The built-in simulated infrastructure as a telemetry source."""

    name = "simulation"

    def __init__(self, infrastructure: SimulatedInfrastructure) -> None:
        self.infrastructure = infrastructure

    def read(self) -> Snapshot:
        return Snapshot(self.infrastructure.clock(), self.infrastructure.observe(), self.infrastructure.versions())


class ScrapeSource:
    """A Prometheus text-format `/metrics` URL, read over HTTP and parsed with prometheus-client."""

    name = "scrape"

    def __init__(self, url: str, topology: Topology, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.topology = topology
        self.timeout_s = timeout_s
        self.clock = clock

    def read(self) -> Snapshot:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as response:
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as error:
            raise TelemetryError(f"cannot scrape {self.url}: {error}", source=self.url) from None
        return parse_exposition(text, self.topology, self.clock(), source=self.url)


def parse_exposition(text: str, topology: Topology, at: float, source: str = "scrape") -> Snapshot:
    """Read Prometheus text format into a snapshot; series that are not ours are ignored, a broken text raises."""
    metrics: dict[str, dict[str, float]] = {}
    versions: dict[str, int] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as error:
        raise TelemetryError(f"{source}: not Prometheus text format: {error}", source=source) from None
    for family in families:
        if not family.name.startswith(PREFIX):
            continue
        metric = family.name[len(PREFIX):]
        for sample in family.samples:
            service = sample.labels.get("service")
            if service not in topology.services or sample.value != sample.value:  # unknown service, or NaN
                continue
            if metric == VERSION_METRIC:
                versions[service] = int(sample.value)
            elif metric in topology.services[service].limits:
                metrics.setdefault(service, {})[metric] = float(sample.value)
    if not metrics:
        raise TelemetryError(f"{source}: no {PREFIX}<metric>{{service=...}} series for any known service",
                             source=source)
    return Snapshot(at, metrics, versions)


class _SnapshotCollector:
    """Hands one snapshot to prometheus-client as gauge families."""

    def __init__(self, snapshot: Snapshot, topology: Topology) -> None:
        self.snapshot = snapshot
        self.topology = topology

    def collect(self):
        by_metric: dict[str, list[tuple[str, float]]] = {}
        for service, values in self.snapshot.metrics.items():
            for metric, value in values.items():
                by_metric.setdefault(metric, []).append((service, value))
        for metric, series in sorted(by_metric.items()):
            spec = self.topology.metrics.get(metric)
            family = GaugeMetricFamily(PREFIX + metric, spec.help if spec else metric, labels=["service"])
            for service, value in sorted(series):
                family.add_metric([service], value)
            yield family
        versions = GaugeMetricFamily(PREFIX + VERSION_METRIC, "release number deployed on the service",
                                     labels=["service"])
        for service, release in sorted(self.snapshot.versions.items()):
            versions.add_metric([service], release)
        yield versions


def exposition(snapshot: Snapshot, topology: Topology) -> bytes:
    """The snapshot in Prometheus text format, generated by prometheus-client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot, topology))
    return generate_latest(registry)
