"""Telemetry samples are checked against their declarations: finite, in their physical range, whole where they
must be, of the declared type (counters as rates, histograms at a quantile), one value per service by a declared
rule, and one broken line never hides the others. Every dropped sample is reported with service, metric, value
and reason. Pure reads at given times; the loopback scrape and the monitor have files of their own."""

from __future__ import annotations

import itertools
import math

import pytest

from core.errors import ConfigurationError, TelemetryError
from core.settings import PROJECT_ROOT
from engine.healing.detection import DetectionConfig, Detector, SignalKind, SignalState, problem_signals
from engine.infra.prometheus_text import parse_exposition, read_exposition
from engine.infra.rates import CounterRates, histogram_quantile
from engine.infra.samples import ProblemReason, Snapshot, checked
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import SimulationSource
from engine.infra.topology import load_topology
from engine.infra.trends import least_squares, slope, trend
from tests.conftest import ManualClock

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")
HEALTHY = 'firstline_memory_pct{service="auth"} 33\n'

# A second tenant whose metrics come as a counter, a histogram, and with other duplicate rules.
OTHER = """\
product: Test tenant
metrics:
  jobs_failed:      {unit: per_s, worse: above, type: counter, min: 0}
  request_ms:       {unit: ms, worse: above, type: histogram, quantile: 0.95, min: 0}
  temperature_c:    {unit: celsius, worse: above, min: -50, max: 150, duplicates: refuse}
  free_pct:         {unit: percent, worse: below, min: 0, max: 100}
  deployed_version: {unit: release, min: 0, whole: true, duplicates: refuse}
services:
  worker:
    metrics:
      jobs_failed:   {baseline: 0.01, limit: 0.5}
      request_ms:    {baseline: 120, limit: 800}
      temperature_c: {baseline: 40, limit: 85}
      free_pct:      {baseline: 60, limit: 10}
"""


@pytest.fixture
def other(tmp_path):
    path = tmp_path / "infrastructure.yaml"
    path.write_text(OTHER, encoding="utf-8")
    return load_topology(path)


def read(text, topology=TOPOLOGY, at=0.0, rates=None):
    return read_exposition(text, topology, at, rates=rates)


def reported(snapshot):
    return {(p.service, p.metric, p.reason) for p in snapshot.problems}


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


# -- values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "service", "metric", "value", "reason"), [
    ('firstline_deployed_version{service="queue"} +Inf', "queue", "deployed_version", math.inf, "not_finite"),
    ('firstline_deployed_version{service="mail"} -1', "mail", "deployed_version", -1, "out_of_range"),
    ('firstline_deployed_version{service="cache"} 7.25', "cache", "deployed_version", 7.25, "not_whole"),
    ('firstline_deployed_version{service="web"} 1e400', "web", "deployed_version", math.inf, "not_finite"),
    ('firstline_deployed_version{service="web"} 1' + "0" * 320, "web", "deployed_version", math.inf, "not_finite"),
    ('firstline_queue_depth{service="queue"} -Inf', "queue", "queue_depth", -math.inf, "not_finite"),
    ('firstline_pool_used_pct{service="database"} NaN', "database", "pool_used_pct", math.nan, "not_finite"),
    ('firstline_cpu_pct{service="database"} 100.5', "database", "cpu_pct", 100.5, "out_of_range"),
    ('firstline_cache_hit_ratio{service="cache"} 1.01', "cache", "cache_hit_ratio", 1.01, "out_of_range"),
    ('firstline_failed_jobs{service="integrations"} -0.5', "integrations", "failed_jobs", -0.5, "out_of_range"),
    ('firstline_error_rate{service="mail"} 12', "mail", "error_rate", 12, "out_of_range"),
    ('firstline_latency_p95_ms{service="auth"} -3e2', "auth", "latency_p95_ms", -300, "out_of_range"),
])
def test_a_value_that_cannot_be_a_reading_is_dropped_and_reported(line, service, metric, value, reason):
    snapshot = read(HEALTHY + line + "\n")
    assert snapshot.metrics == {"auth": {"memory_pct": 33.0}}  # the healthy series is still read
    assert snapshot.versions == {}
    [problem] = snapshot.problems
    assert (problem.service, problem.metric, problem.reason) == (service, metric, reason)
    assert same(problem.value, value) and problem.line == 2


