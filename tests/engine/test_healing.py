"""Self-healing end to end in simulated time: scenarios, verification, rollback, hand-off, time limits."""

import threading

import duckdb
import pytest

from core.settings import PROJECT_ROOT
from engine.actions.actuator import ActionRequest, Actuator
from engine.actions.adapters import AdapterRouter
from engine.actions.adapters.simulated import SimulatedAdapter
from engine.actions.adapters.webhook import WebhookAdapter
from engine.actions.catalogue import ACTIONS, action_targets
from engine.actions.safety import SafetyPolicy
from engine.decision.ruleengine import RuleEngine
from engine.healing.detection import DetectionConfig, Detector, Signal, SignalKind, SignalState
from engine.healing.healer import Healer
from engine.healing.monitor import Monitor
from engine.healing.scenarios import EPOCH, SCENARIOS, SimClock, run_scenario
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import SimulationSource
from engine.infra.topology import load_topology
from engine.store import DuckDBStore
from engine.store.healing import HealingLedger
from rules.loader import load_rules
from tests.conftest import make_settings
from tests.peers import HTTPPeer

NEEDS = {name: spec.needs for name, spec in ACTIONS.items()}
TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml", NEEDS)
FAULTS = [name for name in SCENARIOS if name != "healthy"]


@pytest.fixture(scope="module")
def rules() -> RuleEngine:
    return RuleEngine(load_rules([PROJECT_ROOT / "rules" / "builtin"], action_targets(TOPOLOGY)))


@pytest.mark.parametrize("scenario", FAULTS)
def test_every_fault_is_fixed_before_users_notice(scenario, rules, tmp_path):
    report = run_scenario(scenario, 60, 7, make_settings(tmp_path), TOPOLOGY, rules)
    assert report.prevented, report.timeline
    assert report.user_impact_s == 0
    assert report.fault_at_s < report.detected_at_s <= report.acted_at_s < report.would_hit_at_s
    assert report.recovered_at_s > report.acted_at_s
    assert report.false_actions == 0
    assert all(a["status"] == "succeeded" for a in report.actions)


@pytest.mark.parametrize("scenario", FAULTS)
def test_the_threshold_baseline_acts_only_after_users_are_hit(scenario, rules, tmp_path):
    report = run_scenario(scenario, 60, 7, make_settings(tmp_path), TOPOLOGY, rules, predictive=False)
    assert not report.prevented and report.user_impact_s > 0
    assert report.acted_at_s >= report.would_hit_at_s


def test_a_healthy_hour_takes_no_action(rules, tmp_path):
    report = run_scenario("healthy", 60, 7, make_settings(tmp_path), TOPOLOGY, rules)
    assert report.actions == [] and report.detected_at_s is None and report.user_impact_s == 0
    assert report.contract()["prevented"] is False


def test_the_same_seed_gives_the_same_run_and_another_seed_another(rules, tmp_path):
    settings = make_settings(tmp_path)
    first = run_scenario("memory_leak", 45, 3, settings, TOPOLOGY, rules).contract()
    assert first == run_scenario("memory_leak", 45, 3, settings, TOPOLOGY, rules).contract()
    assert first != run_scenario("memory_leak", 45, 4, settings, TOPOLOGY, rules).contract()


def test_dry_run_records_the_plan_and_changes_nothing(rules, tmp_path):
    report = run_scenario("slow_queries", 40, 7, make_settings(tmp_path, dry_run=True), TOPOLOGY, rules)
    assert report.actions and {a["status"] for a in report.actions} == {"dry_run"}
    assert report.recovered_at_s is None and report.user_impact_s > 0


