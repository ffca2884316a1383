"""/metrics and the Alertmanager receiver, through the Flask app with a real DuckDB store."""

import copy

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.access.tokens import Role
from tests.peers import wait_until
from web import create_app

RECEIVER = "/api/v1/alerts/alertmanager"
FIRING = {
    "version": "4", "groupKey": "{}:{alertname=\"MemoryWillRunOut\"}", "truncatedAlerts": 0, "status": "firing",
    "receiver": "firstline", "groupLabels": {"alertname": "MemoryWillRunOut"},
    "commonLabels": {"alertname": "MemoryWillRunOut", "service": "api", "metric": "memory_pct"},
    "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "MemoryWillRunOut", "service": "api", "metric": "memory_pct"},
        "annotations": {"summary": "api memory will pass 90% within 30 minutes"},
        "startsAt": "2026-11-24T06:40:00.123Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "a1b2c3d4e5f60718",
    }],
}


@pytest.fixture
def client(settings, parts):
    """A client that presents an operator's token, as Prometheus and Alertmanager are configured to."""
    app = create_app(settings, parts)
    app.testing = True
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {parts.tokens.create('prometheus', Role.OPERATOR).token}"
    return client


@pytest.fixture
def stranger(settings, parts):
    return create_app(settings, parts).test_client()


def alerts_stored(parts) -> int:
    return parts.store.execute("SELECT count(*) FROM alerts")[0][0]


def receipt(received: int, new: int, firing: int, **more: int) -> dict:
    """The receiver's answer: these counts, and nothing summarised, truncated or derived unless said."""
    return {"received": received, "new": new, "firing": firing, "stored": received,
            **{"summarised": 0, "truncated": 0, "derived_fingerprints": 0, **more}}


def test_metrics_are_prometheus_text_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    services = {s.labels["service"] for s in families["firstline_latency_p95_ms"].samples}
    assert {"web", "api", "database"} <= services
    assert families["firstline_deployed_version"].samples


def test_a_firing_alert_is_stored_once_and_acted_on_once(client, parts):
    parts.infrastructure.inject("memory_leak@api", ramp_s=0)  # what the alert says is really happening
    first = client.post(RECEIVER, json=FIRING)
    assert first.status_code == 200 and first.get_json() == receipt(1, 1, 1)
    again = client.post(RECEIVER, json=FIRING)  # Alertmanager's retry or repeat
    assert again.get_json() == receipt(1, 0, 0)
    assert alerts_stored(parts) == 1
    monitor = parts.healing.monitor
    monitor.tick()
    monitor.tick()
    rows = parts.healing.ledger.remediations()
    assert [(r.action, r.target, r.rule) for r in rows] == [
        ("restart_service", "api", "first_remedy_at_the_root_cause")]
    signal = parts.store.execute("SELECT kind, fingerprint FROM signals WHERE id = ?", (rows[0].signal_id,))
    assert signal == [("alert", "a1b2c3d4e5f60718")]


def test_a_resolved_alert_is_recorded_and_never_acted_on(client, parts):
    resolved = copy.deepcopy(FIRING)
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-24T06:50:00Z"
    response = client.post(RECEIVER, json=resolved)
    assert response.get_json() == receipt(1, 1, 0)
    parts.healing.monitor.tick()
    assert alerts_stored(parts) == 1 and parts.healing.ledger.remediations() == []


@pytest.mark.parametrize(("labels", "said"), [
    ({"service": "printer", "metric": "toner_pct"}, "names service 'printer', which is not in the infrastructure file"),
    ({"metric": "memory_pct"}, "names no service (label service=)"),
    ({"service": "api"}, "on api names no metric (label metric=; its metrics: "),
    ({"service": "api", "metric": "slow_queries"}, "names metric 'slow_queries', which api has no limit for "
                                                   "(its metrics: "),
])
def test_an_alert_about_nothing_we_know_is_kept_but_not_acted_on_and_says_which_label(client, parts, caplog, labels,
                                                                                      said):
    unknown = copy.deepcopy(FIRING)
    unknown["alerts"][0]["labels"] = {"alertname": "DiskFull", **labels}
    assert client.post(RECEIVER, json=unknown).status_code == 200
    parts.healing.monitor.tick()
    assert parts.healing.ledger.remediations() == [] and alerts_stored(parts) == 1
    assert f"alert DiskFull (a1b2c3d4e5f60718) {said}" in caplog.text