@pytest.mark.parametrize(("line", "service", "metric", "value"), [
    ('firstline_cpu_pct{service="api"} 0', "api", "cpu_pct", 0.0),
    ('firstline_cpu_pct{service="api"} 100', "api", "cpu_pct", 100.0),
    ('firstline_error_rate{service="api"} 1', "api", "error_rate", 1.0),
    ('firstline_cache_hit_ratio{service="cache"} 0.0', "cache", "cache_hit_ratio", 0.0),
    ('firstline_queue_depth{service="queue"} 1e6', "queue", "queue_depth", 1e6),
    ('firstline_latency_p95_ms{service="web"} 12.5 1700000000000', "web", "latency_p95_ms", 12.5),
])
def test_the_edges_of_the_physical_range_are_readings(line, service, metric, value):
    snapshot = read(line)
    assert snapshot.metrics == {service: {metric: value}} and snapshot.problems == ()


def test_versions_are_whole_numbers_however_written():
    snapshot = read('firstline_deployed_version{service="api"} 1e3\nfirstline_deployed_version{service="web"} 0\n'
                    + HEALTHY)
    assert snapshot.versions == {"api": 1000, "web": 0} and snapshot.problems == ()
    assert all(type(v) is int for v in snapshot.versions.values())


def test_a_text_with_nothing_of_ours_is_a_telemetry_error_naming_what_was_wrong():
    with pytest.raises(TelemetryError, match=r"no firstline_.*1 problems: scrape: not Prometheus text.*'cpu 97%'"):
        parse_exposition("cpu 97%\nup 1\n", TOPOLOGY, 0.0)


def test_a_text_whose_samples_were_all_dropped_is_an_empty_snapshot_with_its_problems():
    snapshot = parse_exposition('firstline_deployed_version{service="api"} +Inf\n', TOPOLOGY, 0.0)
    assert (snapshot.metrics, snapshot.versions) == ({}, {})
    assert reported(snapshot) == {("api", "deployed_version", ProblemReason.NOT_FINITE)}


# -- the exposition, line by line --------------------------------------------------------------------


@pytest.mark.parametrize("bom", ["\ufeff", "\ufeff\ufeff"])
def test_a_byte_order_mark_is_stripped(bom):
    text = f'{bom}firstline_memory_pct{{service="api"}} 51\nfirstline_cpu_pct{{service="web"}} 20\n'
    assert read(text).metrics == {"api": {"memory_pct": 51.0}, "web": {"cpu_pct": 20.0}}
    data = text.encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf") and read(data).metrics == read(text).metrics
    # Two exporters' bodies run together: the second one's mark is at the start of a line, not of the body.
    joined = (text + f'{bom}firstline_queue_depth{{service="queue"}} 4\n').encode("utf-8")
    assert read(joined).metrics["queue"] == {"queue_depth": 4.0} and read(joined).problems == ()


@pytest.mark.parametrize("bad", [
    "cpu 97%",
    'node_load1{host="a} 0.5',
    'http_requests_total{code="200"}',
    "<html><body>502 Bad Gateway</body></html>",
    'firstline_memory_pct{service="web"} lots',
    'firstline_cpu_pct{service="web" 97',
    'go_gc_duration_seconds{quantile="0.5"} 1.2.3',
    "x" * 9000,
])
def test_one_malformed_line_is_one_problem_and_every_other_series_is_read(bad):
    text = f'firstline_cpu_pct{{service="api"}} 97\n{bad}\nfirstline_memory_pct{{service="api"}} 51\n'
    snapshot = read(text)
    assert snapshot.metrics == {"api": {"cpu_pct": 97.0, "memory_pct": 51.0}}
    [problem] = snapshot.problems
    assert problem.reason is ProblemReason.MALFORMED and problem.line == 2 and problem.value is None