def test_the_audit_trail_runs_from_signal_to_rule_to_action_to_verification(rules, tmp_path):
    audit = tmp_path / "audit.duckdb"
    run_scenario("cache_degradation", 40, 7, make_settings(tmp_path), TOPOLOGY, rules, audit=audit)
    with duckdb.connect(str(audit), read_only=True) as db:
        trail = db.execute(
            "SELECT s.service, s.metric, s.kind, r.rule, r.action, r.target, r.status, r.detail "
            "FROM remediations r JOIN signals s ON s.id = r.signal_id").fetchall()
        samples = db.execute("SELECT count(*) FROM telemetry").fetchone()[0]
    assert len(trail) == 1
    service, metric, kind, rule, action, target, status, detail = trail[0]
    assert (service, metric, action, target) == ("cache", "cache_hit_ratio", "rebuild_cache", "cache")
    assert kind in ("anomaly", "trend") and rule == "first_remedy_at_the_root_cause"
    assert status == "succeeded" and "verified" in detail
    assert samples > 100


# -- a stack built by hand, for the failure paths ---------------------------------------------------


class Stack:
    def __init__(self, tmp_path, rules, topology=TOPOLOGY, router=None, **policy):
        self.clock = SimClock()
        self.topology = topology
        self.infrastructure = SimulatedInfrastructure(topology, 7, self.clock)
        self.store = DuckDBStore(tmp_path / "stack.duckdb", self.clock)
        self.ledger = HealingLedger(self.store)
        self.events = []
        router = router or AdapterRouter(SimulatedAdapter(self.infrastructure), {}, topology)
        self.policy = SafetyPolicy(**{"verify_timeout_s": 300, **policy})
        self.actuator = Actuator(router, self.ledger, topology, self.policy, self.infrastructure.observe, self.clock,
                                 on_event=self.events.append)
        self.healer = Healer(topology, rules, self.actuator, self.ledger, self.policy, self.clock,
                             on_event=self.events.append)
        self.detector = Detector(topology, DetectionConfig())
        self.monitor = Monitor(SimulationSource(self.infrastructure), self.detector, self.healer, self.ledger, 15,
                               self.clock)

    def run(self, minutes: float, start: float = 0.0) -> None:
        for tick in range(int(minutes * 4)):
            self.clock.now = EPOCH + start + tick * 15
            self.monitor.tick()

    def handoffs(self) -> list[tuple]:
        return self.store.execute("SELECT team, summary FROM handoffs")

    def close(self) -> None:
        self.store.close()


def wrong_remedy_topology(tmp_path):
    text = (PROJECT_ROOT / "data" / "infrastructure.yaml").read_text(encoding="utf-8")
    line = "      memory_pct:     {baseline: 48, limit: 90, remedies: [restart_service]}"
    assert line in text
    path = tmp_path / "infrastructure.yaml"
    path.write_text(text.replace(line, line.replace("restart_service", "scale_out")), encoding="utf-8")
    return load_topology(path, NEEDS)


def test_an_action_that_does_not_work_is_rolled_back_and_handed_off(tmp_path, rules):
    topology = wrong_remedy_topology(tmp_path)  # scaling out cannot stop a leak
    stack = Stack(tmp_path, rules, topology)
    stack.infrastructure.inject("memory_leak@api", ramp_s=2400)
    stack.run(30)
    rows = stack.ledger.remediations()
    assert [(r.action, r.status, r.rollback) for r in rows] == [("scale_out", "failed", "rolled_back")]
    assert "verification failed" in rows[0].detail
    assert stack.infrastructure.replicas()["api"] == 2  # the extra instance was taken back
    assert any("scale_out on api did not bring api memory_pct back" in s for _, s in stack.handoffs())
    kinds = [e.kind for e in stack.events]
    assert kinds.index("acted") < kinds.index("verification_failed") < kinds.index("rolled_back")
    stack.close()


def test_a_hanging_remediation_is_timed_out_recorded_and_handed_off(tmp_path, rules):
    with HTTPPeer(hold=True) as peer:
        router = AdapterRouter(WebhookAdapter(peer.url, timeout_s=30), {}, TOPOLOGY)
        stack = Stack(tmp_path, rules, router=router, action_timeout_s=0.5)
        signal = Signal("database", "slow_queries", SignalKind.THRESHOLD, SignalState.HARD, 20, 8, EPOCH)
        stack.healer.step([signal], stack.detector)
        rows = stack.ledger.remediations()
        assert [(r.action, r.status) for r in rows] == [("kill_slow_queries", "timed_out")]
        assert peer.requests == [{"action": "kill_slow_queries", "target": "database", "params": {}, "undo": False}]
        assert any("timed out" in summary for _, summary in stack.handoffs())
        stack.close()


