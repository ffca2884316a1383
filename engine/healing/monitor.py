"""The monitor loop: read telemetry, detect, take in alerts, heal, verify; once per interval, on a thread.

`tick()` is one pass and is what tests and simulated scenarios call, with a simulated clock. `start()` runs
ticks on a daemon thread until `stop()` (clean: the current tick finishes first); `wake()` runs the next tick
at once, which the Alertmanager receiver uses so an alert is acted on without waiting for the interval.

Every snapshot is checked before anything reads it (`engine.infra.samples.checked`); the samples it drops are
`telemetry` signals in the tick's report, logged as a warning (and sent as a `telemetry_problem` event) when a
problem first appears and once more when it is over. They are never handed to the healer: a broken reading of
one service neither counts as that service being unhealthy nor keeps the others from being remedied.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import FirstlineError, TelemetryError
from core.text import printable
from engine.healing.detection import Detector, Signal, SignalKind, SignalState, problem_signals
from engine.healing.healer import Event, Healer
from engine.infra.telemetry import Snapshot, TelemetrySource, checked
from engine.store.healing import AlertRecord, HealingLedger, RemediationRow

log = logging.getLogger("firstline.monitor")
OUTAGE_REMINDER_S = 600.0  # while the source cannot be read the same way, the warning is repeated this often


@dataclass
class TickReport:
    at: float
    snapshot: Snapshot | None
    signals: list[Signal] = field(default_factory=list)
    attempts: list[RemediationRow] = field(default_factory=list)
    error: str | None = None
    problems: list[Signal] = field(default_factory=list)  # telemetry signals: samples dropped from the snapshot


class Monitor:
    """Feeds the healer from a telemetry source and the stored alert inbox."""

    def __init__(
        self,
        source: TelemetrySource,
        detector: Detector,
        healer: Healer,
        ledger: HealingLedger,
        interval_s: float,
        clock: Callable[[], float] = time.time,
        act_on_detection: bool = True,
        record_samples: bool = True,
        alert_wait_s: float = 300.0,
    ) -> None:
        self.source = source
        self.detector = detector
        self.healer = healer
        self.ledger = ledger
        self.interval_s = interval_s
        self.clock = clock
        # False: detection only feeds verification, and only alerts (e.g. from Alertmanager) lead to actions.
        self.act_on_detection = act_on_detection
        self.record_samples = record_samples
        self.alert_wait_s = alert_wait_s  # how long an alert may wait for the telemetry to bear it out, in s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self._problems: dict[str, Signal] = {}  # telemetry problems seen on the last read, by fingerprint
        self._problems_synced = False  # the store's open problems brought up to date since this monitor started
        # The last reading and the last failure, for /metrics to show without a read of its own (a display, not
        # a decision: decisions read the stored samples).
        self.last_snapshot: Snapshot | None = None
        self.last_error: str | None = None
        self._outage: tuple[float, int] | None = None  # since when the source cannot be read, and failed reads
        self._warned_at = -math.inf  # when the outage was last logged

    def tick(self) -> TickReport:
        """One pass; a source that cannot be read is logged and skipped, and changes nothing."""
        with self._tick_lock:
            now = self.clock()
            try:
                snapshot = self.source.read()
            except TelemetryError as error:
                self._report_outage(str(error), now)
                return TickReport(now, None, error=str(error))
            snapshot = checked(snapshot, self.detector.topology)
            if self._outage is not None:
                since, reads = self._outage
                log.info("telemetry: %s readable again after %.0f s (%d failed reads)", self.source.name,
                         now - since, reads)
                self._outage = None
            self.last_snapshot, self.last_error = snapshot, None
            problems = problem_signals(snapshot)
            self._report_problems(problems, now)
            if self.record_samples:
                self.ledger.record_samples(snapshot.at, snapshot.metrics, self.source.name)
            detected = self.detector.update(snapshot)
            if not self.act_on_detection:
                detected = [s for s in detected if s.kind is SignalKind.DEPLOY]
            signals = detected + self._alert_signals(now)
            attempts = self.healer.step(signals, self.detector)
            return TickReport(now, snapshot, signals, attempts, problems=problems)

    def _report_outage(self, error: str, now: float) -> None:
        """Log a source that cannot be read when it starts failing or fails another way, then at most every
        OUTAGE_REMINDER_S while it lasts (a warning each tick filled the log: 240 an hour at 15 s), and once when
        it is readable again (in `tick`)."""
        since, reads = self._outage if self._outage is not None else (now, 0)
        self._outage = (since, reads + 1)
        if error != self.last_error or now - self._warned_at >= OUTAGE_REMINDER_S:
            still = f" (still, for {now - since:.0f} s and {reads + 1} reads)" if reads else ""
            log.warning("telemetry: %s%s", error, still)
            self._warned_at = now
        self.last_error = error

    def _report_problems(self, problems: list[Signal], now: float) -> None:
        """Keep every telemetry problem in the store while it lasts (`telemetry_problems`: an operator reads
        them with `firstline sql`), and log it when it first appears and when it is over, not on every tick in
        between."""
        current = {p.fingerprint: p for p in problems}
        if problems or self._problems or not self._problems_synced:  # the first tick closes what ended meanwhile
            self.ledger.record_telemetry_problems(self.source.name, problems, now)
            self._problems_synced = True
        for key, problem in current.items():
            if key not in self._problems:
                log.warning("telemetry problem from %s: %s", self.source.name, problem.describe())
                if self.healer.on_event is not None:
                    self.healer.on_event(Event(now, "telemetry_problem", problem.describe()))
        for key, problem in self._problems.items():
            if key not in current:
                log.info("telemetry problem over: %s %s (%s)", problem.service or "-", problem.metric or "-",
                         problem.reason)
        self._problems = current

    def _alert_signals(self, now: float) -> list[Signal]:
        """Signals for the firing alerts the telemetry bears out. One it does not bear out yet stays pending
        (the sender may see the problem a little before our readings do) until `alert_wait_s` has passed; then it
        is closed without action. What is not acted on is logged once per reason and tick, with a count: a storm
        of a thousand alerts is a few lines, not a thousand."""
        signals = []
        handled = []
        passed_over = _PassedOver()
        for alert in self.ledger.pending_alerts():
            unusable = self._unusable(alert)
            signal = None if unusable else self._signal(alert, now)
            if alert.resolved:
                passed_over.add(logging.INFO, "resolved before it was acted on", alert)
            elif signal is None:
                passed_over.add(logging.WARNING, f"{unusable}; recorded, not acted on", alert)
            elif not self.detector.corroborates(signal.service, signal.metric):
                if now - alert.received_at < self.alert_wait_s:
                    continue  # looked at again next tick
                passed_over.add(logging.WARNING, f"on {signal.service} {signal.metric} never borne out by telemetry "
                                f"(latest {self.detector.latest(signal.service, signal.metric)}, limit "
                                f"{signal.limit}) in {self.alert_wait_s:.0f} s; recorded, not acted on", alert)
            else:
                signals.append(signal)
            handled.append(alert)
        self.ledger.alerts_handled(handled, now)  # before any is acted on: a crash after never acts twice
        passed_over.log()
        return signals

    def _unusable(self, alert: AlertRecord) -> str | None:
        """Why `alert` cannot be acted on, in the words an operator fixes the alerting rule with; None if it can."""
        services = self.healer.topology.services
        if not alert.service:
            return "names no service (label service=)"
        service = services.get(alert.service)
        if service is None:
            return f"names service '{printable(alert.service, LABEL_CHARS)}', which is not in the infrastructure file"
        known = ", ".join(sorted(service.limits)) or "none"
        if not alert.metric:
            return f"on {service.name} names no metric (label metric=; its metrics: {known})"
        if alert.metric not in service.limits:
            return (f"names metric '{printable(alert.metric, LABEL_CHARS)}', which {service.name} has no limit for "
                    f"(its metrics: {known})")
        return None

    def _signal(self, alert: AlertRecord, now: float) -> Signal:
        """The signal of an alert `_unusable` found nothing wrong with (a known service, a metric it limits)."""
        service = self.healer.topology.services[alert.service or ""]
        metric = alert.metric or ""
        value = self.detector.latest(service.name, metric)
        return Signal(service.name, metric, SignalKind.ALERT, SignalState.HARD,
                      value if value is not None else 0.0, service.limits[metric], now,
                      fingerprint=alert.fingerprint, detail=alert.alertname)

    # -- the thread ---------------------------------------------------------------------------------

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._loop, name="firstline-monitor", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        # A stop (Ctrl+C, SIGTERM) can come between making the thread and starting it: nothing to wait for then.
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join()
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except FirstlineError as error:  # a store or rule problem must not kill the loop
                log.error("monitor tick failed: %s", error)
            except Exception:
                log.exception("monitor tick failed")
            self._wake.wait(self.interval_s)
            self._wake.clear()


NAMED_ALERTS = 3  # alerts named in a log line of alerts passed over for one reason; the rest are counted
REASON_LINES = 10  # reasons logged one line each per tick; the rest are counted in one more line
LABEL_CHARS = 80  # a label value (alert name, fingerprint, service, metric) is cut to this in a log line


class _PassedOver:
    """The alerts of one tick that were not acted on, by reason, for one log line per reason and at most
    REASON_LINES + 1 lines a tick: a storm of alerts each naming a service of its own is a few lines too."""

    def __init__(self) -> None:
        self.reasons: dict[tuple[int, str], list[AlertRecord]] = {}

    def add(self, level: int, reason: str, alert: AlertRecord) -> None:
        self.reasons.setdefault((level, reason), []).append(alert)

    def log(self) -> None:
        by_size = sorted(self.reasons.items(), key=lambda item: -len(item[1]))
        for (level, reason), alerts in by_size[:REASON_LINES]:
            named = ", ".join(f"{printable(a.alertname, LABEL_CHARS)} ({printable(a.fingerprint, LABEL_CHARS)})"
                              for a in alerts[:NAMED_ALERTS])
            if len(alerts) == 1:
                log.log(level, "alert %s %s", named, reason)
            else:
                more = f" and {len(alerts) - NAMED_ALERTS} more" if len(alerts) > NAMED_ALERTS else ""
                log.log(level, "%d alerts %s%s %s", len(alerts), named, more, reason)
        rest = by_size[REASON_LINES:]
        if rest:
            level = max(level for (level, _), _ in rest)
            log.log(level, "%d more alerts for %d other reasons (other services or metrics the infrastructure file "
                    "does not have, or alerts not borne out); recorded, not acted on",
                    sum(len(alerts) for _, alerts in rest), len(rest))
