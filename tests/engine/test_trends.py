import pytest

from core.settings import PROJECT_ROOT
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import load_topology
from engine.infra.trends import STEP_S, WINDOW_S, slope, trend
from tests.conftest import ManualClock

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")


def test_slope_is_the_least_squares_fit():
    assert slope([(0, 1.0), (60, 2.0), (120, 3.0)]) == pytest.approx(1 / 60)
    assert slope([(0, 5.0)]) == 0.0


@pytest.mark.parametrize(("values", "limit", "worse", "direction", "to_limit"), [
    ([50, 53, 56, 59, 62], 90, "above", "rising", 560.0),  # 3 a minute, 28 to go
    ([0.9, 0.87, 0.84, 0.81, 0.78], 0.75, "below", "falling", 60.0),
    ([50, 53, 56, 59, 62], 40, "below", "rising", None),  # moving away from its limit
    ([50, 51, 50, 49, 50], 90, "above", "steady", None),
])
def test_trend_and_time_to_limit(values, limit, worse, direction, to_limit):
    samples = [(i * 60.0, float(v)) for i, v in enumerate(values)]
    found = trend(samples, limit, worse, unhealthy=False)
    assert found.direction == direction
    assert found.time_to_limit_s == (pytest.approx(to_limit) if to_limit is not None else None)


def test_an_unhealthy_metric_is_at_its_limit_now():
    assert trend([(0, 95.0), (60, 96.0)], 90, "above", unhealthy=True).time_to_limit_s == 0.0


def test_a_memory_leak_in_the_simulation_rises_towards_its_limit():
    clock = ManualClock(1_000_000.0)
    infrastructure = SimulatedInfrastructure(TOPOLOGY, clock=clock)
    service = infrastructure.inject("memory_leak")
    clock.now += 15 * 60
    samples = infrastructure.recent(WINDOW_S, STEP_S)
    assert len(samples) == 11 and samples[-1][0] == clock.now
    series = [(t, values[service]["memory_pct"]) for t, values in samples]
    found = trend(series, TOPOLOGY.services[service].limits["memory_pct"], "above", unhealthy=False)
    assert found.direction == "rising" and found.slope_per_min == pytest.approx(1.5, abs=0.3)
    assert 0 < found.time_to_limit_s < 1800
    healthy = [(t, values["api"]["memory_pct"]) for t, values in samples]
    assert trend(healthy, 90, "above", unhealthy=False).direction == "steady"