def test_other_exporters_well_formed_lines_are_skipped_quietly():
    text = ('# HELP node_cpu_seconds_total Seconds.\n# TYPE node_cpu_seconds_total counter\n'
            'node_cpu_seconds_total{cpu="0",mode="idle"} 1.5e+06\nup 1\nprocess_start_time_seconds 1.7e9 123\n'
            'weird{label="with \\"quotes\\" and } braces"} NaN\n' + HEALTHY)
    snapshot = read(text)
    assert snapshot.metrics == {"auth": {"memory_pct": 33.0}} and snapshot.problems == ()


def test_a_line_that_is_not_utf8_is_one_problem():
    body = b'firstline_cpu_pct{service="api"} 22\nfirstline_cpu_pct{service="w\xffb"} 97\n' + HEALTHY.encode()
    snapshot = read(body)
    assert snapshot.metrics == {"api": {"cpu_pct": 22.0}, "auth": {"memory_pct": 33.0}}
    assert [(p.reason, p.line) for p in snapshot.problems] == [(ProblemReason.MALFORMED, 2)]


def test_a_body_too_large_is_read_to_its_last_whole_line_and_says_so():
    body = (HEALTHY + 'firstline_cpu_pct{service="api"} 97\n').encode()
    snapshot = read_exposition(body, TOPOLOGY, 0.0, max_bytes=len(HEALTHY) + 10)
    assert snapshot.metrics == {"auth": {"memory_pct": 33.0}}  # never a cut value: "97" would have been "9"
    assert reported(snapshot) == {("", "", ProblemReason.TOO_LARGE)}


def test_a_sample_of_a_declared_metric_without_a_service_is_reported():
    snapshot = read("firstline_cpu_pct 97\n" + HEALTHY)
    assert reported(snapshot) == {("", "cpu_pct", ProblemReason.NO_SERVICE)}


def test_unknown_services_and_metrics_are_still_ignored_quietly():
    text = ('firstline_cpu_pct{service="moon"} 500\nfirstline_mood{service="api"} -1\n'
            'firstline_slow_queries{service="web"} 9\n')
    snapshot = read(text + HEALTHY)
    assert snapshot.metrics == {"auth": {"memory_pct": 33.0}} and snapshot.problems == ()


def test_problems_are_capped_and_the_rest_counted():
    text = "".join(f"junk {i}%\n" for i in range(80)) + HEALTHY
    snapshot = read(text)
    assert len(snapshot.problems) == 51 and snapshot.problems[-1].reason is ProblemReason.TOO_MANY
    assert "30 more problems" in snapshot.problems[-1].detail


# -- types ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    '# TYPE firstline_failed_jobs_total counter\nfirstline_failed_jobs_total{service="queue"} 3\n'
    'firstline_failed_jobs_created{service="queue"} 1.7e9\n',  # prometheus-client, text format 0.0.4
    '# TYPE firstline_failed_jobs counter\nfirstline_failed_jobs_total{service="queue"} 3\n',  # OpenMetrics
    'firstline_failed_jobs_total{service="queue"} 3\n',  # no TYPE line
    '# TYPE firstline_failed_jobs counter\nfirstline_failed_jobs{service="queue"} 3\n',  # a counter without _total
])
def test_a_counter_where_a_gauge_is_declared_is_reported_not_read(text):
    snapshot = read(text + HEALTHY)
    assert snapshot.metrics == {"auth": {"memory_pct": 33.0}}
    [problem] = snapshot.problems
    assert (problem.service, problem.metric, problem.reason) == ("queue", "failed_jobs", ProblemReason.WRONG_TYPE)
    assert "declared a gauge" in problem.detail and "counter" in problem.detail


