"""Telemetry samples once read: one checked snapshot shape, and the checks every source goes through.

Every source yields a `Snapshot`: each service's metrics (the names of the infrastructure file), the release
number deployed on it, and the problems found on the way. Every path goes through the same checks against the
metric declarations (`MetricSpec`): a sample that is not finite, outside its metric's physical range, not whole
where it must be, or of another type than declared (engine/infra/prometheus_text.py, where types are seen) is
dropped and reported as a `TelemetryProblem`, never read. Several samples for one service's metric are resolved
by the metric's `duplicates` rule (`pick`), never by their order.

A problem's `key` is what makes it "the same problem" from one read to the next (the monitor reports a key when it
appears and when it is over; the store keeps one row per key while it lasts), so it never holds a sample's value,
a timestamp or a count: an exporter whose broken lines change their numbers on every scrape keeps the same keys,
as many as it has broken series, never a new set per scrape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from engine.infra.topology import VERSION_METRIC, MetricSpec, Topology

__all__ = ["MAX_SERIES_CHARS", "MAX_SHAPE_CHARS", "ProblemReason", "Snapshot", "TelemetryProblem", "as_float",
           "checked", "pick", "refusal", "shape"]

MAX_SERIES_CHARS = 200  # a broken line's name and label names in its key are cut here
MAX_SHAPE_CHARS = 60  # a line with no name is known by this much of its shape


class ProblemReason(StrEnum):
    """Why a sample, or a line, was dropped."""

    MALFORMED = "malformed"  # not Prometheus text format
    NOT_FINITE = "not_finite"  # NaN or an infinity
    OUT_OF_RANGE = "out_of_range"  # outside the metric's declared min..max
    NOT_WHOLE = "not_whole"  # a fraction where the declaration says whole numbers (a release number)
    WRONG_TYPE = "wrong_type"  # a counter, histogram or summary where another type is declared
    BAD_HISTOGRAM = "bad_histogram"  # buckets without +Inf, with a bad bound, or falling
    DUPLICATE = "duplicate"  # the same series more than once with different values
    AMBIGUOUS = "ambiguous"  # several different samples for one service and `duplicates: refuse`
    NO_SERVICE = "no_service"  # a sample of a declared metric without a service label
    TOO_LARGE = "too_large"  # the scrape body was cut at MAX_SCRAPE_BYTES
    CUT_SHORT = "cut_short"  # the body ends inside a line (the connection closed early): that line is not read
    TOO_MANY = "too_many"  # more problems than MAX_PROBLEMS in one read


# Problems of the whole body: at most one of each per read, and their details carry counts and sizes.
_ONE_PER_READ = frozenset({ProblemReason.TOO_LARGE, ProblemReason.CUT_SHORT, ProblemReason.TOO_MANY})


@dataclass(frozen=True)
class TelemetryProblem:
    """A sample or line that was dropped, and why. `service` and `metric` are empty when the line names none of
    ours; `value` is None when there was no number to read; `series` is what identifies such a line without its
    values (engine/infra/prometheus_text.py: its name and label names, or the shape of a line with no name)."""

    service: str
    metric: str
    value: float | None
    reason: ProblemReason
    detail: str
    line: int | None = None  # 1-based line of the scrape body
    series: str = ""

    @property
    def key(self) -> str:
        """What identifies this problem from one read to the next, whatever the numbers the exporter writes; the
        value, the line number and the detail (what a person reads, kept as last seen) may change under it:

        - a problem of the whole body (`too_large`, `cut_short`, `too_many`): its reason alone; there is one per
          read at most, and the sizes and counts in its detail change from one read to the next;
        - a problem of one of our metrics: reason, service and metric (`out_of_range:web:cpu_pct`): a service
          the infrastructure file lists (or none) and a metric it declares, so as many keys as those;
        - a line that names none of our metrics (`malformed`): reason and `series`, the line without its values
          (`malformed:node_load1{host}`), so one key per broken series however its values change; a problem made
          elsewhere without one is known by the shape of its detail (`shape`: every number written 0)."""
        if self.reason in _ONE_PER_READ:
            return str(self.reason)
        if self.metric:
            return f"{self.reason}:{self.service}:{self.metric}"
        return f"{self.reason}:{self.series[:MAX_SERIES_CHARS] or shape(self.detail)}"

    @property
    def message(self) -> str:
        return self.detail + (f" (line {self.line})" if self.line is not None else "")

    def describe(self) -> str:
        return f"{' '.join(p for p in (self.service, self.metric) if p) or 'scrape'}: {self.message}"


@dataclass(frozen=True)
class Snapshot:
    """Every metric of every service at one moment, the version deployed on each service, and the samples that
    were dropped on the way (`problems`)."""

    at: float
    metrics: Mapping[str, Mapping[str, float]]
    versions: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[TelemetryProblem, ...] = ()


# -- the checks every path goes through ---------------------------------------------------------------


def refusal(spec: MetricSpec, value: float) -> tuple[ProblemReason, str] | None:
    """Why `value` cannot be a reading of the metric `spec` declares, or None when it can."""
    found = spec.outside(value)
    return None if found is None else (ProblemReason(found[0]), found[1])


def checked(snapshot: Snapshot, topology: Topology) -> Snapshot:
    """`snapshot` with every value the declarations refuse dropped and reported; values of services or metrics
    the infrastructure file does not list are left out. Checking a checked snapshot changes nothing."""
    problems = list(snapshot.problems)
    metrics: dict[str, dict[str, float]] = {}
    for service, values in snapshot.metrics.items():
        limits = topology.services[service].limits if service in topology.services else {}
        for metric, value in values.items():
            if metric not in limits:
                continue
            number = as_float(value)
            refused = refusal(topology.metrics[metric], number)
            if refused is None:
                metrics.setdefault(service, {})[metric] = number
            else:
                problems.append(TelemetryProblem(service, metric, number, refused[0], refused[1]))
    versions: dict[str, int] = {}
    for service, release in snapshot.versions.items():
        if service not in topology.services:
            continue
        number = as_float(release)
        refused = refusal(topology.version, number)
        if refused is None:
            versions[service] = int(number)
        else:
            problems.append(TelemetryProblem(service, VERSION_METRIC, number, refused[0], refused[1]))
    return Snapshot(snapshot.at, metrics, versions, tuple(problems))


def as_float(value: object) -> float:
    """A sample as a float: NaN for what is not a number, an infinity for an integer too large for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def pick(spec: MetricSpec, values: Iterable[float]) -> float | None:
    """One value from several samples of one service's metric, by the metric's `duplicates` rule: the worst (the
    furthest the `worse` way), the highest, the lowest, or None when they differ and the rule is `refuse`."""
    distinct = sorted(set(values))
    if not distinct:
        return None
    rule = spec.duplicates
    if rule == "worst":
        rule = "lowest" if spec.worse == "below" else "highest"
    if rule == "highest":
        return distinct[-1]
    if rule == "lowest":
        return distinct[0]
    return distinct[0] if len(distinct) == 1 else None


# A number as it may be written in a line: signs, digits, fraction, exponent; or a NaN or an infinity that is not
# part of a word. Possessive quantifiers and atomic groups: no input makes it backtrack.
_NUMBER = re.compile(r"[-+]*+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?+[0-9]++)?+"
                     r"|(?<![A-Za-z])[-+]*+(?>[Ii][Nn][Ff](?>[Ii][Nn][Ii][Tt][Yy])?+|[Nn][Aa][Nn])(?![A-Za-z])")


def shape(text: str, limit: int = MAX_SHAPE_CHARS) -> str:
    """`text` with every number written 0, cut at `limit` characters once that is done (so a longer number does
    not move the cut): what stays of a line from one read to the next when only its numbers change."""
    return _NUMBER.sub("0", text[:MAX_SERIES_CHARS * 8])[:limit]
