"""The scrape path for real: an exporter on 127.0.0.1 serving bodies built from reported failures, read by the
scrape source and the monitor with manual clocks. A broken sample is reported (log, event, tick report), never
stored, never detected on, and never stops remediation of anything else."""

from __future__ import annotations

import logging
import time

import pytest

from core.errors import TelemetryError
from core.settings import PROJECT_ROOT
from engine.actions.actuator import Actuator
from engine.actions.adapters import AdapterRouter
from engine.actions.adapters.simulated import SimulatedAdapter
from engine.actions.catalogue import ACTIONS, action_targets
from engine.actions.safety import SafetyPolicy
from engine.decision.ruleengine import RuleEngine
from engine.healing.detection import DetectionConfig, Detector, SignalKind
from engine.healing.healer import Healer
from engine.healing.monitor import Monitor
from engine.infra.samples import ProblemReason
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import ScrapeSource
from engine.infra.topology import load_topology
from engine.store import DuckDBStore
from engine.store.healing import HealingLedger
from rules.loader import load_rules
from tests.conftest import ManualClock
from tests.peers import Exporter

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml",
                         {name: spec.needs for name, spec in ACTIONS.items()})


@pytest.fixture(scope="module")
def rules() -> RuleEngine:
    return RuleEngine(load_rules([PROJECT_ROOT / "rules" / "builtin"], action_targets(TOPOLOGY)))


@pytest.fixture
def exporter():
    with Exporter() as running:
        yield running


def test_one_scrape_with_a_bom_a_broken_exporter_and_bad_values_still_reads_every_good_series(exporter, clock):
    exporter.serve(
        "\ufeff# HELP firstline_cpu_pct CPU in use\n# TYPE firstline_cpu_pct gauge\n"
        'firstline_cpu_pct{service="api"} 97\n'
        '# TYPE node_filesystem_avail_bytes gauge\nnode_filesystem_avail_bytes{mountpoint="/} 1.2e9\n'
        'firstline_cpu_pct{service="web",instance="web-2"} 22\nfirstline_cpu_pct{service="web",instance="web-2"} 97\n'
        'firstline_deployed_version{service="api"} +Inf\nfirstline_deployed_version{service="web"} 311\n'
        'firstline_memory_pct{service="api"} -5\nfirstline_error_rate{service="api"} 7.5\n'
        '# TYPE firstline_failed_jobs_total counter\nfirstline_failed_jobs_total{service="queue"} 12\n')
    snapshot = ScrapeSource(exporter.url, TOPOLOGY, timeout_s=5, clock=clock).read()
    assert snapshot.at == clock.now
    assert snapshot.metrics == {"api": {"cpu_pct": 97.0}, "web": {"cpu_pct": 97.0}}
    assert snapshot.versions == {"web": 311}
    assert {(p.service, p.metric, p.reason) for p in snapshot.problems} == {
        ("", "", ProblemReason.MALFORMED),
        ("web", "cpu_pct", ProblemReason.DUPLICATE),
        ("api", "deployed_version", ProblemReason.NOT_FINITE),
        ("api", "memory_pct", ProblemReason.OUT_OF_RANGE),
        ("api", "error_rate", ProblemReason.OUT_OF_RANGE),
        ("queue", "failed_jobs", ProblemReason.WRONG_TYPE),
    }


def test_a_body_trickling_in_is_cut_off_at_the_scrape_timeout(exporter, clock):
    # Each byte comes within the socket's timeout, so only a deadline on the whole read ends it.
    exporter.serve('firstline_cpu_pct{service="api"} 97\n' * 50, trickle_s=0.05)
    source = ScrapeSource(exporter.url, TOPOLOGY, timeout_s=0.5, clock=clock)
    started = time.monotonic()
    with pytest.raises(TelemetryError, match="still coming in after the scrape timeout"):
        source.read()
    assert time.monotonic() - started < 0.5 + 0.5 + 2  # the timeout, one more socket wait, and slack for a busy CI


