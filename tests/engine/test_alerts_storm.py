"""Alert storms in simulated time: many alerts across services at once become one incident, its root causes acted
on under the rate limits, and one escalation to a person that says what happened and what was done; never a second
for the same storm, across ticks and restarts."""

import json

import pytest

from core.settings import PROJECT_ROOT
from engine.actions.actuator import ActionRequest, Actuator, conversation_requester
from engine.actions.adapters import AdapterRouter
from engine.actions.adapters.simulated import SimulatedAdapter
from engine.actions.catalogue import ACTIONS, action_targets
from engine.actions.safety import SafetyPolicy
from engine.decision.ruleengine import RuleEngine
from engine.healing.alerts import parse_alertmanager
from engine.healing.detection import DetectionConfig, Detector
from engine.healing.healer import Healer
from engine.healing.incidents import StormPolicy, Storms, _when
from engine.healing.monitor import Monitor
from engine.healing.scenarios import SimClock
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import SimulationSource
from engine.infra.topology import load_topology
from engine.store import DuckDBStore
from engine.store.alert_intake import AlertIntake
from engine.store.healing import HealingLedger
from rules.loader import load_rules

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml",
                         {name: spec.needs for name, spec in ACTIONS.items()})
SLOW_DATABASE = [("web", "latency_p95_ms"), ("api", "latency_p95_ms"), ("auth", "latency_p95_ms"),
                 ("database", "slow_queries"), ("database", "latency_p95_ms"), ("queue", "memory_pct")]


@pytest.fixture(scope="module")
def rules() -> RuleEngine:
    return RuleEngine(load_rules([PROJECT_ROOT / "rules" / "builtin"], action_targets(TOPOLOGY)))


class Stack:
    """Simulated infrastructure, the store, the healer and the monitor on one simulated clock."""

    def __init__(self, path, rules, **policy) -> None:
        self.clock = SimClock()
        self.rules = rules
        self.infrastructure = SimulatedInfrastructure(TOPOLOGY, 7, self.clock)
        self.store = DuckDBStore(path, self.clock)
        self.ledger = HealingLedger(self.store)
        self.intake = AlertIntake(self.ledger)
        self.policy = SafetyPolicy(**policy)
        self.events = []
        self.start()

    def start(self) -> None:
        """The healer and monitor afresh on the same store, as after a restart."""
        router = AdapterRouter(SimulatedAdapter(self.infrastructure), {}, TOPOLOGY)
        self.actuator = actuator = Actuator(router, self.ledger, TOPOLOGY, self.policy, self.infrastructure.observe,
                                            self.clock, on_event=self.events.append)
        self.healer = Healer(TOPOLOGY, self.rules, actuator, self.ledger, self.policy, self.clock,
                             on_event=self.events.append)
        self.detector = Detector(TOPOLOGY, DetectionConfig())
        self.monitor = Monitor(SimulationSource(self.infrastructure), self.detector, self.healer, self.ledger, 15,
                               self.clock)

    def post(self, payload: dict, sender: str = "10.0.0.5") -> None:
        self.intake.record_notification(parse_alertmanager(payload), sender, self.clock())

    def handoff(self) -> tuple[str, str, dict]:
        (only,) = self.handoffs()
        return only

    def run(self, minutes: float) -> None:
        for _ in range(int(minutes * 4)):
            self.monitor.tick()
            self.clock.now += 15

    def handoffs(self) -> list[tuple[str, str, dict]]:
        return [(h, s, json.loads(d)) for h, s, d in
                self.store.execute("SELECT id, summary, diagnostics FROM handoffs ORDER BY created_at")]

    def incidents(self):
        return self.intake.incidents()


@pytest.fixture
def stack(tmp_path, rules):
    built = Stack(tmp_path / "storm.duckdb", rules)
    yield built
    built.store.close()