HISTOGRAM = """\
# TYPE firstline_latency_p95_ms histogram
firstline_latency_p95_ms_bucket{service="web",le="100"} 3
firstline_latency_p95_ms_bucket{service="web",le="+Inf"} 10
firstline_latency_p95_ms_count{service="web"} 10
firstline_latency_p95_ms_sum{service="web"} 1234
"""


@pytest.mark.parametrize("text", [
    HISTOGRAM,
    HISTOGRAM.split("\n", 1)[1],  # the same samples without a TYPE line
    'firstline_latency_p95_ms_count{service="web"} 10\nfirstline_latency_p95_ms_sum{service="web"} 1234\n',
    '# TYPE firstline_latency_p95_ms summary\nfirstline_latency_p95_ms{service="web",quantile="0.95"} 180\n'
    'firstline_latency_p95_ms_count{service="web"} 10\n',
])
def test_a_histogram_or_summary_where_a_gauge_is_declared_is_refused_by_name(text):
    snapshot = read('firstline_latency_p95_ms{service="api"} 140\n' + text)
    assert snapshot.metrics == {"api": {"latency_p95_ms": 140.0}}  # web's p95 is not its _count, nor anything
    [problem] = snapshot.problems  # once per series, however many of its lines
    assert (problem.service, problem.metric, problem.reason) == ("web", "latency_p95_ms", ProblemReason.WRONG_TYPE)


def test_a_counter_is_read_as_a_rate_per_second_and_a_reset_counts_from_zero(other):
    rates = CounterRates()

    def at(t, value):
        return read(f'# TYPE firstline_jobs_failed counter\nfirstline_jobs_failed_total{{service="worker"}} {value}\n'
                    f'firstline_jobs_failed_created{{service="worker"}} 1.6e9\n', other, t, rates)

    first = at(1000.0, 100)
    assert first.metrics == {} and first.problems == ()  # one reading is no rate yet
    assert at(1060.0, 130).metrics == {"worker": {"jobs_failed": pytest.approx(0.5)}}
    # The worker restarted: 130 -> 6 is 6 new failures, not -124. (30 + 6) over 120 s.
    assert at(1120.0, 6).metrics == {"worker": {"jobs_failed": pytest.approx(0.3)}}
    # Readings older than the window no longer count: 1060 is the oldest kept at 1400 (one at or before 1100).
    assert at(1400.0, 6).metrics == {"worker": {"jobs_failed": pytest.approx(6 / 340)}}


def test_counter_rates_from_readers_that_overlap_or_a_clock_that_jumps_back():
    rates = CounterRates(window_s=300, min_span_s=5)
    assert rates.rate("k", 10, 100.0) is None
    assert rates.rate("k", 20, 110.0) == pytest.approx(1.0)
    # A second reader that took its time: an older reading is not a reset, and the rate stands.
    assert rates.rate("k", 15, 105.0) == pytest.approx(1.0)
    assert rates.rate("k", 40, 120.0) == pytest.approx(1.5)
    assert rates.rate("k", 41, 120.0) == pytest.approx(31 / 20)  # the same instant read again: the newer value
    assert rates.rate("k", 50, -1000.0) is None  # the clock went back past the window: start again
    rates.forget(before=0.0)
    assert rates.rate("k", 60, 10.0) is None  # forgotten, so its first reading again


def test_a_counter_that_goes_negative_or_repeats_itself_is_refused(other):
    rates = CounterRates()
    text = 'firstline_jobs_failed_total{service="worker"} 10\n'
    read(text, other, 0.0, rates)
    negative = read('firstline_jobs_failed_total{service="worker"} -4\n', other, 60.0, rates)
    assert negative.metrics == {} and reported(negative) == {("worker", "jobs_failed", ProblemReason.OUT_OF_RANGE)}
    twice = read(text + 'firstline_jobs_failed_total{service="worker"} 12\n', other, 120.0, rates)
    assert twice.metrics == {} and reported(twice) == {("worker", "jobs_failed", ProblemReason.DUPLICATE)}


