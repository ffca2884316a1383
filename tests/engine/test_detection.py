import pytest

from core.settings import PROJECT_ROOT
from engine.healing.detection import DetectionConfig, Detector, SignalKind, SignalState
from engine.healing.scenarios import EPOCH, SimClock
from engine.infra.samples import Snapshot
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import SimulationSource
from engine.infra.topology import load_topology
from engine.infra.trends import least_squares

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")
LIMIT = TOPOLOGY.services["api"].limits["memory_pct"]  # 90


def feed(detector, values, metric="memory_pct", service="api", step=15.0, start=EPOCH, versions=None):
    """Feed one metric's values, one snapshot per step; returns the signals after each snapshot."""
    out = []
    for i, value in enumerate(values):
        snapshot = Snapshot(start + i * step, {service: {metric: value}}, versions or {})
        out.append(detector.update(snapshot))
    return out


def of(signals, kind):
    return [s for s in signals if s.kind is kind]


def test_least_squares_is_predict_linear():
    # Times relative to now: the intercept is the fitted value now, the slope is per second.
    fit = least_squares([(100.0, 10.0), (110.0, 20.0), (120.0, 30.0)], now=120.0)
    assert fit.slope == pytest.approx(1.0) and fit.intercept == pytest.approx(30.0)
    assert fit.eta(limit=90.0, worse_below=False) == pytest.approx(60.0)
    assert fit.eta(limit=5.0, worse_below=True) is None  # rising values never reach a lower limit
    assert least_squares([(1.0, 5.0)], now=1.0) is None
    flat = least_squares([(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)], now=2.0)
    assert flat.slope == 0 and flat.eta(10.0, False) is None


def test_a_breach_is_soft_until_confirmed_then_hard():
    detector = Detector(TOPOLOGY, DetectionConfig(confirm_checks=3, predictive=False))
    states = [[s.state for s in of(signals, SignalKind.THRESHOLD)] for signals in feed(detector, [50, 95, 95, 95, 50])]
    assert states == [[], [SignalState.SOFT], [SignalState.SOFT], [SignalState.HARD], []]


def test_a_rising_metric_is_predicted_before_it_crosses():
    detector = Detector(TOPOLOGY, DetectionConfig(confirm_checks=3, horizon_s=1800))
    values = [48 + 0.02 * 15 * i for i in range(60)]  # +0.02 %/s: reaches 90 after 35 minutes
    hard = [s for signals in feed(detector, values) for s in of(signals, SignalKind.TREND) if s.actionable]
    assert hard, "the trend was never confirmed"
    first = hard[0]
    assert first.value < LIMIT and first.eta_s <= 1800
    assert first.eta_s == pytest.approx((LIMIT - first.value) / 0.02, rel=0.05)


def test_a_trend_beyond_the_horizon_is_not_acted_on():
    detector = Detector(TOPOLOGY, DetectionConfig(horizon_s=600))
    values = [48 + 0.005 * 15 * i for i in range(60)]  # 90 is hours away
    assert not [s for signals in feed(detector, values) for s in signals if s.actionable]


def test_a_jump_is_an_anomaly_long_before_the_limit():
    detector = Detector(TOPOLOGY, DetectionConfig(confirm_checks=2))
    base = [0.003 * (1 + 0.02 * (-1) ** i) for i in range(20)]
    signals = feed(detector, [*base, 0.008, 0.0081, 0.0082], metric="error_rate")
    anomalies = of(signals[-1], SignalKind.ANOMALY)
    assert anomalies and anomalies[0].actionable and anomalies[0].value < 0.02
    assert not any(of(s, SignalKind.ANOMALY) for s in signals[:20])


def test_the_threshold_baseline_sees_neither_trends_nor_anomalies():
    detector = Detector(TOPOLOGY, DetectionConfig(predictive=False))
    values = [48 + 0.02 * 15 * i for i in range(60)]
    kinds = {s.kind for signals in feed(detector, values) for s in signals}
    assert kinds <= {SignalKind.THRESHOLD}


def test_a_flapping_metric_is_not_acted_on():
    detector = Detector(TOPOLOGY, DetectionConfig(confirm_checks=1, predictive=False))
    signals = feed(detector, [95 if i % 2 else 50 for i in range(30)])
    late = [s for batch in signals[20:] for s in batch]
    assert late and all(s.state is SignalState.FLAPPING and not s.actionable for s in late)
    # Once it stays put, flapping ends (the low threshold) and the breach is acted on again.
    steady = feed(detector, [95] * 25, start=EPOCH + 30 * 15)
    assert any(s.actionable for s in steady[-1])


def test_a_new_version_is_a_deploy_signal_while_it_is_recent():
    detector = Detector(TOPOLOGY, DetectionConfig(deploy_window_s=60))
    feed(detector, [50], versions={"api": 7})
    signals = feed(detector, [50], versions={"api": 8}, start=EPOCH + 15)[0]
    deploy = of(signals, SignalKind.DEPLOY)
    assert deploy and deploy[0].service == "api" and deploy[0].value == 8 and not deploy[0].actionable
    later = feed(detector, [50], versions={"api": 8}, start=EPOCH + 120)[0]
    assert not of(later, SignalKind.DEPLOY)


def test_settled_needs_samples_then_judges_the_return():
    detector = Detector(TOPOLOGY, DetectionConfig())
    feed(detector, [80, 81, 82, 83])
    acted = EPOCH + 3 * 15
    calm = [48 + 0.5 * (-1) ** i for i in range(12)]
    feed(detector, calm[:3], start=acted + 15)
    assert detector.settled("api", "memory_pct", since=acted) is None  # too few samples yet
    feed(detector, calm[3:], start=acted + 60)
    assert detector.settled("api", "memory_pct", since=acted) is True
    still_rising = Detector(TOPOLOGY, DetectionConfig())
    feed(still_rising, [60 + 0.05 * 15 * i for i in range(12)])
    assert still_rising.settled("api", "memory_pct", since=EPOCH) is False


def test_a_value_repeated_by_a_slow_source_is_not_new_evidence():
    detector = Detector(TOPOLOGY, DetectionConfig())
    # Read every second from a source that changes every 15 s: as quiet as reading it every 15 s.
    values = [47 + 3 * (i // 15 % 2) for i in range(600)]
    signals = feed(detector, values, step=1.0)
    assert not any(signals) and not detector.suspects()


def test_an_hour_of_healthy_telemetry_raises_nothing():
    clock = SimClock()
    source = SimulationSource(SimulatedInfrastructure(TOPOLOGY, seed=11, clock=clock))
    detector = Detector(TOPOLOGY, DetectionConfig())
    for tick in range(240):
        clock.now = EPOCH + tick * 15
        assert detector.update(source.read()) == []
