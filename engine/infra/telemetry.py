"""Telemetry in: one checked snapshot shape, from the simulated infrastructure or a Prometheus text-format scrape.

Every source yields a `Snapshot`: each service's metrics (the names of the infrastructure file), the release
number deployed on it, and the problems found on the way. Every path goes through the same checks against the
metric declarations (`MetricSpec`): a sample that is not finite, outside its metric's physical range, not whole
where it must be, or of another type than declared is dropped and reported as a `TelemetryProblem`, never read.

The simulated infrastructure also speaks Prometheus text format (`exposition`), so a real Prometheus can scrape
it. The scrape source reads that format back line by line, each sample with prometheus-client's parser, so one
malformed line (ours or another exporter's) is one problem and every other series is still read:

- `firstline_<metric>{service="..."}` gauges, and `firstline_deployed_version{service="..."}`;
- a metric declared `type: counter` from `firstline_<metric>_total`, as a rate per second over the last
  `RATE_WINDOW_S` of scrapes (a counter that falls was reset, and counts again from zero, as Prometheus' rate());
- a metric declared `type: histogram` at its `quantile`, from the rates of its `_bucket` series (Prometheus'
  histogram_quantile), or from a summary's sample with that quantile;
- several samples for one service's metric (instances, or one series repeated) are resolved by the metric's
  `duplicates` rule, never by their order; a UTF-8 byte-order mark is stripped.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.errors import TelemetryError
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import VERSION_METRIC, MetricSpec, Topology

__all__ = ["CONTENT_TYPE", "MAX_PROBLEMS", "MAX_SCRAPE_BYTES", "PREFIX", "VERSION_METRIC", "CounterRates",
           "ProblemReason", "ScrapeSource", "SimulationSource", "Snapshot", "TelemetryProblem", "TelemetrySource",
           "checked", "exposition", "histogram_quantile", "parse_exposition", "pick", "read_exposition", "refusal"]

PREFIX = "firstline_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_SCRAPE_BYTES = 8 * 1024 * 1024  # a body past this is cut at its last whole line, and that is reported
MAX_LINE_CHARS = 8192  # longer lines are refused unparsed: the parser's work grows faster than a line's length
MAX_PROBLEMS = 50  # reported one by one per read; the rest are counted in one more problem
RATE_WINDOW_S = 300.0  # counters and histograms are read as rates over this much recent history (rate(x[5m]))
MIN_RATE_SPAN_S = 5.0  # a rate needs two readings at least this far apart
BOM = "\ufeff"
log = logging.getLogger("firstline.telemetry")


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
    TOO_MANY = "too_many"  # more problems than MAX_PROBLEMS in one read


@dataclass(frozen=True)
class TelemetryProblem:
    """A sample or line that was dropped, and why. `service` and `metric` are empty when the line names none of
    ours; `value` is None when there was no number to read."""

    service: str
    metric: str
    value: float | None
    reason: ProblemReason
    detail: str
    line: int | None = None  # 1-based line of the scrape body

    @property
    def key(self) -> str:
        """What identifies this problem from one read to the next (the value and the line number may change)."""
        if self.metric:
            return f"{self.reason}:{self.service}:{self.metric}"
        return f"{self.reason}:{self.detail}"

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


class TelemetrySource(Protocol):
    """Anything that can be read for a checked snapshot now. Raises TelemetryError when it cannot."""

    name: str

    def read(self) -> Snapshot: ...


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
            number = _number(value)
            refused = refusal(topology.metrics[metric], number)
            if refused is None:
                metrics.setdefault(service, {})[metric] = number
            else:
                problems.append(TelemetryProblem(service, metric, number, refused[0], refused[1]))
    versions: dict[str, int] = {}
    for service, release in snapshot.versions.items():
        if service not in topology.services:
            continue
        number = _number(release)
        refused = refusal(topology.version, number)
        if refused is None:
            versions[service] = int(number)
        else:
            problems.append(TelemetryProblem(service, VERSION_METRIC, number, refused[0], refused[1]))
    return Snapshot(snapshot.at, metrics, versions, tuple(problems))


def _number(value: object) -> float:
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


# -- sources ------------------------------------------------------------------------------------------


class SimulationSource:
    """The built-in simulated infrastructure as a telemetry source."""

    name = "simulation"

    def __init__(self, infrastructure: SimulatedInfrastructure) -> None:
        self.infrastructure = infrastructure

    def read(self) -> Snapshot:
        infrastructure = self.infrastructure
        return checked(Snapshot(infrastructure.clock(), infrastructure.observe(), infrastructure.versions()),
                       infrastructure.topology)


class ScrapeSource:
    """A Prometheus text-format `/metrics` URL, read over HTTP and parsed line by line."""

    name = "scrape"

    def __init__(self, url: str, topology: Topology, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time, max_bytes: int = MAX_SCRAPE_BYTES) -> None:
        self.url = url
        self.topology = topology
        self.timeout_s = timeout_s
        self.clock = clock
        self.max_bytes = max_bytes
        self.rates = CounterRates()  # the counters' recent readings, for their rates

    def read(self) -> Snapshot:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as response:
                body = response.read(self.max_bytes + 1)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise TelemetryError(f"cannot scrape {self.url}: {error}", source=self.url) from None
        return parse_exposition(body, self.topology, self.clock(), self.url, self.rates, self.max_bytes)


class CounterRates:
    """Per-second rates of counters from their readings over the last `window_s`, as Prometheus' rate(): the
    increases between consecutive readings are summed, and a reading below the one before is a counter reset, so
    it counts as an increase from zero. Safe to share between threads (the monitor, /metrics and the chat all
    read the same source)."""

    def __init__(self, window_s: float = RATE_WINDOW_S, min_span_s: float = MIN_RATE_SPAN_S) -> None:
        self.window_s = window_s
        self.min_span_s = min_span_s
        self._history: dict[Hashable, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def rate(self, key: Hashable, value: float, at: float) -> float | None:
        """The rate of the counter `key` now that it reads `value` at `at`; None until its readings span
        `min_span_s`."""
        with self._lock:
            history = self._history.setdefault(key, deque(maxlen=1024))
            if history and at < history[-1][0] - self.window_s:
                history.clear()  # the clock went back a long way: what came before cannot be ordered with this
            if history and at < history[-1][0]:
                pass  # a reader that took its time (two threads read the same source): the rate as it stands
            else:
                if history and at == history[-1][0]:
                    history.pop()
                history.append((at, value))
            while len(history) > 1 and history[1][0] <= history[-1][0] - self.window_s:
                history.popleft()  # one reading at or before the window's start is kept as its first
            span = history[-1][0] - history[0][0]
            if span < self.min_span_s:
                return None
            increase = sum(b - a if b >= a else b for (_, a), (_, b) in itertools.pairwise(history))
            return increase / span

    def forget(self, before: float) -> None:
        """Drop counters not read since `before` (a series that went away keeps no memory)."""
        with self._lock:
            for key in [k for k, h in self._history.items() if not h or h[-1][0] < before]:
                del self._history[key]


# -- the exposition reader ----------------------------------------------------------------------------


def parse_exposition(text: str | bytes, topology: Topology, at: float, source: str = "scrape",
                     rates: CounterRates | None = None, max_bytes: int = MAX_SCRAPE_BYTES) -> Snapshot:
    """`read_exposition`, refusing with a TelemetryError a text with no sample of any known service's metric at all
    (a page of HTML, another exporter, an empty body): that is the wrong URL, not a broken reading. A text whose
    samples of ours were all dropped is a snapshot with nothing in it but its problems."""
    reader = _read(text, topology, at, source, rates, max_bytes)
    snapshot = reader.snapshot()
    if not reader.ours:
        found = "; ".join(p.describe() for p in snapshot.problems[:3])
        more = f" ({len(snapshot.problems)} problems: {found})" if snapshot.problems else ""
        raise TelemetryError(f"{source}: no {PREFIX}<metric>{{service=...}} series for any known service{more}",
                             source=source)
    return snapshot


def read_exposition(text: str | bytes, topology: Topology, at: float, source: str = "scrape",
                    rates: CounterRates | None = None, max_bytes: int = MAX_SCRAPE_BYTES) -> Snapshot:
    """Read Prometheus text format into a checked snapshot; never raises. Series of services or metrics the
    infrastructure file does not list are ignored; every dropped sample or line is in `problems`. `rates` keeps
    counter readings from one read to the next (without it, counters and histograms have no rate yet); a body
    past `max_bytes` is read up to its last whole line there."""
    return _read(text, topology, at, source, rates, max_bytes).snapshot()


def _read(text: str | bytes, topology: Topology, at: float, source: str, rates: CounterRates | None,
          max_bytes: int) -> _Reader:
    reader = _Reader(topology, at, source, rates if rates is not None else CounterRates())
    for number, line in enumerate(_lines(text, reader, max_bytes), 1):
        reader.line(number, line)
    return reader


def _lines(text: str | bytes, reader: _Reader, max_bytes: int) -> Iterable[str]:
    """The lines of a body; bytes are decoded line by line, so one line that is not UTF-8 is one problem."""
    if isinstance(text, str) and len(text) > max_bytes:
        text = text.encode("utf-8", "surrogatepass")
    if isinstance(text, bytes):
        if len(text) > max_bytes:
            text = text[:text.rfind(b"\n", 0, max_bytes) + 1]
            reader.problem("", "", None, ProblemReason.TOO_LARGE,
                           f"the body is larger than {max_bytes} bytes: read up to its last whole line there")
        for number, raw in enumerate(text.split(b"\n"), 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as error:
                reader.problem("", "", None, ProblemReason.MALFORMED, f"not UTF-8 ({error.reason})", number)
                yield ""
    else:
        yield from text.split("\n")


_Sample = tuple[float, int]  # a value and its line


@dataclass
class _Readings:
    """Everything one read found for one service's metric, by series (its labels, minus `le` for buckets)."""

    values: dict[tuple, list[_Sample]] = field(default_factory=dict)  # gauges and summary quantiles
    counters: dict[tuple, list[_Sample]] = field(default_factory=dict)
    buckets: dict[tuple, dict[float, list[_Sample]]] = field(default_factory=dict)