def test_a_gauge_where_a_counter_is_declared_is_reported(other):
    snapshot = read('firstline_jobs_failed{service="worker"} 0.2\n', other)
    assert snapshot.metrics == {} and reported(snapshot) == {("worker", "jobs_failed", ProblemReason.WRONG_TYPE)}


def bucket_text(counts):
    return "# TYPE firstline_request_ms histogram\n" + "".join(
        f'firstline_request_ms_bucket{{service="worker",le="{le}"}} {count}\n' for le, count in counts.items()) + (
        f'firstline_request_ms_count{{service="worker"}} {counts["+Inf"]}\n'
        'firstline_request_ms_sum{service="worker"} 99999\n')


def test_a_histogram_is_read_at_its_quantile_from_the_rates_of_its_buckets(other):
    rates = CounterRates()
    assert read(bucket_text({"100": 50, "500": 90, "1000": 100, "+Inf": 100}), other, 0.0, rates).metrics == {}
    # In the last minute: 100 requests, 20 under 100 ms, 80 under 500 ms, 100 under 1 s. The 95th is the 95th
    # request: in the 500..1000 bucket, 15 of its 20 in: 500 + 500 * 15 / 20 = 875.
    later = read(bucket_text({"100": 70, "500": 170, "1000": 200, "+Inf": 200}), other, 60.0, rates)
    assert later.metrics == {"worker": {"request_ms": pytest.approx(875.0)}} and later.problems == ()


def test_a_summary_gives_the_declared_quantile_directly(other):
    text = ('# TYPE firstline_request_ms summary\nfirstline_request_ms{service="worker",quantile="0.5"} 90\n'
            'firstline_request_ms{service="worker",quantile="0.95"} 640\n'
            'firstline_request_ms_count{service="worker"} 9\n')
    assert read(text, other).metrics == {"worker": {"request_ms": 640.0}}


@pytest.mark.parametrize(("counts", "why"), [
    ({"100": 5, "500": 9}, "+Inf"),
    ({"100": 9, "500": 5, "+Inf": 9}, "fall"),
    ({"100": 5, "500": "NaN", "+Inf": 9}, "valid count"),
])
def test_a_broken_histogram_is_reported_not_read(other, counts, why):
    text = "".join(f'firstline_request_ms_bucket{{service="worker",le="{k}"}} {v}\n' for k, v in counts.items())
    snapshot = read(text, other)
    assert snapshot.metrics == {}
    assert any(p.reason is ProblemReason.BAD_HISTOGRAM and why in p.detail for p in snapshot.problems)


@pytest.mark.parametrize(("q", "buckets", "expected"), [
    (0.5, [(1.0, 10), (2.0, 20), (math.inf, 20)], 1.0),
    (0.95, [(1.0, 0), (2.0, 100), (math.inf, 100)], 1.95),
    (0.99, [(1.0, 50), (math.inf, 100)], 1.0),  # in +Inf: the highest finite bound
    (0.5, [(-1.0, 10), (math.inf, 10)], -1.0),
    (0.5, [(1.0, 0), (math.inf, 0)], None),  # nothing observed
    (0.5, [(1.0, 3)], None),  # no +Inf bucket
])
def test_histogram_quantile_as_prometheus_computes_it(q, buckets, expected):
    assert histogram_quantile(q, buckets) == (pytest.approx(expected) if expected is not None else None)


# -- several samples for one service --------------------------------------------------------------------


