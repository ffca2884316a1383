"""A fault that keeps coming back after remediation goes to a person (issue 18), on simulated time.

The failure seen elsewhere (node-operation-controller#31): a remedy that "succeeds" every time the problem comes
back is run for ever. Here a return within `recurrence_window_s` of a verified fix makes that fix a failure (for
the breaker and the next-remedy rule), and the problem ends in one hand-off with the history after at most
`recurrence_limit` attempts, through Alertmanager and through Firstline's own telemetry alike.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.settings import PROJECT_ROOT
from engine.access.tokens import Role
from engine.actions.actuator import ActionRequest, Event
from engine.actions.catalogue import ACTIONS, action_targets
from engine.actions.safety import Breaker, SafetyPolicy, breaker_state
from engine.decision.ruleengine import Fact, RuleEngine
from engine.desk.handoffs import Engineer
from engine.infra.topology import load_topology
from engine.store.healing import Attempt
from engine.wiring import open_healing
from rules.loader import load_rules
from tests.conftest import ManualClock, build_parts, make_settings
from web import create_app

RECEIVER = "/api/v1/alerts/alertmanager"
POOL = ("database", "pool_used_pct")
KEEPS_COMING_BACK = "database pool_used_pct keeps coming back after remediation"
FINGERPRINT = "d4ba5e9001c0ffee"  # Alertmanager's fingerprint is its labels': the same on every re-fire


def notification(status: str, starts_at: float, metric: str = "pool_used_pct", service: str = "database") -> dict:
    """An Alertmanager webhook body (version 4) for one alert; a re-fire is a new startsAt with the same labels."""
    labels = {"alertname": "PoolExhausted" if metric == "pool_used_pct" else "Other", "service": service,
              "metric": metric}
    alert = {"status": status, "labels": labels, "annotations": {"summary": f"{service} {metric} past its limit"},
             "startsAt": rfc3339(starts_at), "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://127.0.0.1:9090/graph",
             "fingerprint": FINGERPRINT if metric == "pool_used_pct" else f"{service}-{metric}"}
    if status == "resolved":
        alert["endsAt"] = rfc3339(starts_at + 60)
    return {"version": "4", "groupKey": "{}:{alertname=\"PoolExhausted\"}", "truncatedAlerts": 0, "status": status,
            "receiver": "firstline", "groupLabels": {"alertname": labels["alertname"]}, "commonLabels": labels,
            "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "alerts": [alert]}


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- through Alertmanager: the real receiver, the monitor's ticks, the engineers' desk ------------------------


class Receiving:
    """Firstline with Alertmanager in front: the receiver takes the alerts, only alerts lead to actions (the
    telemetry confirms them and verifies the fixes), time moves only when the test ticks the monitor."""

    def __init__(self, tmp_path, knowledge, **settings) -> None:
        self.clock = ManualClock()
        self.settings = make_settings(tmp_path / "data", **settings)
        self.parts = build_parts(self.settings, knowledge=knowledge, clock=self.clock)
        self.monitor = self.parts.healing.monitor
        self.monitor.act_on_detection = False
        self.ledger = self.parts.healing.ledger
        self.client = create_app(self.settings, self.parts).test_client()
        token = self.parts.tokens.create("alertmanager", Role.OPERATOR).token
        self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        self.infrastructure = self.parts.infrastructure

    def tick(self, minutes: float) -> None:
        for _ in range(int(minutes * 4)):
            self.clock.advance(15)
            self.monitor.tick()

    def fire_and_resolve(self, metric: str = "pool_used_pct", service: str = "database", fault: str = "pool_exhaustion",
                         minutes: float = 5) -> None:
        """The fault strikes (unless it never went), the alert fires, the monitor works for `minutes`, then the
        alert resolves and a minute passes."""
        if not any(f == (fault, service) for f in self.infrastructure.faults()):
            self.infrastructure.inject(f"{fault}@{service}", ramp_s=0)
        starts_at = self.clock.now
        self.post("firing", starts_at, metric, service)
        self.tick(minutes)
        self.post("resolved", starts_at, metric, service)
        self.tick(1)

    def post(self, status: str, starts_at: float, metric: str = "pool_used_pct", service: str = "database") -> None:
        response = self.client.post(RECEIVER, json=notification(status, starts_at, metric, service))
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["new"] == 1

    def handoffs(self) -> list[dict]:
        return self.parts.outreach.handoffs.listing("all")

    def close(self) -> None:
        self.parts.close()


@pytest.fixture
def receiving(tmp_path, knowledge):
    made: list[Receiving] = []

    def make(**settings) -> Receiving:
        made.append(Receiving(tmp_path, knowledge, **settings))
        return made[-1]

    yield make
    for stack in made:
        stack.close()


@pytest.mark.parametrize("detection_acts", [False, True], ids=["alerts-only", "alerts-and-detection"])
def test_a_pool_alert_firing_again_five_times_ends_in_one_handoff_after_two_attempts(receiving, detection_acts):
    stack = receiving()
    stack.monitor.act_on_detection = detection_acts  # with Firstline's own detection acting too, the same end
    for _ in range(5):
        stack.fire_and_resolve()
    rows = stack.ledger.remediations()
    # Each fix was verified, then the pool filled up again: each is a failure, and the second remedy was tried.
    assert [(r.action, r.target, r.status) for r in rows] == [
        ("reset_connection_pool", "database", "failed"), ("restart_service", "database", "failed")]
    assert [r.rule for r in rows] == ["first_remedy_at_the_root_cause", "next_remedy_when_the_first_failed"]
    assert all("verified: database pool_used_pct back in bounds" in r.detail and "came back" in r.detail
               for r in rows)
    handoffs = stack.handoffs()
    assert len(handoffs) == 1, handoffs
    handoff = handoffs[0]
    assert handoff["summary"].startswith(KEEPS_COMING_BACK + ": 1) reset_connection_pool on database at ")
    assert "; 2) restart_service on database at " in handoff["summary"]
    assert handoff["status"] == "open" and handoff["team"] == "engineering"
    diagnostics = handoff["diagnostics"]
    assert diagnostics["keeps_coming_back"] == {"service": "database", "metric": "pool_used_pct"}
    history = diagnostics["history"]
    assert [h["action"] for h in history] == ["reset_connection_pool", "restart_service"]
    for attempt, row in zip(history, rows, strict=True):
        assert attempt["remediation_id"] == row.id and attempt["requester"] == f"alert:{FINGERPRINT}"
        assert attempt["started_at"] < attempt["verified_at"] < attempt["recurred_at"]
        assert "verified: database pool_used_pct back in bounds" in attempt["result"]
        assert 0 < attempt["came_back_after_s"] <= stack.settings.recurrence_window_s
    # Every re-fire was taken in and looked at; none of the later ones ran anything.
    assert stack.parts.store.execute("SELECT count(*) FROM alerts WHERE status = 'firing'")[0][0] == 5
    assert stack.ledger.pending_alerts() == []


def test_closing_the_handoff_lets_the_remedies_run_again(receiving):
    stack = receiving()
    for _ in range(3):
        stack.fire_and_resolve()
    [handoff] = stack.handoffs()
    stack.parts.outreach.handoffs.close(handoff["id"], Engineer("sam"), "Raised max_connections; watching it.")
    stack.tick(60)  # the failures are now older than the rate window: the remedies are back on the ladder
    stack.fire_and_resolve()
    rows = stack.ledger.remediations()
    assert [(r.action, r.status) for r in rows][-1] == ("reset_connection_pool", "succeeded")
    assert len(stack.handoffs()) == 1  # the returns before the closed hand-off are not counted again


def test_a_return_outside_the_window_is_a_new_problem_and_inside_it_a_failure(receiving):
    stack = receiving(recurrence_window_s=900)
    stack.fire_and_resolve()
    [first] = stack.ledger.remediations()
    assert first.status == "succeeded"
    # The pool fills up again just after the window: a new problem, and the first remedy is still the one to try.
    stack.clock.now = first.finished_at + 900 + 1
    stack.fire_and_resolve()
    rows = stack.ledger.remediations()
    assert [(r.action, r.status) for r in rows] == [("reset_connection_pool", "succeeded")] * 2
    # Again, now just inside the window: that fix failed after all, and the next remedy runs.
    stack.clock.now = rows[-1].finished_at + 900 - 15
    stack.fire_and_resolve()
    rows = stack.ledger.remediations()
    assert [(r.action, r.status) for r in rows] == [
        ("reset_connection_pool", "succeeded"), ("reset_connection_pool", "failed"), ("restart_service", "succeeded")]
    assert stack.handoffs() == []


def test_a_return_on_another_metric_or_service_is_not_a_failure_of_the_first_fix(receiving):
    stack = receiving()
    stack.fire_and_resolve()
    stack.fire_and_resolve(metric="slow_queries", fault="slow_queries")  # the same service, another metric
    stack.fire_and_resolve(metric="cache_hit_ratio", service="cache", fault="cache_degradation")
    rows = stack.ledger.remediations()
    assert [(r.action, r.target, r.status) for r in rows] == [
        ("reset_connection_pool", "database", "succeeded"), ("kill_slow_queries", "database", "succeeded"),
        ("rebuild_cache", "cache", "succeeded")]
    assert stack.handoffs() == []


# -- through telemetry: the monitor alone, as `firstline heal` builds it ---------------------------------------


class Watching:
    """The monitor on the simulated infrastructure acting on its own detection, on a manual clock."""

    def __init__(self, settings, clock: ManualClock) -> None:
        self.clock = clock
        self.events: list[Event] = []
        self.healing, self.store = open_healing(settings, self.events.append, clock)
        self.infrastructure = self.healing.telemetry.simulated

    def tick(self, minutes: float) -> None:
        for _ in range(int(minutes * 4)):
            self.clock.advance(15)
            self.healing.monitor.tick()

    def flap(self, minutes: float = 6) -> None:
        """The pool fills up (unless it never emptied), and the monitor watches for `minutes`."""
        if ("pool_exhaustion", "database") not in self.infrastructure.faults():
            self.infrastructure.inject("pool_exhaustion@database", ramp_s=0)
        self.tick(minutes)

    def handoffs(self) -> list[tuple[str, str]]:
        return self.store.execute("SELECT summary, diagnostics FROM handoffs ORDER BY created_at")

    def close(self) -> None:
        self.healing.close()
        self.store.close()


def test_a_breach_that_keeps_coming_back_through_telemetry_ends_in_one_handoff(tmp_path):
    settings, clock = make_settings(tmp_path / "data", breaker_failures=2), ManualClock()
    watching = Watching(settings, clock)
    for _ in range(3):
        watching.flap()
    ledger = watching.healing.ledger
    rows = ledger.remediations()
    assert [(r.action, r.status) for r in rows] == [("reset_connection_pool", "failed"),
                                                    ("restart_service", "failed")]
    assert [e.kind for e in watching.events].count("recurred") == 2
    # The returns are failures for the circuit breaker too: two in a row open it (breaker_failures=2).
    policy = SafetyPolicy.from_settings(settings)
    view = ledger.view(Attempt("probe", None, None, "scale_out", "api", {}, "simulated", None), clock(), policy)
    assert view.trailing_failures == 2 and breaker_state(policy, view, clock()) is Breaker.OPEN
    [(summary, _)] = watching.handoffs()
    assert summary.startswith(KEEPS_COMING_BACK + ": 1) reset_connection_pool on database at ")
    # A restart of the monitor forgets nothing that matters: the hold and the hand-off are in the store.
    watching.close()
    watching = Watching(settings, clock)
    for _ in range(3):
        watching.flap()
    assert len(watching.healing.ledger.remediations()) == 2
    assert len(watching.handoffs()) == 1
    watching.close()


def test_a_return_through_telemetry_after_the_window_is_not_a_failure(tmp_path):
    clock = ManualClock()
    watching = Watching(make_settings(tmp_path / "data", recurrence_window_s=300), clock)
    for _ in range(3):
        watching.flap(minutes=12)  # each return comes more than 300 s after the fix was verified
    rows = watching.healing.ledger.remediations()
    assert [(r.action, r.status) for r in rows] == [("reset_connection_pool", "succeeded")] * 3
    assert "recurred" not in [e.kind for e in watching.events]
    assert watching.handoffs() == []
    watching.close()


# -- the rules alone: what a return means, decided in rules/builtin/healing.yaml ---------------------------------


@pytest.fixture(scope="module")
def rules() -> RuleEngine:
    topology = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml", {n: s.needs for n, s in ACTIONS.items()})
    return RuleEngine(load_rules([PROJECT_ROOT / "rules" / "builtin"], action_targets(topology)))


def pool_facts(state: str | None, failed: tuple[bool, bool], kind: str, returns: int = 1) -> list[Fact]:
    service, metric = POOL
    facts = [Fact("signal", {"service": service, "metric": metric, "kind": kind, "state": "hard",
                             "root_cause": True, "root": service, "value": 97.0, "limit": 90.0, "eta_s": -1})]
    facts += [Fact("remedy", {"rank": rank, "action": action, "target": service, "signal_service": service,
                              "signal_metric": metric, "default_rank": 0, "failed_recently": failed[rank - 1]})
              for rank, action in ((1, "reset_connection_pool"), (2, "restart_service"))]
    if state is not None:
        facts.append(Fact("signal", {"service": service, "metric": metric, "kind": "recurrence", "state": state,
                                     "root_cause": True, "root": service, "value": returns, "limit": 2,
                                     "eta_s": -1}))
    return facts


@pytest.mark.parametrize("kind", ["alert", "threshold"])
@pytest.mark.parametrize(("state", "failed", "expected"), [
    (None, (False, False), [("remediate", "reset_connection_pool")]),
    ("soft", (True, False), [("remediate", "restart_service")]),  # came back once: the next remedy
    # Came back, and nothing untried is left: this hand-off only, not "no automated remedy is left" as well.
    ("soft", (True, True), [("escalate", KEEPS_COMING_BACK)]),
    ("hard", (False, False), [("escalate", KEEPS_COMING_BACK)]),  # the limit: no remedy at all
])
def test_the_rules_decide_what_a_return_means(rules, state, failed, expected, kind):
    run = rules.run(pool_facts(state, failed, kind))
    assert not run.errors
    firings = {f.seq: f for f in run.firings}
    decided = []
    for intent in run.intents:
        if intent.verb == "escalate":
            decided.append(("escalate", intent.args["summary"]))
        else:
            remedy = run.facts[firings[intent.firing].facts[str(intent.args["from"])]]
            decided.append((intent.verb, remedy.fields["action"]))
    assert decided == expected


@pytest.fixture
def fixed_once(tmp_path):
    """The pool filled up once and a remedy was verified as fixing it: the monitor's ledger and that remedy."""
    watching = Watching(make_settings(tmp_path / "data"), ManualClock())
    watching.flap()
    ledger = watching.healing.ledger
    [fixed] = ledger.remediations()
    assert fixed.status == "succeeded"
    yield ledger, fixed
    watching.close()