def test_a_body_shorter_than_its_content_length_is_a_failed_scrape(exporter, clock):
    exporter.serve('firstline_cpu_pct{service="api"} 97\nfirstline_memory_pct{service="web"} 4', announce=200)
    with pytest.raises(TelemetryError, match=r"IncompleteRead\(\d+ bytes read, \d+ more expected\)"):
        ScrapeSource(exporter.url, TOPOLOGY, timeout_s=5, clock=clock).read()


@pytest.mark.parametrize("cut", ['firstline_cpu_pct{service="api"} 9', 'firstline_cpu_pct{service="ap',
                                 "firstline_cpu_pct"])
def test_a_body_that_ends_inside_a_line_never_reads_that_line(exporter, clock, cut):
    # Without a Content-Length the body ends where the connection closed: "97" cut to "9" is no reading.
    exporter.serve('firstline_memory_pct{service="web"} 41\n' + cut, announce=-1)
    snapshot = ScrapeSource(exporter.url, TOPOLOGY, timeout_s=5, clock=clock).read()
    assert snapshot.metrics == {"web": {"memory_pct": 41.0}}
    assert [(p.reason, p.line) for p in snapshot.problems] == [(ProblemReason.CUT_SHORT, 2)]


def test_a_scraped_counter_is_a_rate_from_one_scrape_to_the_next(exporter, clock, tmp_path):
    path = tmp_path / "infrastructure.yaml"
    path.write_text("product: P\nmetrics:\n  jobs_failed: {unit: per_s, worse: above, type: counter, min: 0}\n"
                    "services:\n  worker:\n    metrics:\n      jobs_failed: {baseline: 0, limit: 1}\n"
                    "  api:\n    metrics:\n      jobs_failed: {baseline: 0, limit: 1}\n", encoding="utf-8")
    topology = load_topology(path)
    source = ScrapeSource(exporter.url, topology, timeout_s=5, clock=clock)
    readings = []
    for total in (1000, 1030, 4):  # the last one after a restart of the worker
        exporter.serve('# TYPE firstline_jobs_failed counter\n'
                       f'firstline_jobs_failed_total{{service="worker"}} {total}\n'
                       'firstline_jobs_failed_total{service="api"} 7\n')
        snapshot = source.read()
        assert snapshot.problems == ()
        readings.append(dict(snapshot.metrics))
        clock.advance(15)
    assert readings == [{}, {"worker": {"jobs_failed": pytest.approx(30 / 15)}, "api": {"jobs_failed": 0.0}},
                        {"worker": {"jobs_failed": pytest.approx((30 + 4) / 30)}, "api": {"jobs_failed": 0.0}}]


class Stack:
    """The monitor, detector, healer and ledger on a scrape of `exporter`, with a manual clock."""

    def __init__(self, tmp_path, rules, exporter: Exporter, clock: ManualClock) -> None:
        self.clock = clock
        self.store = DuckDBStore(tmp_path / "stack.duckdb", clock)
        self.ledger = HealingLedger(self.store)
        self.events = []
        infrastructure = SimulatedInfrastructure(TOPOLOGY, 7, clock)  # only runs the actions
        policy = SafetyPolicy(verify_timeout_s=300)
        router = AdapterRouter(SimulatedAdapter(infrastructure), {}, TOPOLOGY)
        actuator = Actuator(router, self.ledger, TOPOLOGY, policy, infrastructure.observe, clock,
                            on_event=self.events.append)
        healer = Healer(TOPOLOGY, rules, actuator, self.ledger, policy, clock, on_event=self.events.append)
        self.detector = Detector(TOPOLOGY, DetectionConfig())
        source = ScrapeSource(exporter.url, TOPOLOGY, timeout_s=5, clock=clock)
        self.monitor = Monitor(source, self.detector, healer, self.ledger, 15, clock)

    def ticks(self, count: int):
        reports = []
        for _ in range(count):
            self.clock.advance(15)
            reports.append(self.monitor.tick())
        return reports

    def stored(self, service: str, metric: str) -> list[float]:
        return [v for (v,) in self.store.execute(
            "SELECT value FROM telemetry WHERE service = ? AND metric = ? ORDER BY observed_at", (service, metric))]

    def close(self) -> None:
        self.store.close()