class _Reader:
    """One read of an exposition: lines in, a checked snapshot and its problems out."""

    def __init__(self, topology: Topology, at: float, source: str, rates: CounterRates) -> None:
        self.topology = topology
        self.at = at
        self.source = source
        self.rates = rates
        self.types: dict[str, str] = {}  # family name -> its # TYPE
        self.readings: dict[tuple[str, str], _Readings] = {}
        self.problems: list[TelemetryProblem] = []
        self.dropped = 0
        self.ours = False  # a sample of a known service's declared metric was seen, valid or not
        self._reported: set[str] = set()

    def problem(self, service: str, metric: str, value: float | None, reason: ProblemReason, detail: str,
                line: int | None = None, once: bool = False) -> None:
        found = TelemetryProblem(service, metric, value, reason, detail, line)
        if once:
            if found.key in self._reported:
                return
            self._reported.add(found.key)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(found)
        else:
            self.dropped += 1

    def line(self, number: int, line: str) -> None:
        line = line.strip().lstrip(BOM).strip()
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            self.problem("", "", None, ProblemReason.MALFORMED, f"a line of {len(line)} characters "
                         f"(at most {MAX_LINE_CHARS}): {line[:60]!r}...", number)
            return
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[1] == "TYPE":
                self.types[parts[2]] = parts[3].strip()
            return
        if not line.startswith((PREFIX, "{")) and _foreign_and_whole(line):
            return  # another exporter's sample that looks whole: not ours, and not worth a full parse
        try:  # prometheus-client's parser on this line alone, which raises all sorts on a broken line
            samples = [s for family in text_string_to_metric_families(line) for s in family.samples]
        except Exception as error:  # noqa: BLE001 - whatever it raised, this line is not Prometheus text
            self.problem("", "", None, ProblemReason.MALFORMED,
                         f"not Prometheus text format ({type(error).__name__}): {line[:120]!r}", number)
            return
        for sample in samples:
            self.sample(number, sample.name, sample.labels, _number(sample.value))

    def sample(self, number: int, name: str, labels: Mapping[str, str], value: float) -> None:
        if not name.startswith(PREFIX):
            return
        shape = self.shape(name[len(PREFIX):], name, labels)
        if shape is None:
            return
        metric, form = shape
        spec = self.topology.spec(metric)
        assert spec is not None  # shape() names declared metrics only
        service = labels.get("service")
        if service is None:
            self.problem("", metric, value, ProblemReason.NO_SERVICE,
                         f"{name} has no service label, so it belongs to no service", number, once=True)
            return
        known = self.topology.services.get(service)
        if known is None or (metric != VERSION_METRIC and metric not in known.limits):
            return  # not ours
        self.ours = True
        if form == "part":
            return  # a histogram's count or sum, which its quantile does not need
        wanted = {"gauge": ("gauge",), "counter": ("counter",), "histogram": ("bucket", "summary")}[spec.type]
        if form not in wanted:
            self.wrong_type(service, metric, spec, name, form, value, number)
            return
        readings = self.readings.setdefault((service, metric), _Readings())
        series = tuple(sorted((k, v) for k, v in labels.items() if k not in ("le", "quantile")))
        if form == "counter":
            readings.counters.setdefault(series, []).append((value, number))
        elif form == "bucket":
            bound = _bound(labels.get("le"))
            if bound is None:
                self.problem(service, metric, value, ProblemReason.BAD_HISTOGRAM,
                             f"{name} has a bucket bound le={labels.get('le')!r} that is not a number", number)
                return
            readings.buckets.setdefault(series, {}).setdefault(bound, []).append((value, number))
        elif form == "summary":
            if _bound(labels.get("quantile")) == spec.quantile:
                readings.values.setdefault(series, []).append((value, number))
        else:
            readings.values.setdefault(series, []).append((value, number))

    def shape(self, rest: str, name: str, labels: Mapping[str, str]) -> tuple[str, str] | None:
        """The declared metric a sample name belongs to, and in which form it comes: gauge, counter, bucket or
        summary (readable when declared so), part (a count or sum a declared histogram does not need), or the
        family it is part of when that cannot be read (histogram, summary); None when the name is not ours."""
        declared = self.topology.spec(rest)
        if declared is not None:
            kind = self.types.get(name, "untyped")
            if kind == "counter":
                return rest, "counter"
            if kind == "summary" or "quantile" in labels:
                return rest, "summary"
            if kind == "histogram":  # a histogram's samples all have a suffix: this one is not usable
                return rest, "part" if declared.type == "histogram" else "histogram"
            return rest, "gauge"
        for suffix in ("_total", "_bucket", "_count", "_sum", "_created"):
            base = rest[:-len(suffix)]
            if not rest.endswith(suffix) or self.topology.spec(base) is None:
                continue
            if suffix == "_created":
                return None  # when a counter or histogram started: nothing to read
            spec = self.topology.spec(base)
            assert spec is not None
            if suffix == "_total":
                return base, "counter"
            if suffix == "_bucket":
                return base, "bucket"
            if spec.type == "histogram":
                return base, "part"
            family = self.types.get(PREFIX + base, "untyped")
            return base, family if family in ("histogram", "summary") else "histogram or summary"
        return None

    def wrong_type(self, service: str, metric: str, spec: MetricSpec, name: str, form: str, value: float,
                   number: int) -> None:
        family = {"bucket": "histogram"}.get(form, form)
        hint = {"gauge": f"expose the gauge {PREFIX}{metric}",
                "counter": f"expose the counter {PREFIX}{metric}_total",
                "histogram": f"expose the histogram {PREFIX}{metric}_bucket"}[spec.type]
        self.problem(service, metric, value, ProblemReason.WRONG_TYPE,
                     f"{name} is a {family}, but {metric} is declared a {spec.type} in the infrastructure file, so "
                     f"it is not read: {hint}, or declare the type it has", number, once=True)

    # -- from readings to one value per service and metric ------------------------------------------

    def snapshot(self) -> Snapshot:
        metrics: dict[str, dict[str, float]] = {}
        versions: dict[str, int] = {}
        for (service, metric), readings in self.readings.items():
            spec = self.topology.spec(metric)
            assert spec is not None
            values = self.values(service, metric, spec, readings)
            value = pick(spec, values.values())
            if value is None and values:
                self.problem(service, metric, None, ProblemReason.AMBIGUOUS,
                             f"{len(values)} series disagree ({', '.join(f'{v:g}' for v in sorted(values.values()))})"
                             f" and {metric} says `duplicates: refuse`; none is read")
            elif value is not None and metric == VERSION_METRIC:
                versions[service] = int(value)
            elif value is not None:
                metrics.setdefault(service, {})[metric] = value
        self.rates.forget(self.at - self.rates.window_s)
        if self.dropped:
            self.problems.append(TelemetryProblem("", "", None, ProblemReason.TOO_MANY,
                                                  f"{self.dropped} more problems in this read are not listed"))
        return Snapshot(self.at, metrics, versions, tuple(self.problems))

    def values(self, service: str, metric: str, spec: MetricSpec, readings: _Readings) -> dict[tuple, float]:
        """One valid value per series of one service's metric."""
        found: dict[tuple, float] = {}
        for series, samples in readings.values.items():
            value = self.one(service, metric, spec, series, samples)
            if value is not None:
                found[series] = value
        for series, samples in readings.counters.items():
            counter = self.one(service, metric, _COUNTER, series, samples)
            if counter is not None:
                rate = self.rates.rate((self.source, metric, service, series), counter, self.at)
                if rate is not None and self.valid(service, metric, spec, rate, samples[0][1]):
                    found[series] = rate
        for series, buckets in readings.buckets.items():
            value = self.quantile(service, metric, spec, series, buckets)
            first = min(line for samples in buckets.values() for _, line in samples)
            if value is not None and self.valid(service, metric, spec, value, first):
                found[series] = value
        return found

    def one(self, service: str, metric: str, spec: MetricSpec, series: tuple, samples: list[_Sample]) -> float | None:
        """The value of one series: its valid samples, which must agree unless the rule picks among them."""
        valid = [v for v, line in samples if self.valid(service, metric, spec, v, line)]
        if len(set(valid)) <= 1:
            return valid[0] if valid else None
        value = pick(spec, valid) if spec is not _COUNTER else None
        labels = ",".join(f'{k}="{v}"' for k, v in series)
        outcome = f"read {value:g} by its `duplicates: {spec.duplicates}` rule" if value is not None else "none is read"
        self.problem(service, metric, None, ProblemReason.DUPLICATE,
                     f"the series {PREFIX}{metric}{{{labels}}} appears {len(samples)} times with different values "
                     f"({', '.join(f'{v:g}' for v in sorted(valid))}); {outcome}", samples[0][1])
        return value

    def valid(self, service: str, metric: str, spec: MetricSpec, value: float, line: int) -> bool:
        refused = refusal(spec, value)
        if refused is not None:
            self.problem(service, metric, value, refused[0], refused[1], line)
        return refused is None

    def quantile(self, service: str, metric: str, spec: MetricSpec, series: tuple,
                 buckets: dict[float, list[_Sample]]) -> float | None:
        """The declared quantile of one histogram series over the rate window, from its buckets' rates."""
        counts = {bound: self.one(service, metric, _COUNTER, (*series, ("le", bound)), values)
                  for bound, values in sorted(buckets.items())}
        why = _histogram_problem(counts)
        if why is not None:
            first = min(line for samples in buckets.values() for _, line in samples)
            self.problem(service, metric, None, ProblemReason.BAD_HISTOGRAM, f"{PREFIX}{metric}_bucket {why}", first)
            return None
        rates = [(bound, self.rates.rate((self.source, metric, service, series, bound), count, self.at))
                 for bound, count in counts.items() if count is not None]
        if any(rate is None for _, rate in rates):
            return None  # not read long enough for a rate yet
        return histogram_quantile(spec.quantile or 0.5, [(b, r) for b, r in rates if r is not None])


