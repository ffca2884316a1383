"""A telemetry problem's key is "the same problem" from one read to the next: it never holds a sample's value, a
timestamp or a count, so an exporter whose broken lines change their numbers on every scrape keeps the same keys
(one log line when they appear, one row each while they last), and two broken series still get two keys."""

from __future__ import annotations

import logging
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.infra.prometheus_text import MAX_PROBLEMS, read_exposition
from engine.infra.samples import ProblemReason, TelemetryProblem
from tests.engine.test_telemetry_scrape import HEALTHY, TOPOLOGY, Stack, exporter, rules  # noqa: F401 - fixtures

STARTED = 1_700_000_000.0


def broken(at: float, count: int = 60) -> str:
    """The tester's exporter: `count` lines whose value is the time of the scrape, then a stray `%`."""
    return "".join(f"bad_{i} {at + i / 7:.6f} %\n" for i in range(count))


def keys(text: str, at: float = 0.0) -> set[str]:
    return {p.key for p in read_exposition(text, TOPOLOGY, at).problems}


def malformed_key(line: str) -> str:
    [problem] = [p for p in read_exposition(HEALTHY + line + "\n", TOPOLOGY, 0.0).problems
                 if p.reason is ProblemReason.MALFORMED]
    return problem.key


# -- through the parser ---------------------------------------------------------------------------


def test_lines_whose_values_change_every_scrape_keep_their_keys():
    first, second = (read_exposition(HEALTHY + broken(at), TOPOLOGY, at) for at in (STARTED, STARTED + 15.123))
    assert [p.detail for p in first.problems] != [p.detail for p in second.problems]  # the values did change
    assert {p.key for p in first.problems} == {p.key for p in second.problems}
    assert len({p.key for p in first.problems}) == MAX_PROBLEMS + 1
    assert "malformed:bad_0" in {p.key for p in first.problems}
    assert "too_many" in {p.key for p in first.problems}
    for problem in first.problems:  # no value, no timestamp, no count: the only digits are the names'
        assert str(int(STARTED))[:6] not in problem.key and "%" not in problem.key


def test_a_problem_of_the_whole_body_is_keyed_on_its_reason_alone():
    # More problems counted into one: the count changes, the problem is the same.
    assert keys(broken(0.0, 60)) == keys(broken(0.0, 80)) == keys(broken(5.0, 51))
    assert keys(broken(0.0, 51)) - keys(broken(0.0, 50)) == {"too_many"}
    # A body cut inside a line: the line number changes with the body, the problem is the same.
    cut = [read_exposition((HEALTHY * n + 'firstline_cpu_pct{service="api"} 9').encode(), TOPOLOGY, 0.0)
           for n in (1, 3)]
    assert [[(p.reason, p.key) for p in s.problems] for s in cut] == [[(ProblemReason.CUT_SHORT, "cut_short")]] * 2
    large = read_exposition((HEALTHY * 40).encode(), TOPOLOGY, 0.0, max_bytes=100)
    assert [p.key for p in large.problems] == ["too_large"]


def test_a_problem_of_our_metric_is_keyed_on_reason_service_and_metric_never_its_value():
    for line in ('firstline_cpu_pct{service="api"} 101', 'firstline_cpu_pct{service="api"} 250',
                 'firstline_cpu_pct{service="api",instance="api-7"} 1e9'):
        assert keys(HEALTHY + line) == {"out_of_range:api:cpu_pct"}
    for values in ((40, 91), (12, 13)):  # the values are in the detail, not in the key
        text = "".join(f'firstline_deployed_version{{service="web",instance="{i}"}} {v}.5\n'
                       for i, v in enumerate(values))
        assert keys(text + HEALTHY) == {"not_whole:web:deployed_version"}


def test_a_problem_made_without_a_series_is_keyed_on_the_shape_of_its_detail():
    made = [TelemetryProblem("", "", None, ProblemReason.MALFORMED, f"junk {n} at {n * 1.5}") for n in (3, 40017)]
    assert made[0].key == made[1].key == "malformed:junk 0 at 0"


# -- through the monitor, on a loopback exporter -----------------------------------------------------