HEALTHY = ('firstline_memory_pct{service="api"} 48\nfirstline_cpu_pct{service="api"} 35\n'
           'firstline_memory_pct{service="web"} 41\nfirstline_deployed_version{service="web"} 311\n')


@pytest.mark.parametrize(("latency", "reason", "detail"), [
    ("+Inf", "not_finite", "+Inf is not a finite number"),
    ("NaN", "not_finite", "NaN is not a finite number"),
    ("1e300", "out_of_range", "1e+300 is above the physical maximum 8.64e+07 of latency_p95_ms"),
    ("-250", "out_of_range", "-250 is below the physical minimum 0 of latency_p95_ms"),
])
def test_a_broken_latency_upstream_does_not_stop_the_database_from_being_fixed(tmp_path, rules, exporter, clock,
                                                                                 caplog, latency, reason, detail):
    exporter.serve(f'firstline_latency_p95_ms{{service="web"}} {latency}\n'
                   'firstline_slow_queries{service="database"} 30\n')
    stack = Stack(tmp_path, rules, exporter, clock)
    with caplog.at_level(logging.INFO, logger="firstline.monitor"):
        reports = stack.ticks(4)
        assert all(r.error is None for r in reports)
        attempts = [(a.action, a.target) for r in reports for a in r.attempts]
        assert attempts == [("kill_slow_queries", "database")]
        for report in reports:
            [problem] = report.problems
            assert (problem.kind, problem.service, problem.metric, problem.reason) == (
                SignalKind.TELEMETRY, "web", "latency_p95_ms", reason)
            assert repr(problem.value) == repr(float(latency)) and not problem.actionable
            assert problem not in report.signals  # never handed to the healer
        # Reported when it appears, not on every tick: one warning, one event.
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "telemetry problem" in r.message]
        assert len(warnings) == 1 and "web latency_p95_ms" in warnings[0].message
        assert [e.summary for e in stack.events if e.kind == "telemetry_problem"] == [
            f"web latency_p95_ms: sample dropped ({reason}): {detail} (line 1)"]
        assert stack.stored("web", "latency_p95_ms") == [] and stack.stored("database", "slow_queries") == [30.0] * 4
        assert stack.detector.latest("web", "latency_p95_ms") is None
        assert stack.store.execute("SELECT count(*) FROM signals WHERE service = 'web'") == [(0,)]
        # Kept for the operator: one row while it lasts, with the value as it came.
        (kept,) = stack.ledger.telemetry_problems()
        assert (kept["service"], kept["metric"], kept["reason"], kept["ended_at"]) == (
            "web", "latency_p95_ms", reason, None)
        assert kept["value"] == {"+Inf": "+Inf", "NaN": "NaN"}.get(latency, repr(float(latency)))
        # The exporter is fixed: the problem is over, and said so once.
        exporter.serve('firstline_latency_p95_ms{service="web"} 230\nfirstline_slow_queries{service="database"} 1\n')
        assert all(r.problems == [] for r in stack.ticks(2))
        assert sum("telemetry problem over: web latency_p95_ms" in r.message for r in caplog.records) == 1
        (ended,) = stack.ledger.telemetry_problems()
        assert ended["ended_at"] is not None and stack.ledger.telemetry_problems(open_only=True) == []
    stack.close()