@pytest.mark.parametrize(("values", "metric", "service", "expected"), [
    ((97, 22), "cpu_pct", "web", 97.0),  # worse above: the highest
    ((0.4, 0.9, 0.7), "cache_hit_ratio", "cache", 0.4),  # worse below: the lowest
    ((120, 120.5, 119), "deployed_version", "api", 120),  # the release number: the highest whole one
])
def test_the_same_series_twice_is_resolved_by_the_rule_whatever_the_order(values, metric, service, expected):
    results = set()
    for order in itertools.permutations(values):
        text = "".join(f'firstline_{metric}{{service="{service}",instance="{service}-2"}} {v}\n' for v in order)
        snapshot = read(text + HEALTHY)
        found = snapshot.versions.get(service) if metric == "deployed_version" else snapshot.metrics[service][metric]
        results.add((found, frozenset(reported(snapshot))))
    assert len(results) == 1  # line order decides nothing
    [(found, problems)] = results
    assert found == expected and (service, metric, ProblemReason.DUPLICATE) in problems
    (said,) = [s.describe() for s in problem_signals(read(text + HEALTHY)) if s.reason == "duplicate"]
    assert said.startswith(f"{service} {metric}: samples disagree (duplicate): ")  # one of them may be read


def test_instances_of_a_service_give_its_worst_and_a_rolling_deploy_its_newest_release():
    text = ('firstline_cpu_pct{service="web",instance="web-1"} 31\n'
            'firstline_cpu_pct{service="web",instance="web-2"} 88\n'
            'firstline_cache_hit_ratio{service="cache",instance="a"} 0.93\n'
            'firstline_cache_hit_ratio{service="cache",instance="b"} 0.71\n'
            'firstline_deployed_version{service="api",instance="api-1"} 412\n'
            'firstline_deployed_version{service="api",instance="api-2"} 413\n')
    for lines in (text.splitlines(), text.splitlines()[::-1]):
        snapshot = read("\n".join(lines))
        assert snapshot.metrics == {"web": {"cpu_pct": 88.0}, "cache": {"cache_hit_ratio": 0.71}}
        assert snapshot.versions == {"api": 413} and snapshot.problems == ()  # instances are not duplicates


def test_a_metric_that_refuses_duplicates_reads_none_of_them(other):
    text = ('firstline_temperature_c{service="worker",instance="a"} 40\n'
            'firstline_temperature_c{service="worker",instance="b"} 91\n'
            'firstline_free_pct{service="worker",instance="a"} 60\n'
            'firstline_free_pct{service="worker",instance="b"} 8\n'
            'firstline_deployed_version{service="worker",instance="a"} 7\n'
            'firstline_deployed_version{service="worker",instance="b"} 8\n')
    snapshot = read(text, other)
    assert snapshot.metrics == {"worker": {"free_pct": 8.0}}  # worse below: the lowest
    assert snapshot.versions == {}
    assert reported(snapshot) == {("worker", "temperature_c", ProblemReason.AMBIGUOUS),
                                  ("worker", "deployed_version", ProblemReason.AMBIGUOUS)}
    agreeing = read(text.replace(" 91\n", " 40\n"), other)
    assert agreeing.metrics["worker"]["temperature_c"] == 40.0


def test_a_broken_duplicate_does_not_win_the_worst_value():
    text = 'firstline_cpu_pct{service="api"} +Inf\nfirstline_cpu_pct{service="api"} 41\n'
    snapshot = read(text)
    assert snapshot.metrics == {"api": {"cpu_pct": 41.0}}
    assert reported(snapshot) == {("api", "cpu_pct", ProblemReason.NOT_FINITE)}


# -- every other path that makes snapshots ----------------------------------------------------------


def test_the_simulated_source_goes_through_the_same_checks():
    clock = ManualClock()
    infrastructure = SimulatedInfrastructure(TOPOLOGY, seed=5, clock=clock)
    healthy = SimulationSource(infrastructure).read()
    assert healthy.problems == () and healthy.metrics["database"]["memory_pct"] < 100
    # Whatever the simulation hands over is checked like a scrape: a reading past what there is, dropped.
    reading = infrastructure.observe()
    reading["database"]["memory_pct"] = 101.2
    infrastructure.observe = lambda at=None: reading  # type: ignore[method-assign]
    snapshot = SimulationSource(infrastructure).read()
    assert "memory_pct" not in snapshot.metrics["database"]
    [problem] = snapshot.problems
    assert (problem.service, problem.metric, problem.reason) == ("database", "memory_pct", "out_of_range")
    assert problem.value == pytest.approx(101.2)


