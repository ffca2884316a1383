"""Detection: from a stream of snapshots to signals worth acting on. Pure computation, no I/O.

Per (service, metric) series, three kinds of evidence, each confirmed over `confirm_checks` consecutive
checks before it is actionable (Nagios' soft-then-hard states):

- threshold: the value is past its limit;
- anomaly: the value is far from its own recent level (EWMA mean and deviation, z beyond `anomaly_z`) and has
  moved a material share of the way towards its limit;
- trend: a least-squares line over the last `window_s` seconds (Prometheus' `predict_linear`: times relative to
  now, so the intercept is the fitted value now) reaches the limit within `horizon_s`, with a slope clearly
  apart from noise.

A series whose problem state changes too often over the last 21 checks is flapping (high and low thresholds,
as Nagios does) and raises nothing actionable until it settles. Deploys are seen as a change of release number.
The threshold-only baseline of the benchmark is the same detector with `predictive=False`.

Only checked values are detected on (`engine.infra.samples.checked`: finite, in the metric's physical range);
each sample the checks dropped is a `telemetry` signal (`problem_signals`) for an operator, never acted on.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from core.settings import Settings
from engine.infra.samples import Snapshot, checked
from engine.infra.topology import VERSION_METRIC, Topology
from engine.infra.trends import Fit, least_squares

FLAP_CHECKS = 21  # Nagios' window
FLAP_MIN_CHECKS = 10  # fewer checks than this say nothing about flapping (one change in two is 100%)
EWMA_ALPHA = 0.1
WARM_UP = 5  # samples before the EWMA is trusted
ANOMALY_MIN_SHARE = 0.1  # an anomaly must also have moved this share of the way from its level to its limit


class SignalKind(StrEnum):
    THRESHOLD = "threshold"
    ANOMALY = "anomaly"
    TREND = "trend"
    ALERT = "alert"
    DEPLOY = "deploy"
    TELEMETRY = "telemetry"  # a sample dropped as broken (not finite, out of range, wrong type...): never acted on


class SignalState(StrEnum):
    SOFT = "soft"  # seen, not yet confirmed
    HARD = "hard"  # confirmed: act
    FLAPPING = "flapping"  # confirmed but unstable: do not act


@dataclass(frozen=True)
class DetectionConfig:
    confirm_checks: int = 3
    horizon_s: float = 1800.0
    window_s: float = 600.0
    anomaly_z: float = 6.0
    flap_high: float = 0.5
    flap_low: float = 0.25
    min_trend_samples: int = 8
    trend_t: float = 4.0  # the slope must be this many standard errors from zero
    deploy_window_s: float = 1800.0
    predictive: bool = True  # False: thresholds only

    @classmethod
    def from_settings(cls, settings: Settings, predictive: bool = True) -> DetectionConfig:
        return cls(confirm_checks=settings.confirm_checks, horizon_s=settings.prediction_horizon_s,
                   window_s=settings.trend_window_s, anomaly_z=settings.anomaly_z, flap_high=settings.flap_high,
                   flap_low=settings.flap_low, deploy_window_s=settings.deploy_window_s, predictive=predictive)


@dataclass(frozen=True)
class Signal:
    """Evidence that one metric of one service is, or is about to be, out of bounds."""

    service: str
    metric: str
    kind: SignalKind
    state: SignalState
    value: float
    limit: float
    at: float
    eta_s: float | None = None  # trend: seconds until the limit is reached
    score: float | None = None  # anomaly: the z-score
    fingerprint: str = ""  # alert: Alertmanager's fingerprint; telemetry: what the problem is from read to read
    detail: str = ""
    reason: str = ""  # telemetry: why the sample was dropped (engine.infra.samples.ProblemReason)

    @property
    def actionable(self) -> bool:
        return self.state is SignalState.HARD and self.kind not in (SignalKind.DEPLOY, SignalKind.TELEMETRY)

    def describe(self) -> str:
        if self.kind is SignalKind.TELEMETRY:
            where = " ".join(p for p in (self.service, self.metric) if p) or "telemetry"
            # Of duplicates, one may still be read (the worst, by the metric's rule): "dropped" would mislead.
            what = "samples disagree" if self.reason == "duplicate" else "sample dropped"
            return f"{where}: {what} ({self.reason}): {self.detail}"
        if self.kind is SignalKind.TREND and self.eta_s is not None:
            return (f"{self.service} {self.metric} {self.value:g} heads for its limit {self.limit:g} "
                    f"in {self.eta_s / 60:.0f} min (trend)")
        if self.kind is SignalKind.ANOMALY:
            return f"{self.service} {self.metric} {self.value:g} is unusual (z {self.score:.1f}; limit {self.limit:g})"
        if self.kind is SignalKind.DEPLOY:
            return f"{self.service} runs a new version ({self.limit:g} -> {self.value:g})"
        if self.kind is SignalKind.ALERT:
            return f"{self.service} {self.metric}: alert {self.detail}"
        return f"{self.service} {self.metric} {self.value:g} is past its limit {self.limit:g}"


@dataclass
class _Series:
    samples: deque[tuple[float, float]] = field(default_factory=deque)  # distinct readings only
    checks: deque[float] = field(default_factory=deque)  # when it was read, repeats included
    mean: float | None = None
    var: float = 0.0
    seen: int = 0
    runs: dict[SignalKind, int] = field(
        default_factory=lambda: dict.fromkeys((SignalKind.THRESHOLD, SignalKind.ANOMALY, SignalKind.TREND), 0))
    problems: deque[bool] = field(default_factory=lambda: deque(maxlen=FLAP_CHECKS))
    flapping: bool = False
    elevated: bool = False  # off its usual level towards its limit, if not (yet) anomalous: a suspect


class Detector:
    """Turns snapshots into signals. Keeps a short window per series; feed it every snapshot in order."""

    def __init__(self, topology: Topology, config: DetectionConfig) -> None:
        self.topology = topology
        self.config = config
        self._series: dict[tuple[str, str], _Series] = {}
        self._versions: dict[str, int] = {}
        self._deploys: dict[str, tuple[float, int, int]] = {}  # service -> (at, old, new)

    def update(self, snapshot: Snapshot) -> list[Signal]:
        """Every current signal after this snapshot: soft, hard or flapping, and recent deploys. Values the
        telemetry checks refuse are left out (a source checks them already; a snapshot made by hand may not)."""
        snapshot = checked(snapshot, self.topology)
        signals: list[Signal] = []
        for service, values in snapshot.metrics.items():
            for metric, value in values.items():
                spec = self.topology.services.get(service)
                if spec is not None and metric in spec.limits:
                    signals += self._check(service, metric, value, snapshot.at)
        signals += self._deploy_signals(snapshot)
        return signals

    def settled(self, service: str, metric: str, since: float, min_samples: int = 8) -> bool | None:
        """After an action at `since`: True once the metric is in bounds and confidently not heading back out
        within the horizon, False while it is not, None until it has been read `min_samples` times since."""
        series = self._series.get((service, metric))
        if series is None or not series.samples or sum(1 for t in series.checks if t > since) < min_samples:
            return None
        # Readings that repeat the last value are not kept; an unchanged value still counts as the latest.
        after = [s for s in series.samples if s[0] > since] or [series.samples[-1]]
        spec = self.topology.services[service]
        limit, baseline = spec.limits[metric], spec.baselines[metric]
        if any(self.topology.is_unhealthy(service, metric, v) for _, v in after):
            return False
        # Back on the healthy side: nearer its usual level than its limit (a leak merely paused is not).
        if abs(after[-1][1] - baseline) > abs(limit - baseline) / 2:
            return False
        # And the action visibly worked: at least half the excursion it was taken on is gone. A prediction is
        # acted on while the value is still in bounds, so "in bounds" alone would pass a useless action.
        before = [v for t, v in series.samples if t <= since]
        allowance = ANOMALY_MIN_SHARE * abs(limit - baseline)  # ordinary noise around the usual level
        if before and abs(after[-1][1] - baseline) > max(abs(before[-1] - baseline) / 2, allowance):
            return False
        fit = least_squares(after, after[-1][0])
        if fit is None or math.isinf(fit.stderr):
            return True
        below = self._below(metric)
        # Judged one standard error on the pessimistic side, so a trend hidden in the noise does not pass.
        pessimistic = Fit(fit.slope - fit.stderr if below else fit.slope + fit.stderr, fit.intercept,
                          fit.stderr, fit.samples)
        eta = pessimistic.eta(limit, below)
        return eta is None or eta > self.config.horizon_s

    def suspects(self) -> set[str]:
        """Services with a metric clearly off its usual level towards its limit: weaker evidence than a signal,
        but enough for the root-cause walk to look below a symptom (a filling pool before its callers slow)."""
        return {service for (service, _), series in self._series.items() if series.elevated}

    def corroborates(self, service: str, metric: str) -> bool:
        """Does the telemetry bear out a problem on this series: its latest reading past the limit, or off its
        usual level towards the limit (an anomaly, or a trend heading there)? False when it has not been read.
        An alert is acted on only then: the receiver trusts its sender, the actuator trusts measurements."""
        series = self._series.get((service, metric))
        if series is None or not series.samples:
            return False
        return self.topology.is_unhealthy(service, metric, series.samples[-1][1]) or series.elevated

    def latest(self, service: str, metric: str) -> float | None:
        series = self._series.get((service, metric))
        return series.samples[-1][1] if series and series.samples else None

    def last_deploy(self, service: str) -> float | None:
        """When `service` last ran a new version (epoch s), as far as this detector has seen; None if never."""
        deploy = self._deploys.get(service)
        return deploy[0] if deploy is not None else None

    def recent_deploys(self, now: float) -> dict[str, tuple[float, int, int]]:
        return {s: d for s, d in self._deploys.items() if now - d[0] <= self.config.deploy_window_s}

    # -- one series ---------------------------------------------------------------------------------

    def _check(self, service: str, metric: str, value: float, now: float) -> list[Signal]:
        series = self._series.setdefault((service, metric), _Series())
        # A value repeated by a source that updates more slowly than we read it carries no news: counting it
        # again would shrink the EWMA's deviation and the trend's standard error as if it did.
        repeated = bool(series.samples) and series.samples[-1][1] == value
        if not repeated:
            series.samples.append((now, value))
        series.checks.append(now)
        while series.samples and series.samples[0][0] < now - self.config.window_s:
            series.samples.popleft()
        while series.checks and series.checks[0] < now - self.config.window_s:
            series.checks.popleft()
        limit = self.topology.services[service].limits[metric]
        raw: dict[SignalKind, Signal] = {}
        series.elevated = False
        if self.topology.is_unhealthy(service, metric, value):
            raw[SignalKind.THRESHOLD] = Signal(service, metric, SignalKind.THRESHOLD, SignalState.SOFT, value, limit,
                                               now)
        if self.config.predictive:
            anomaly = self._anomaly(series, service, metric, value, limit, now)
            if anomaly:
                raw[SignalKind.ANOMALY] = anomaly
            crossed = raw.get(SignalKind.THRESHOLD)
            trend = self._trend(series, service, metric, value, limit, now) if not crossed else None
            if trend:
                raw[SignalKind.TREND] = trend
        if SignalKind.ANOMALY not in raw and not repeated:
            self._learn(series, value)
        for kind in series.runs:
            series.runs[kind] = series.runs[kind] + 1 if kind in raw else 0
        self._update_flapping(series, bool(raw))
        return [self._graded(signal, series) for signal in raw.values()]

    def _graded(self, signal: Signal, series: _Series) -> Signal:
        if series.runs[signal.kind] < self.config.confirm_checks:
            state = SignalState.SOFT
        else:
            state = SignalState.FLAPPING if series.flapping else SignalState.HARD
        return Signal(signal.service, signal.metric, signal.kind, state, signal.value, signal.limit, signal.at,
                      signal.eta_s, signal.score, detail=signal.detail)

    def _anomaly(self, series: _Series, service: str, metric: str, value: float, limit: float,
                 now: float) -> Signal | None:
        if series.mean is None or series.seen < WARM_UP:
            return None
        direction = -1.0 if self._below(metric) else 1.0
        # A floor on the deviation: a perfectly steady series must not make every wobble an anomaly.
        deviation = max(math.sqrt(series.var), 0.01 * abs(series.mean), 1e-9)
        z = direction * (value - series.mean) / deviation
        share = direction * (value - series.mean) / max(abs(limit - series.mean), 1e-9)
        series.elevated = z >= self.config.anomaly_z / 2 and share >= ANOMALY_MIN_SHARE / 2
        if z < self.config.anomaly_z or share < ANOMALY_MIN_SHARE:
            return None
        return Signal(service, metric, SignalKind.ANOMALY, SignalState.SOFT, value, limit, now, score=z,
                      detail=f"usual level {series.mean:.4g}")

    def _trend(self, series: _Series, service: str, metric: str, value: float, limit: float,
               now: float) -> Signal | None:
        if len(series.samples) < self.config.min_trend_samples:
            return None
        fit = least_squares(list(series.samples), now)
        if fit is None or fit.stderr == 0 or abs(fit.slope) < self.config.trend_t * fit.stderr:
            return None
        worse = -fit.slope if self._below(metric) else fit.slope
        series.elevated = series.elevated or worse > 0  # heading for its limit, however far: a suspect
        eta = fit.eta(limit, self._below(metric))
        if eta is None or eta > self.config.horizon_s:
            return None
        return Signal(service, metric, SignalKind.TREND, SignalState.SOFT, value, limit, now, eta_s=eta,
                      detail=f"slope {fit.slope:.4g}/s")

    def _learn(self, series: _Series, value: float) -> None:
        # Only ordinary values teach the EWMA, so a fault does not become the new normal while it grows.
        series.seen += 1
        if series.mean is None:
            series.mean = value
            return
        delta = value - series.mean
        var = (1 - EWMA_ALPHA) * (series.var + EWMA_ALPHA * delta * delta)
        if not math.isfinite(var):
            return  # a value so far off that its square overflows teaches nothing (and would blind the z-score)
        series.mean += EWMA_ALPHA * delta
        series.var = var

    def _update_flapping(self, series: _Series, problem: bool) -> None:
        series.problems.append(problem)
        if len(series.problems) < FLAP_MIN_CHECKS:
            return
        states = list(series.problems)
        changes = sum(1 for a, b in itertools.pairwise(states) if a != b) / (len(states) - 1)
        if series.flapping and changes < self.config.flap_low:
            series.flapping = False
        elif not series.flapping and changes > self.config.flap_high:
            series.flapping = True

    def _deploy_signals(self, snapshot: Snapshot) -> list[Signal]:
        for service, release in snapshot.versions.items():
            old = self._versions.get(service)
            if old is not None and old != release:
                self._deploys[service] = (snapshot.at, old, release)
            self._versions[service] = release
        return [Signal(service, VERSION_METRIC, SignalKind.DEPLOY, SignalState.HARD, float(new), float(old),
                       snapshot.at, detail=f"deployed {max(0.0, snapshot.at - at):.0f} s ago")
                for service, (at, old, new) in self.recent_deploys(snapshot.at).items()]

    def _below(self, metric: str) -> bool:
        return self.topology.metrics[metric].worse == "below"


def problem_signals(snapshot: Snapshot) -> list[Signal]:
    """One `telemetry` signal per sample or line the checks dropped from `snapshot`: service, metric, value (NaN
    when there was none), reason and detail; never actionable."""
    return [Signal(p.service, p.metric, SignalKind.TELEMETRY, SignalState.SOFT,
                   math.nan if p.value is None else p.value, math.nan, snapshot.at, fingerprint=p.key,
                   detail=p.message, reason=str(p.reason))
            for p in snapshot.problems]


def hard(signals: Iterable[Signal]) -> list[Signal]:
    return [s for s in signals if s.actionable]