def test_a_problem_that_lasts_keeps_one_row_with_its_latest_value_and_detail(tmp_path, rules, exporter, clock):
    stack = Stack(tmp_path, rules, exporter, clock)
    for latency in ("-5", "-70", "NaN"):
        exporter.serve(f'firstline_latency_p95_ms{{service="web"}} {latency}\n' + HEALTHY)
        stack.ticks(1)
    rows = stack.ledger.telemetry_problems()
    assert [(r["reason"], r["value"], r["ended_at"] is None) for r in rows] == [
        ("not_finite", "NaN", True), ("out_of_range", "-70.0", False)]
    assert rows[1]["detail"].startswith("-70 is below the physical minimum 0")  # the latest wording, not -5's
    assert rows[1]["first_seen"] < rows[1]["last_seen"]
    stack.close()


def test_a_line_with_no_number_keeps_no_value(tmp_path, rules, exporter, clock):
    stack = Stack(tmp_path, rules, exporter, clock)
    exporter.serve('firstline_latency_p95_ms{service="web"} fast\n' + HEALTHY)
    stack.ticks(1)
    (row,) = stack.ledger.telemetry_problems()
    assert (row["reason"], row["value"]) == ("malformed", None)
    stack.close()


def test_an_infinite_version_no_longer_blinds_the_monitor(tmp_path, rules, exporter, clock):
    exporter.serve('firstline_deployed_version{service="api"} +Inf\n' + HEALTHY)
    stack = Stack(tmp_path, rules, exporter, clock)
    [report] = stack.ticks(1)
    assert report.error is None and report.snapshot is not None
    assert report.snapshot.versions == {"web": 311}
    assert stack.stored("api", "memory_pct") == [48.0] and stack.stored("web", "memory_pct") == [41.0]
    assert [(p.service, p.metric, p.reason) for p in report.problems] == [("api", "deployed_version", "not_finite")]
    stack.close()


@pytest.mark.parametrize("bad", ['firstline_memory_pct{service="api"} -5', 'firstline_error_rate{service="api"} 7.5',
                                 'firstline_cpu_pct{service="api"} inf', 'firstline_cpu_pct{service="api"} -inf'])
def test_impossible_values_are_neither_stored_nor_past_any_limit(tmp_path, rules, exporter, clock, bad):
    exporter.serve(bad + '\nfirstline_memory_pct{service="web"} 41\n')
    stack = Stack(tmp_path, rules, exporter, clock)
    reports = stack.ticks(4)
    assert not any(s.kind is SignalKind.THRESHOLD for r in reports for s in r.signals)
    assert [a for r in reports for a in r.attempts] == []
    assert stack.store.execute("SELECT count(*) FROM telemetry WHERE service = 'api'") == [(0,)]
    assert stack.store.execute("SELECT count(*) FROM signals") == [(0,)]
    assert all(len(r.problems) == 1 and r.problems[0].service == "api" for r in reports)
    stack.close()


def test_a_source_that_stays_down_is_logged_when_it_fails_now_and_then_and_when_it_is_back(tmp_path, rules, exporter,
                                                                                           clock, caplog):
    """A warning each tick filled the log (240 an hour at 15 s); now: once, a reminder every ten minutes, and
    once when it can be read again."""
    from engine.healing.monitor import OUTAGE_REMINDER_S

    stack = Stack(tmp_path, rules, exporter, clock)
    exporter.serve(b"internal error", status=500)
    with caplog.at_level(logging.INFO, logger="firstline.monitor"):
        reports = stack.ticks(int(OUTAGE_REMINDER_S / 15) + 2)  # ten and a half minutes of 15 s ticks
        assert all(r.error is not None for r in reports)
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 2 and "500" in warned[0] and "(still, for 60" in warned[1]
        exporter.serve(HEALTHY)
        assert stack.ticks(2)[-1].error is None
        back = [r.getMessage() for r in caplog.records if "readable again" in r.getMessage()]
        assert back == [f"telemetry: scrape readable again after {15 * (len(reports)):.0f} s ({len(reports)} failed "
                        "reads)"]
        assert stack.monitor.last_error is None
    stack.close()
