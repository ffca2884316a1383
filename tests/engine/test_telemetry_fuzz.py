"""The exposition reader under hypothesis: whatever a scrape body holds (bounded in size), reading it neither
raises nor hangs, and gives a snapshot every value of which its declaration allows, plus the problems found.
And line order never changes what is read."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import TelemetryError
from core.settings import PROJECT_ROOT
from engine.infra.prometheus_text import MAX_PROBLEMS, parse_exposition, read_exposition
from engine.infra.rates import CounterRates
from engine.infra.samples import ProblemReason
from engine.infra.topology import load_topology

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")
BOUNDED = settings(max_examples=300, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])

NAMES = [*sorted(TOPOLOGY.metrics), "deployed_version", "mood"]
SUFFIXES = ["", "", "", "_total", "_bucket", "_count", "_sum", "_created"]
SERVICES = [*sorted(TOPOLOGY.services), "moon", "", 'a"pi', "api\\"]
WORDS = ["+Inf", "-Inf", "Inf", "inf", "NaN", "nan", "97%", "", "1e400", "-1e400", "0x10", "1_000", "1" + "0" * 330,
         "--1", "1e", ".", "-0", "4.2e-7", "3 1700000000000", "5 # {trace_id=\"a\"} 1.0"]

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
label_values = st.one_of(st.sampled_from(SERVICES), st.text(max_size=10))
labels = st.dictionaries(st.sampled_from(["service", "instance", "le", "quantile", "job", "bad label", ""]),
                         st.one_of(label_values, st.sampled_from(["+Inf", "0.95", "100", "x"])), max_size=4)


@st.composite
def sample_lines(draw) -> str:
    name = draw(st.one_of(st.sampled_from(NAMES).map(lambda n: "firstline_" + n), st.sampled_from(["cpu", "up"])))
    name += draw(st.sampled_from(SUFFIXES))
    pairs = draw(labels)
    inner = ",".join(f'{k}="{v}"' for k, v in pairs.items())
    body = f"{name}{{{inner}}}" if pairs or draw(st.booleans()) else name
    gap = draw(st.sampled_from([" ", "  ", "\t", ""]))
    return f"{body}{gap}{draw(values)}"


type_lines = st.builds(lambda n, s, t: f"# TYPE firstline_{n}{s} {t}", st.sampled_from(NAMES),
                       st.sampled_from(SUFFIXES), st.sampled_from(["counter", "gauge", "histogram", "summary",
                                                                   "untyped", "bogus", ""]))
lines = st.one_of(sample_lines(), sample_lines(), type_lines, st.just("# HELP firstline_cpu_pct x"),
                  st.text(max_size=60), st.just(""), st.just("\ufeff"))
bodies = st.builds(lambda bom, ls, end: bom + end.join(ls), st.sampled_from(["", "\ufeff"]),
                   st.lists(lines, max_size=40), st.sampled_from(["\n", "\r\n"]))


def valid(snapshot) -> None:
    for service, values_ in snapshot.metrics.items():
        assert service in TOPOLOGY.services
        for metric, value in values_.items():
            assert metric in TOPOLOGY.services[service].limits
            assert type(value) is float and math.isfinite(value)
            assert TOPOLOGY.metrics[metric].outside(value) is None
    for service, release in snapshot.versions.items():
        assert service in TOPOLOGY.services and type(release) is int and release >= 0
    assert len(snapshot.problems) <= MAX_PROBLEMS + 1
    for problem in snapshot.problems:
        assert isinstance(problem.reason, ProblemReason) and problem.describe()


@BOUNDED
@given(bodies)
def test_any_text_gives_a_valid_snapshot_and_its_problems(text):
    valid(read_exposition(text, TOPOLOGY, 0.0))
    try:
        valid(parse_exposition(text, TOPOLOGY, 0.0))
    except TelemetryError as error:
        assert "no firstline_" in str(error)


@BOUNDED
@given(st.binary(max_size=2000), st.binary(max_size=200))
def test_any_bytes_give_a_valid_snapshot(junk, more):
    valid(read_exposition(junk, TOPOLOGY, 0.0))
    valid(read_exposition(b'\xef\xbb\xbffirstline_cpu_pct{service="api"} 5\n' + junk + b"\n" + more, TOPOLOGY, 0.0,
                          max_bytes=1000))


@BOUNDED
@given(st.lists(bodies, min_size=2, max_size=4), st.lists(st.floats(0, 600), min_size=4, max_size=4))
def test_consecutive_reads_with_counter_history_stay_valid(texts, gaps):
    rates = CounterRates()
    at = 1_700_000_000.0
    for text, gap in zip(texts, gaps, strict=False):
        at += gap
        valid(read_exposition(text, TOPOLOGY, at, rates=rates))


@BOUNDED
@given(st.lists(sample_lines(), max_size=30), st.randoms(use_true_random=False))
def test_line_order_never_changes_what_is_read(samples, random):
    shuffled = list(samples)
    random.shuffle(shuffled)
    first, second = (read_exposition("\n".join(ls), TOPOLOGY, 0.0) for ls in (samples, shuffled))
    assert first.metrics == second.metrics and first.versions == second.versions
    assert {p.key for p in first.problems} == {p.key for p in second.problems} or (
        len(first.problems) > MAX_PROBLEMS)