def test_a_snapshot_made_by_hand_is_checked_before_detection():
    raw = {"api": {"memory_pct": math.inf, "cpu_pct": -5.0, "error_rate": 7.5, "latency_p95_ms": 140},
           "moon": {"cpu_pct": 1.0}}
    snapshot = Snapshot(0.0, raw, {"api": 41.7, "web": 3})  # type: ignore[dict-item]
    clean = checked(snapshot, TOPOLOGY)
    assert clean.metrics == {"api": {"latency_p95_ms": 140.0}} and clean.versions == {"web": 3}
    assert {(p.metric, p.reason) for p in clean.problems} == {
        ("memory_pct", "not_finite"), ("cpu_pct", "out_of_range"), ("error_rate", "out_of_range"),
        ("deployed_version", "not_whole")}
    assert checked(clean, TOPOLOGY) == clean
    detector = Detector(TOPOLOGY, DetectionConfig(confirm_checks=1))
    for i in range(5):  # raw, as a hand-made source would hand it over: nothing past a limit is signalled
        signals = detector.update(Snapshot(float(i * 15), snapshot.metrics, snapshot.versions))
        assert signals == []
    assert detector.latest("api", "memory_pct") is None and detector.latest("api", "latency_p95_ms") == 140.0
    telemetry = problem_signals(clean)
    assert {s.kind for s in telemetry} == {SignalKind.TELEMETRY} and not any(s.actionable for s in telemetry)
    inf = next(s for s in telemetry if s.metric == "memory_pct")
    assert (inf.service, inf.value, inf.reason, inf.state) == ("api", math.inf, "not_finite", SignalState.SOFT)
    assert inf.describe() == "api memory_pct: sample dropped (not_finite): +Inf is not a finite number"


def test_trends_never_take_a_sample_that_is_not_a_finite_number():
    samples = [(0.0, 50.0), (60.0, math.inf), (120.0, 56.0), (180.0, math.nan), (240.0, 62.0)]
    assert slope(samples) == pytest.approx(slope([(0.0, 50.0), (120.0, 56.0), (240.0, 62.0)]))
    found = trend(samples, 90, "above", unhealthy=False)
    assert found.direction == "rising" and found.time_to_limit_s == pytest.approx(560.0)
    assert trend([(0.0, math.nan)], 90, "above", unhealthy=False).time_to_limit_s is None
    for huge in ([(0.0, 1e300), (60.0, -1e300), (120.0, 1e300)], [(0.0, 1.7e308), (1.0, -1.7e308)]):
        fit = least_squares(huge, huge[-1][0])  # squares past the largest float: no error, and no NaN
        assert fit is None or (math.isfinite(fit.slope) and math.isfinite(fit.intercept))
        eta = fit.eta(90, False) if fit else None
        assert eta is None or math.isfinite(eta)


# -- the declarations -----------------------------------------------------------------------------------


def test_every_metric_of_the_shipped_file_declares_its_physical_range():
    for spec in TOPOLOGY.metrics.values():
        assert spec.min is not None, spec.name
        if spec.unit in ("percent", "ratio"):
            assert (spec.min, spec.max) == (0, 100 if spec.unit == "percent" else 1), spec.name
    assert (TOPOLOGY.version.min, TOPOLOGY.version.whole, TOPOLOGY.version.duplicates) == (0, True, "highest")