def test_the_concurrency_cap_holds_while_an_action_runs(tmp_path, rules):
    with HTTPPeer(hold=True) as peer:
        router = AdapterRouter(WebhookAdapter(peer.url, timeout_s=30), {}, TOPOLOGY)
        stack = Stack(tmp_path, rules, router=router, max_concurrent=1, action_timeout_s=20)
        slow = Signal("database", "slow_queries", SignalKind.THRESHOLD, SignalState.HARD, 20, 8, EPOCH)
        first = threading.Thread(target=stack.healer.step, args=([slow], stack.detector))
        first.start()
        assert peer.arrived.wait(10)
        cache = Signal("cache", "cache_hit_ratio", SignalKind.THRESHOLD, SignalState.HARD, 0.5, 0.75, EPOCH)
        second = stack.healer.step([cache], stack.detector)
        peer.release()
        first.join(20)
        assert [(r.action, r.status) for r in second] == [("rebuild_cache", "skipped")]
        assert second[0].detail.startswith("concurrency cap")
        statuses = {r.action: r.status for r in stack.ledger.remediations()}
        assert statuses == {"kill_slow_queries": "verifying", "rebuild_cache": "skipped"}
        stack.close()


def test_a_symptom_upstream_is_left_alone_and_the_root_cause_is_fixed(tmp_path, rules):
    stack = Stack(tmp_path, rules)
    stack.infrastructure.inject("slow_queries@database")  # at once: web, api and the database are all past limits
    stack.run(3)
    assert {(r.action, r.target) for r in stack.ledger.remediations()} == {("kill_slow_queries", "database")}
    stack.close()


def test_a_breach_with_no_remedy_goes_to_engineering_once(tmp_path, rules):
    stack = Stack(tmp_path, rules)
    # Already deployed before the monitor's first look: an error spike that no recent deploy explains.
    stack.infrastructure.inject("bad_deploy@api")
    stack.run(5)
    assert stack.ledger.remediations() == []
    expected = "api error_rate is past its limit and no automated remedy is left"
    handoffs = [s for _, s in stack.handoffs() if s == expected]
    assert len(handoffs) == 1
    stack.close()


def test_an_error_spike_right_after_a_deploy_is_rolled_back(tmp_path, rules):
    stack = Stack(tmp_path, rules)
    stack.run(1)
    release = stack.infrastructure.versions()["api"]
    stack.infrastructure.inject("bad_deploy@api")
    assert stack.infrastructure.versions()["api"] == release + 1
    stack.run(2, start=60)
    rows = stack.ledger.remediations()
    assert [(r.action, r.target, r.rule) for r in rows] == [
        ("rollback_deploy", "api", "error_spike_after_a_deploy_is_rolled_back")]
    assert stack.infrastructure.versions()["api"] == release
    stack.close()


def test_a_fix_checked_at_once_while_telemetry_cannot_be_read_is_never_called_verified(tmp_path, rules):
    stack = Stack(tmp_path, rules)
    stack.actuator.observe = lambda: None  # the source is down, or hangs: no reading now
    stack.infrastructure.inject("slow_queries@database", ramp_s=0)
    watched = stack.actuator.run(ActionRequest("kill_slow_queries", "database", "conversation:c1",
                                               verify=("database", "slow_queries"), settle_now=True))
    assert watched.status == "verifying" and "not verified yet" in watched.detail  # the monitor settles it later
    [row] = stack.ledger.remediations()
    assert row.status == "verifying" and row.verify_by is not None
    unwatched = stack.actuator.run(ActionRequest("rebuild_cache", "cache", "conversation:c2", settle_now=True))
    assert unwatched.status == "succeeded" and unwatched.detail.endswith("not verified: telemetry unreadable")
    stack.close()