def test_the_monitor_keeps_one_row_per_broken_line_while_its_values_change(tmp_path, rules, exporter, clock, caplog):  # noqa: F811 - the fixtures imported above
    stack = Stack(tmp_path, rules, exporter, clock)
    rows = []
    with caplog.at_level(logging.INFO, logger="firstline.monitor"):
        for _ in range(5):
            served = clock.now
            exporter.serve(HEALTHY + broken(served))
            [report] = stack.ticks(1)
            assert report.error is None and len(report.problems) == MAX_PROBLEMS + 1
            rows.append(stack.store.execute("SELECT count(*) FROM telemetry_problems")[0][0])
        assert rows == [MAX_PROBLEMS + 1] * 5
        assert len(stack.ledger.telemetry_problems(open_only=True, limit=1000)) == MAX_PROBLEMS + 1
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "telemetry problem" in r.message]
        assert len(warnings) == MAX_PROBLEMS + 1  # on the first tick only
        assert not any("telemetry problem over" in r.message for r in caplog.records)
        # The latest detail is kept on the one row of each.
        latest = {r["key"]: r["detail"] for r in stack.ledger.telemetry_problems(limit=1000)}
        assert f"{served:.6f}" in latest["malformed:bad_0"]
        # The exporter is fixed: every one is over, said once each.
        exporter.serve(HEALTHY)
        stack.ticks(2)
        assert sum("telemetry problem over" in r.message for r in caplog.records) == MAX_PROBLEMS + 1
    assert stack.ledger.telemetry_problems(open_only=True) == []
    stack.close()


# -- the key of a broken line does not change when only its numbers change -------------------------------


numbers = st.one_of(st.integers(-(10**30), 10**30).map(str), st.floats().map(repr),
                    st.floats(0, 1e6).map(lambda f: f"{f:.3f}"))
NAMES = ["bad_0", "node_load1", "http_requests_total", "firstline_cpu_pct", "firstline_mood", "up", "a:b:c"]
LABELS = ["service", "instance", "le", "job", "host", "quantile"]
SERVICE_VALUES = ["web", "api", "moon", ""]
BREAKAGES = [" %", "%", " x", " 12 34 !", " 1.5.6", " # trailing"]
# Lines with no name at all; each {} is a number, never beside a letter, a digit or another number.
SHAPES = ["<html><body>{} Bad Gateway</body></html>", "-{} {}", "[{}] {}", "{{job=\"{}\"}} {} %", "{{ {}",
          "\"{}\" {} {}", "* {} / {} = ?"]


@st.composite
def named_lines(draw):
    """A line with a name and labels (values partly numbers), its value and maybe a timestamp, then broken; and
    the same line with other numbers."""
    name = draw(st.sampled_from(NAMES))
    names = draw(st.lists(st.sampled_from(LABELS), unique=True, max_size=4))
    fixed = {label: draw(st.sampled_from(SERVICE_VALUES)) for label in names if label == "service"}
    breakage = draw(st.sampled_from(BREAKAGES))
    stamped = draw(st.booleans())

    def render(figures: list[str], stamp: int) -> str:
        pairs = ",".join(f'{label}="{fixed.get(label, figures[i])}"' for i, label in enumerate(names))
        series = f"{name}{{{pairs}}}" if names else name
        return f"{series} {figures[-1]}{f' {stamp}' if stamped else ''}{breakage}"

    return [render(draw(st.lists(numbers, min_size=5, max_size=5)), draw(st.integers(0, 2**62))) for _ in range(2)]


@st.composite
def nameless_lines(draw):
    template = draw(st.sampled_from(SHAPES))
    slots = template.count("{}")
    return [template.format(*draw(st.lists(numbers, min_size=slots, max_size=slots))) for _ in range(2)]


@settings(max_examples=300, deadline=timedelta(seconds=2), suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(named_lines(), nameless_lines()))
def test_the_key_of_a_broken_line_does_not_change_when_only_its_numbers_do(pair):
    first, second = (malformed_key(line) for line in pair)
    assert first == second, pair
    assert len(first) <= len("malformed:") + 200


# -- two broken series are two problems -----------------------------------------------------------------


def test_distinct_broken_series_get_distinct_keys():
    lines = ['node_load1{host="a"} x', 'node_load1{host="a",job="b"} x', 'node_load5{host="a"} x',
             "node_load1 x", "bad_0 1 %", "bad_1 1 %", "bad_10 1 %", 'firstline_cpu_pct{service="web"} lots',
             'firstline_cpu_pct{service="api"} lots', 'firstline_cpu_pct{service="api",instance="1"} lots',
             'firstline_memory_pct{service="api"} lots', "<html>502</html>", "<body>502</body>"]
    found = [malformed_key(line) for line in lines]
    assert len(set(found)) == len(lines), found
    # Label values that are not a service we know are left out, whatever they hold: one series, one key.
    assert malformed_key('node_load1{host="a"} x') == malformed_key('node_load1{host="b-7f3a"} y')
    assert malformed_key('firstline_cpu_pct{service="x1"} lots') == malformed_key(
        'firstline_cpu_pct{service="x2"} lots') == "malformed:firstline_cpu_pct{service}"
    # One read with them all: as many problems, and as many keys.
    snapshot = read_exposition(HEALTHY + "\n".join(lines) + "\n", TOPOLOGY, 0.0)
    assert len({p.key for p in snapshot.problems}) == len(snapshot.problems) == len(lines)