_COUNTER = MetricSpec("counter", "count", "above", "a counter's reading", min=0)


def _histogram_problem(counts: Mapping[float, float | None]) -> str | None:
    if any(count is None for count in counts.values()):
        return "has a bucket without a valid count"
    if math.inf not in counts:
        return "has no le=\"+Inf\" bucket"
    values = [c for _, c in sorted(counts.items()) if c is not None]
    if any(b < a for a, b in itertools.pairwise(values)):
        return "counts fall from one bucket to the next"
    return None


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The `q` quantile from cumulative (upper bound, count) buckets, +Inf last, as Prometheus computes it: linear
    within the bucket the rank falls in; the highest finite bound when it falls in +Inf; None without
    observations."""
    cumulative = [(bound, count) for bound, count in zip(
        (b for b, _ in sorted(buckets)), itertools.accumulate((c for _, c in sorted(buckets)), max), strict=True)]
    total = cumulative[-1][1] if cumulative else 0.0
    if total <= 0 or not math.isinf(cumulative[-1][0]):
        return None
    rank = q * total
    previous: float | None = None
    below = 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return previous
            if previous is None and bound <= 0:
                return bound
            start = 0.0 if previous is None else previous
            if count <= below:
                return bound
            return start + (bound - start) * (rank - below) / (count - below)
        previous, below = bound, count
    return previous


# A sample line at a glance: name, optional {labels} (quoted values with escapes), value, optional timestamp.
# Atomic groups and possessive quantifiers: no input can make it backtrack.
_SAMPLE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*+(?:\{(?>[^"{}]|"(?>[^"\\]|\\.)*+")*+\})?+'
                     r'[ \t]++(?P<value>[^ \t]++)(?:[ \t]++-?[0-9]++)?+')


def _foreign_and_whole(line: str) -> bool:
    """Does a line not ours look like a well-formed sample? Then it is skipped without parsing it (an exporter
    beside ours may send tens of thousands); one that does not is parsed, and reported if it is malformed."""
    found = _SAMPLE.fullmatch(line)
    if found is None:
        return False
    try:
        float(found["value"])
    except ValueError:
        return False
    return True


def _bound(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


# -- the exposition writer ----------------------------------------------------------------------------


class _SnapshotCollector:
    """Hands one snapshot to prometheus-client as gauge families."""

    def __init__(self, snapshot: Snapshot, topology: Topology) -> None:
        self.snapshot = snapshot
        self.topology = topology

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
    """The snapshot in Prometheus text format (every metric as a gauge), generated by prometheus-client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot, topology))
    return generate_latest(registry)