def storm(count: int, places=SLOW_DATABASE, truncated: int = 0, status: str = "firing", tag: str = "a") -> dict:
    """One notification of `count` alerts spread over `places` (service, metric), each its own instance."""
    alerts = []
    for i in range(count):
        service, metric = places[i % len(places)]
        alerts.append({"status": status, "labels": {"alertname": f"{metric}_high", "service": service,
                                                     "metric": metric, "instance": f"{service}-{tag}{i}"},
                       "annotations": {}, "startsAt": "2026-03-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                       "generatorURL": "", "fingerprint": ""})
    return {"version": "4", "groupKey": f"{{}}:{{storm=\"{tag}\"}}", "truncatedAlerts": truncated, "status": status,
            "receiver": "firstline", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "", "alerts": alerts}


def test_a_storm_of_500_alerts_is_one_incident_one_fix_at_the_root_and_one_escalation(stack):
    stack.infrastructure.inject("slow_queries@database", ramp_s=0)
    stack.post(storm(500, truncated=120))
    stack.run(3)
    (incident,) = stack.incidents()
    assert (incident.alerts, incident.truncated, incident.summarised) == (620, 120, 0)
    assert incident.services == {"web": 84, "api": 84, "auth": 83, "database": 166, "queue": 83}
    assert incident.root_causes == ("database",) and incident.closed_at is None
    assert {(r.action, r.target) for r in stack.ledger.remediations()} == {("kill_slow_queries", "database")}
    (handoff,) = stack.handoffs()
    handoff_id, summary, diagnostics = handoff
    assert incident.handoff_id == handoff_id
    for said in ("620 firing alerts", "across 5 services (database 166, api 84, web 84, auth 83, queue 83)",
                 "120 truncated by Alertmanager", "root cause by the dependency graph: database",
                 "kill_slow_queries on database"):
        assert said in summary, summary
    assert diagnostics["incident"] == incident.id and diagnostics["truncated"] == 120
    assert [(a["action"], a["target"]) for a in diagnostics["actions"]] == [("kill_slow_queries", "database")]
    assert [e.kind for e in stack.events].count("handoff") == 1


def test_the_storm_goes_on_and_survives_a_restart_without_a_second_escalation(stack):
    stack.infrastructure.inject("slow_queries@database", ramp_s=0)
    stack.post(storm(300, tag="a"))
    stack.run(2)
    stack.post(storm(200, tag="b", truncated=50))  # more of the same storm, in another group
    stack.run(1)
    stack.start()  # a restart: nothing of the storm is held in memory
    stack.run(2)
    (incident,) = stack.incidents()
    assert incident.alerts == 550 and incident.truncated == 50 and incident.closed_at is None
    assert len(stack.handoffs()) == 1


def test_a_storm_ends_after_a_quiet_window_and_the_next_one_is_a_new_incident(stack):
    stack.infrastructure.inject("slow_queries@database", ramp_s=0)
    stack.post(storm(120))
    stack.run(1)
    stack.run(StormPolicy().window_s / 60 + 1)  # no new alert for longer than the window
    (first,) = stack.incidents()
    assert first.closed_at is not None
    stack.post(storm(120, tag="later"))
    stack.run(1)
    second, again = stack.incidents()
    assert again.id == first.id and second.closed_at is None and second.id != first.id
    assert [d["incident"] for _, _, d in stack.handoffs()] == [first.id, second.id]


def test_two_root_causes_are_each_acted_on_under_the_rate_limit_and_the_escalation_says_so(tmp_path, rules):
    stack = Stack(tmp_path / "two.duckdb", rules, rate_limit=1)
    try:
        stack.infrastructure.inject("slow_queries@database", ramp_s=0)
        stack.infrastructure.inject("cache_degradation@cache", ramp_s=0)
        places = [("web", "latency_p95_ms"), ("api", "latency_p95_ms"), ("cache", "cache_hit_ratio"),
                  ("database", "slow_queries")]
        stack.post(storm(80, places))
        stack.run(3)
        (incident,) = stack.incidents()
        assert incident.root_causes == ("cache", "database")
        rows = stack.ledger.remediations()
        ran = [r for r in rows if r.status != "skipped"]
        assert len(ran) == 1 and ran[0].target in ("cache", "database")  # one action an hour: the rate limit
        assert any(r.status == "skipped" and r.detail.startswith("rate limit") for r in rows)
        (handoff,) = stack.handoffs()
        assert "root cause by the dependency graph: cache, database" in handoff[1]
        assert "(skipped)" in handoff[1] and f"{ran[0].action} on {ran[0].target}" in handoff[1]
    finally:
        stack.store.close()


@pytest.mark.parametrize(("payloads", "why"), [
    ([storm(49)], "too few alerts"),
    ([storm(200, [("api", "latency_p95_ms")])], "one service"),
    ([storm(60, status="resolved", truncated=100)], "all resolved"),
    ([storm(10), storm(10, tag="b"), storm(10, tag="c")], "30 alerts in three groups"),
])
def test_what_is_not_a_storm_opens_no_incident(stack, payloads, why):
    for payload in payloads:
        stack.post(payload)
    stack.run(2)
    assert stack.incidents() == [], why


def test_alerts_summarised_or_truncated_count_towards_a_storm(stack):
    stack.post(storm(20, truncated=40))  # 20 in the body, 40 left out by Alertmanager
    stack.run(1)
    (incident,) = stack.incidents()
    assert (incident.alerts, incident.truncated) == (60, 40)


def test_a_group_sent_again_is_not_counted_twice(stack):
    payload = storm(30, truncated=30)
    stack.post(payload)
    stack.post(payload)  # Alertmanager's repeat of the same group
    stack.run(1)
    (incident,) = stack.incidents()
    assert (incident.alerts, incident.truncated) == (60, 30)


def test_an_escalation_during_a_storm_is_folded_into_its_one_hand_off(stack):
    # An error spike no deploy explains and no remedy fixes: alone, it goes to engineering (test_healing.py).
    stack.infrastructure.inject("bad_deploy@api")
    stack.post(storm(100, [("web", "latency_p95_ms"), ("mail", "queue_depth")]))
    stack.run(5)
    (incident,) = stack.incidents()
    assert incident.notes == ("api error_rate is past its limit and no automated remedy is left",)
    assert len(stack.handoffs()) == 1


def test_two_ticks_never_open_two_incidents_or_two_hand_offs(stack):
    stack.post(storm(100))
    storms = [Storms(AlertIntake(stack.ledger), TOPOLOGY) for _ in range(2)]
    now = stack.clock()
    opened = [s.begin(now, set()) for s in storms]
    assert opened[0] is not None and opened[1] is not None and opened[0].id == opened[1].id
    assert sum(s.escalate(o, now) is not None for s, o in zip(storms, opened, strict=True)) == 1
    assert len(stack.incidents()) == 1 and len(stack.handoffs()) == 1


def test_the_one_hand_off_is_kept_up_to_date_while_the_storm_goes_on_and_says_when_it_is_over(stack):
    stack.infrastructure.inject("slow_queries@database", ramp_s=0)
    stack.post(storm(120, tag="a"))
    stack.run(1)
    handoff_id, first, _ = stack.handoff()
    assert "120 firing alerts" in first and "still under way" in first
    stack.post(storm(700, tag="b", truncated=30))  # a minute later, many more of the same storm
    stack.run(1)
    same_id, summary, diagnostics = stack.handoff()
    assert same_id == handoff_id and "850 firing alerts" in summary and "30 truncated by Alertmanager" in summary
    assert diagnostics["alerts"] == 850 and diagnostics["updated_at"] and diagnostics["closed_at"] is None
    assert [e.kind for e in stack.events].count("handoff") == 1  # brought up to date, not handed off again
    stack.run(StormPolicy().window_s / 60 + 1)
    (incident,) = stack.incidents()
    _, over, diagnostics = stack.handoff()
    assert incident.closed_at is not None and "over at " in over and "still under way" not in over
    assert diagnostics["closed_at"] is not None


def test_a_hand_off_an_engineer_closed_is_never_rewritten(stack):
    stack.post(storm(120, tag="a"))
    stack.run(1)
    handoff_id, summary, _ = stack.handoff()
    stack.store.execute("UPDATE handoffs SET status = 'closed by sam' WHERE id = ?", (handoff_id,))
    stack.post(storm(300, tag="b"))
    stack.run(StormPolicy().window_s / 60 + 2)
    assert stack.handoff()[1] == summary


def test_a_tick_with_nothing_new_writes_nothing_to_the_hand_off(stack):
    stack.post(storm(120, tag="a"))
    stack.run(1)
    handoff_id = stack.handoff()[0]
    storms = Storms(AlertIntake(stack.ledger), TOPOLOGY)
    incident = storms.intake.open_incident()
    assert storms.refresh(incident, stack.clock()) is False  # the same summary: no write
    assert incident.handoff_id == handoff_id


def test_a_chat_users_remedy_in_the_same_minutes_is_not_listed_as_the_storms(stack):
    stack.infrastructure.inject("slow_queries@database", ramp_s=0)
    stack.post(storm(120))
    stack.actuator.run(ActionRequest("rebuild_cache", "cache", conversation_requester("c-42")))
    stack.run(2)
    chat = [r for r in stack.ledger.remediations() if r.requester == conversation_requester("c-42")]
    assert [r.action for r in chat] == ["rebuild_cache"]
    _, summary, diagnostics = stack.handoff()
    assert "rebuild_cache" not in summary and "kill_slow_queries on database" in summary
    assert [a["action"] for a in diagnostics["actions"]] == ["kill_slow_queries"]


def test_a_storm_over_hundreds_of_services_has_a_hand_off_of_bounded_size(stack):
    from engine.healing.incidents import DIAGNOSED_SERVICES, LISTED_SERVICES

    places = [(f"svc-{n:03d}-" + "x" * 2000 + "\n\x1b[2J", "latency_p95_ms") for n in range(300)]
    stack.post(storm(600, places))
    stack.run(1)
    _, summary, diagnostics = stack.handoff()
    assert "600 firing alerts" in summary and "across 300 services" in summary
    assert f"and {300 - LISTED_SERVICES} more with {2 * (300 - LISTED_SERVICES)} alerts" in summary
    assert len(summary) < 5_000 and "\n" not in summary and "\x1b" not in summary
    assert len(diagnostics["services"]) == DIAGNOSED_SERVICES
    assert diagnostics["other_services"] == {"services": 300 - DIAGNOSED_SERVICES,
                                             "alerts": 2 * (300 - DIAGNOSED_SERVICES)}
    assert len(json.dumps(diagnostics)) < 20_000


def test_a_storm_is_dated_from_its_first_alert_and_over_a_window_after_its_last(stack):
    first_at = stack.clock()
    stack.post(storm(120))
    stack.run(1)
    (incident,) = stack.incidents()
    assert incident.since == first_at
    assert f"since {_when(first_at)}" in stack.handoff()[1]
    last_at = stack.clock()
    stack.post(storm(10, tag="late"))
    stack.clock.now += 3600  # no tick for an hour (the server was down): the storm ended long before
    stack.run(0.25)
    (incident,) = stack.incidents()
    assert incident.closed_at == last_at + StormPolicy().window_s
    assert f"over at {_when(last_at + StormPolicy().window_s)}" in stack.handoff()[1]


def test_a_storm_that_ended_while_no_monitor_ran_is_not_merged_with_the_next(stack):
    stack.post(storm(120, tag="first"))
    stack.run(1)
    last_at = stack.clock() - 15
    stack.clock.now += 1200  # twenty minutes with no monitor (a server with the monitor off, a restart) ...
    stack.post(storm(120, tag="second", places=[("web", "latency_p95_ms"), ("auth", "latency_p95_ms")]))
    stack.run(1)  # ... and the first tick after it sees the new alerts
    first, second = sorted(stack.incidents(), key=lambda i: i.opened_at)
    assert first.closed_at is not None and first.closed_at <= last_at + 15 + StormPolicy().window_s
    assert first.alerts == 120 and second.alerts == 120 and second.closed_at is None
    assert [d["incident"] for _, _, d in stack.handoffs()] == [first.id, second.id]