def test_many_alerts_passed_over_for_one_reason_are_one_log_line(client, parts, caplog):
    """A storm of alerts on a service the infrastructure file does not know: counted in one line per reason,
    not a line each (a storm of thousands filled the log)."""
    many = copy.deepcopy(FIRING)
    many["alerts"] = [{**FIRING["alerts"][0], "fingerprint": f"{n:016x}",
                       "labels": {"alertname": f"Disk{n % 2}", "service": f"printer-{n % 2}", "metric": "toner_pct"}}
                      for n in range(60)]
    assert client.post(RECEIVER, json=many).status_code == 200
    caplog.clear()
    parts.healing.monitor.tick()
    lines = [r.getMessage() for r in caplog.records if r.name == "firstline.monitor"]
    assert len(lines) == 2, lines
    assert {line.split(" (")[0] for line in lines} == {"30 alerts Disk0", "30 alerts Disk1"}
    assert all(" and 27 more names service 'printer-" in line for line in lines)


def broken(change):
    body = copy.deepcopy(FIRING)
    change(body)
    return body


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"data": "not json", "content_type": "text/plain"}, "JSON"),
    ({"data": "{broken", "content_type": "application/json"}, "not valid JSON: Expecting property name"),
    ({"data": '{"version": "4",}', "content_type": "application/json"}, "not valid JSON"),
    ({"data": '{"version": "4"} trailing', "content_type": "application/json"}, "not valid JSON: Extra data"),
    ({"data": b'{"version": "\xff"}', "content_type": "application/json"}, "not valid UTF-8"),
    ({"json": ["a", "list"]}, "JSON object"),
    ({"json": broken(lambda b: b.update(version="3"))}, "version"),
    ({"json": broken(lambda b: b.update(alerts=[]))}, "alerts"),
    ({"json": broken(lambda b: b.pop("groupKey"))}, "groupKey"),
    ({"json": broken(lambda b: b["alerts"][0].update(fingerprint=7))}, "alerts[0].fingerprint"),
    ({"json": broken(lambda b: b.update(truncatedAlerts=-1))}, "truncatedAlerts"),
    ({"json": broken(lambda b: b["alerts"][0].update(startsAt="yesterday"))}, "alerts[0].startsAt"),
    ({"json": broken(lambda b: b["alerts"][0].update(status="burning"))}, "alerts[0].status"),
    ({"json": broken(lambda b: b["alerts"][0]["labels"].update(service=7))}, "alerts[0].labels"),
    ({"json": broken(lambda b: b["alerts"].append("x"))}, "alerts[1]"),
])
def test_a_malformed_webhook_is_a_clear_400_and_changes_nothing(client, parts, kwargs, field):
    response = client.post(RECEIVER, **kwargs)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_alert" and field in error["message"]
    assert alerts_stored(parts) == 0
    kept = parts.store.execute("SELECT id, status, reason FROM dead_letters")  # Alertmanager will not retry it
    assert kept == [(response.headers["X-Firstline-Dead-Letter"], 400, error["message"])]


def test_the_monitor_thread_acts_on_a_new_alert_and_stops_cleanly(client, parts):
    monitor = parts.healing.monitor
    monitor.interval_s = 60  # only the receiver's wake-up can make it act within the test
    monitor.start()
    try:
        assert wait_until(lambda: monitor.running, 5)
        parts.infrastructure.inject("memory_leak@api", ramp_s=0)
        client.post(RECEIVER, json=FIRING)
        assert wait_until(lambda: parts.healing.ledger.remediations() != [], 20)
    finally:
        monitor.stop()
    assert not monitor.running


@pytest.mark.parametrize("path", ["/metrics", RECEIVER])
def test_without_credentials_operator_endpoints_answer_401_act_on_nothing_and_log_the_caller(
        stranger, parts, path, caplog):
    response = stranger.post(path, json=FIRING) if path == RECEIVER else stranger.get(path)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    assert "--role operator" in response.get_json()["error"]["message"]
    assert "Set-Cookie" not in response.headers  # an operator endpoint never starts a chat session
    assert alerts_stored(parts) == 0
    parts.healing.monitor.tick()
    assert parts.healing.ledger.remediations() == []
    assert f"refused {'POST' if path == RECEIVER else 'GET'} {path} from 127.0.0.1: unauthorized" in caplog.text