@pytest.mark.parametrize(("change", "message"), [
    (("free_pct:      {baseline: 60, limit: 10}", "free_pct:      {baseline: 60, limit: 120}"),
     r"services\.worker\.metrics\.free_pct\.limit: 120 is above the physical maximum 100"),
    (("free_pct:         {unit: percent, worse: below,", "free_pct:         {unit: percent,"),
     r"metrics\.free_pct: `worse` is required"),
    (("type: histogram, quantile: 0.95,", "type: histogram,"), r"metrics\.request_ms\.quantile: a histogram"),
    (("{unit: per_s, worse: above, type: counter,", "{unit: per_s, worse: above, type: counter, quantile: 0.5,"),
     r"metrics\.jobs_failed\.quantile"),
    (("min: -50, max: 150", "min: 150, max: -50"), r"metrics\.temperature_c\.max: max -50 is not above min 150"),
    (("{baseline: 40, limit: 85}", "{baseline: .inf, limit: 85}"), r"temperature_c\.baseline"),
    (("type: counter", "type: rate"), r"metrics\.jobs_failed\.type"),
    (("whole: true, duplicates: refuse", "whole: true"), r"metrics\.deployed_version\.duplicates: `worst` needs"),
    (("  worker:\n    metrics:\n", "  worker:\n    metrics:\n      deployed_version: {baseline: 1, limit: 2}\n"),
     r"services\.worker\.metrics\.deployed_version: the release number has no limit"),
])
def test_a_declaration_that_cannot_hold_is_refused_with_its_line(tmp_path, change, message):
    old, new = change
    assert old in OTHER
    path = tmp_path / "infrastructure.yaml"
    path.write_text(OTHER.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message) as raised:
        load_topology(path)
    assert f"{path}:" in str(raised.value)


@pytest.mark.parametrize(("depends", "first", "chain"), [
    ({"web": ["api"], "api": ["db"], "db": ["web"]}, "web", "web -> api -> db -> web"),
    ({"web": [], "api": ["db"], "db": ["api"]}, "api", "api -> db -> api"),
    ({"web": ["web"], "api": [], "db": []}, "web", "web -> web"),
])
def test_a_dependency_cycle_is_refused_with_its_line_and_the_chain(tmp_path, depends, first, chain):
    lines = ["product: Cycles", "metrics:", "  cpu_pct: {unit: percent, worse: above, min: 0, max: 100}", "services:"]
    for name, on in depends.items():
        lines += [f"  {name}:", f"    depends_on: [{', '.join(on)}]", "    metrics:",
                  "      cpu_pct: {baseline: 20, limit: 90}"]
    path = tmp_path / "infrastructure.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as raised:
        load_topology(path)
    line = lines.index(f"  {first}:") + 2  # the `depends_on:` line under it, counted from 1
    assert f"{path}:{line}: services.{first}.depends_on: services depend on each other in a cycle: {chain}" \
        in str(raised.value)
    assert "(" not in str(raised.value).split("cycle:")[1]  # no Python tuples


@pytest.mark.parametrize("fault", ["memory_leak@database", "pool_exhaustion@database", "memory_leak@api"])
def test_a_simulated_fault_at_full_strength_stays_a_physical_reading(fault):
    """A fault pushes its metric past the limit, never past what it can be: a leak at full strength reads 100%, is
    seen as a fault, and is not dropped as a broken reading (it was 101.2% on the database)."""
    clock = ManualClock()
    infrastructure = SimulatedInfrastructure(TOPOLOGY, clock=clock)
    service = infrastructure.inject(fault, ramp_s=0)
    clock.advance(3600)
    metric = {"memory_leak": "memory_pct", "pool_exhaustion": "pool_used_pct"}[fault.split("@")[0]]
    snapshot = SimulationSource(infrastructure).read()
    assert snapshot.problems == ()
    assert TOPOLOGY.services[service].limits[metric] < snapshot.metrics[service][metric] <= 100
    for _, sample in infrastructure.recent(600, 60):
        assert all(value <= 100 for m, value in sample[service].items() if m.endswith("_pct"))