def test_a_return_is_counted_once_however_many_signals_report_it(fixed_once):
    ledger, fixed = fixed_once
    first = ledger.record_recurrence(*POOL, fixed.finished_at + 60, 3600, "signal-a")
    again = ledger.record_recurrence(*POOL, fixed.finished_at + 61, 3600, "signal-b")  # an alert and a breach, say
    assert first is not None and first.remediation_id == fixed.id and again is None
    assert [r.remediation_id for r in ledger.recurrence_streak(*POOL)] == [fixed.id]
    assert ledger.remediation(fixed.id).status == "failed"


def test_a_second_bad_release_after_a_rollback_is_rolled_back_too_not_counted_against_the_first(tmp_path):
    # The rollback worked; the error spike came back because a new bad version shipped: a new fault, a new rollback.
    clock = ManualClock()
    watching = Watching(make_settings(tmp_path / "data"), clock)
    watching.tick(1)
    for _ in range(3):
        watching.infrastructure.inject("bad_deploy@api")
        watching.tick(6)
    rows = watching.healing.ledger.remediations()
    assert [(r.action, r.status) for r in rows] == [("rollback_deploy", "succeeded")] * 3
    assert "recurred" not in [e.kind for e in watching.events] and watching.handoffs() == []
    watching.close()


def test_a_return_counts_against_the_fix_unless_a_new_version_shipped_in_between(fixed_once):
    ledger, fixed = fixed_once
    verified = fixed.finished_at
    assert ledger.record_recurrence(*POOL, verified + 120, 3600, "s1", deployed_at=verified + 60) is None
    assert ledger.remediation(fixed.id).status == "succeeded"
    # A release before the fix was verified (the fix may have been that release) does not excuse the return.
    back = ledger.record_recurrence(*POOL, verified + 120, 3600, "s2", deployed_at=verified - 30)
    assert back is not None and ledger.remediation(fixed.id).status == "failed"


def test_a_fix_a_chat_user_asked_for_is_not_judged_by_a_later_problem(tmp_path):
    clock = ManualClock()
    watching = Watching(make_settings(tmp_path / "data"), clock)
    watching.tick(2)
    asked = watching.healing.actuator.run(ActionRequest(
        "reset_connection_pool", "database", "conversation:c1", verify=POOL, settle_now=True,
        hand_off_on_failure=False))
    assert asked.status == "succeeded"
    assert watching.healing.ledger.record_recurrence(*POOL, clock() + 60, 3600, "signal-a") is None
    watching.tick(3)  # past the cooldown of the chat's reset
    watching.flap()  # the pool fills up well within the window: the monitor's first remedy, not a failure of the chat's
    assert [(r.action, r.requester, r.status) for r in watching.healing.ledger.remediations()] == [
        ("reset_connection_pool", "conversation:c1", "succeeded"), ("reset_connection_pool", "monitor", "succeeded")]
    watching.close()


def test_settings_reach_the_policy(tmp_path):
    policy = SafetyPolicy.from_settings(make_settings(tmp_path, recurrence_window_s=120, recurrence_limit=4))
    assert (policy.recurrence_window_s, policy.recurrence_limit) == (120, 4)