@pytest.mark.parametrize("role", [Role.USER, Role.CURATOR, Role.DECIDER])
def test_anyone_elses_token_gets_403_and_a_made_up_token_401(stranger, parts, role):
    other = parts.tokens.create("someone", role).token
    refused = stranger.post(RECEIVER, json=FIRING, headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    made_up = stranger.get("/metrics", headers={"Authorization": "Bearer fl_abcdef123456_notasecret"})
    assert made_up.status_code == 401
    assert "--role operator" in made_up.get_json()["error"]["message"]  # a user's token would get 403 next
    basic = stranger.get("/metrics", headers={"Authorization": "Basic cHJvbWV0aGV1czpzZWNyZXQ="})
    assert basic.status_code == 401
    assert alerts_stored(parts) == 0


def test_a_revoked_operator_token_is_refused_at_once(stranger, parts):
    issued = parts.tokens.create("alertmanager", Role.OPERATOR)
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert stranger.get("/metrics", headers=headers).status_code == 200
    parts.tokens.revoke(issued.id)
    assert stranger.get("/metrics", headers=headers).status_code == 401


def test_an_operator_token_opens_nothing_but_the_operator_endpoints(client):
    response = client.post("/api/v1/messages", json={"text": "the dashboard is slow"})
    assert response.status_code == 403 and "nothing else" in response.get_json()["error"]["message"]


def test_operator_auth_can_be_turned_off_for_a_closed_network(tmp_path, knowledge):
    from tests.conftest import build_parts, make_settings

    settings = make_settings(tmp_path, operator_auth=False)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        assert create_app(settings, parts).test_client().get("/metrics").status_code == 200
    finally:
        parts.close()


def test_a_made_up_alert_on_a_healthy_metric_is_recorded_and_never_acted_on(tmp_path, knowledge, caplog):
    from tests.conftest import build_parts, make_settings

    settings = make_settings(tmp_path, operator_auth=False, alert_wait_s=0)
    parts = build_parts(settings, knowledge=knowledge)
    try:
        assert create_app(settings, parts).test_client().post(RECEIVER, json=FIRING).status_code == 200
        parts.healing.monitor.tick()  # api memory is at its usual level: the alert is not borne out
        parts.healing.monitor.tick()
        assert alerts_stored(parts) == 1 and parts.healing.ledger.remediations() == []
        assert parts.healing.ledger.pending_alerts() == []  # closed, not retried for ever
        assert "never borne out by telemetry" in caplog.text
    finally:
        parts.close()


def test_an_alert_ahead_of_the_telemetry_waits_for_it_then_acts(client, parts):
    assert client.post(RECEIVER, json=FIRING).status_code == 200
    parts.healing.monitor.tick()
    assert parts.healing.ledger.remediations() == [] and len(parts.healing.ledger.pending_alerts()) == 1
    parts.infrastructure.inject("memory_leak@api", ramp_s=0)  # now the readings show it too
    parts.healing.monitor.tick()
    parts.healing.monitor.tick()
    assert [(r.action, r.target) for r in parts.healing.ledger.remediations()] == [("restart_service", "api")]


def test_an_alert_resolved_before_it_was_looked_at_is_not_acted_on(client, parts):
    parts.infrastructure.inject("memory_leak@api", ramp_s=0)
    resolved = copy.deepcopy(FIRING)
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    client.post(RECEIVER, json=FIRING)
    client.post(RECEIVER, json=resolved)
    parts.healing.monitor.tick()
    assert parts.healing.ledger.remediations() == [] and parts.healing.ledger.pending_alerts() == []


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", RECEIVER, {"POST"}), ("PUT", RECEIVER, {"POST"}), ("DELETE", "/metrics", {"GET", "HEAD"}),
    ("PATCH", "/api/v1/alerts/dead-letters", {"GET", "HEAD"}),
])
def test_a_wrong_method_with_an_operators_token_is_405_naming_the_allowed_ones(client, method, path, allowed):
    response = client.open(path, method=method)
    assert response.status_code == 405, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) - {"OPTIONS"} == allowed


def test_an_operators_token_still_opens_nothing_but_the_operators_routes(client):
    assert client.post("/api/v1/messages", json={"message": "hello"}).status_code == 403
    assert client.get("/api/v1/no-such-thing").status_code == 404


def test_a_page_given_a_method_it_does_not_take_says_which_it_does(stranger):
    response = stranger.put("/")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v2/messages", "/api/v1"])
def test_an_unknown_path_under_the_api_is_a_json_error(stranger, path):
    response = stranger.get(path)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_alerts_each_naming_a_service_of_its_own_are_a_few_short_lines(client, parts, caplog):
    """500 alerts, each with its own 2,000-character service name carrying a forged log line and a terminal
    escape: at most REASON_LINES + 1 lines, each short, with no line break or control character of theirs."""
    from engine.healing.monitor import REASON_LINES

    many = copy.deepcopy(FIRING)
    many["alerts"] = [{**FIRING["alerts"][0], "fingerprint": f"{n:016x}" + "f" * 5000,
                       "labels": {"alertname": f"Disk\n2026-12-07 CRITICAL forged {n}\x1b[2J",
                                  "service": f"svc-{n}-" + "x" * 2000 + "\n\x07", "metric": "disk_pct"}}
                      for n in range(500)]
    assert client.post(RECEIVER, json=many).status_code == 200
    caplog.clear()
    parts.healing.monitor.tick()
    lines = [r.getMessage() for r in caplog.records if r.name == "firstline.monitor"]
    assert len(lines) == REASON_LINES + 1, lines
    assert all(len(line) < 1000 and "\n" not in line and "\x1b" not in line and "\x07" not in line
               for line in lines)
    assert lines[-1].startswith(f"{500 - REASON_LINES} more alerts for {500 - REASON_LINES} other reasons")
