"""/metrics and the Alertmanager receiver, through the Flask app with a real DuckDB store."""

import copy

import pytest
from prometheus_client.parser import text_string_to_metric_families

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
    app = create_app(settings, parts)
    app.testing = True
    return app.test_client()


def alerts_stored(parts) -> int:
    return parts.store.execute("SELECT count(*) FROM alerts")[0][0]


def test_metrics_are_prometheus_text_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    services = {s.labels["service"] for s in families["firstline_latency_p95_ms"].samples}
    assert {"web", "api", "database"} <= services
    assert families["firstline_deployed_version"].samples


def test_a_firing_alert_is_stored_once_and_acted_on_once(client, parts):
    first = client.post(RECEIVER, json=FIRING)
    assert first.status_code == 200 and first.get_json() == {"received": 1, "new": 1, "firing": 1}
    again = client.post(RECEIVER, json=FIRING)  # Alertmanager's retry or repeat
    assert again.get_json() == {"received": 1, "new": 0, "firing": 0}
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
    assert response.get_json() == {"received": 1, "new": 1, "firing": 0}
    parts.healing.monitor.tick()
    assert alerts_stored(parts) == 1 and parts.healing.ledger.remediations() == []


def test_an_alert_about_nothing_we_know_is_kept_but_not_acted_on(client, parts, caplog):
    unknown = copy.deepcopy(FIRING)
    unknown["alerts"][0]["labels"] = {"alertname": "DiskFull", "service": "printer"}
    assert client.post(RECEIVER, json=unknown).status_code == 200
    parts.healing.monitor.tick()
    assert parts.healing.ledger.remediations() == [] and "names no known service" in caplog.text


def broken(change):
    body = copy.deepcopy(FIRING)
    change(body)
    return body


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"data": "not json", "content_type": "text/plain"}, "JSON"),
    ({"data": "{broken", "content_type": "application/json"}, "JSON object"),
    ({"json": ["a", "list"]}, "JSON object"),
    ({"json": broken(lambda b: b.update(version="3"))}, "version"),
    ({"json": broken(lambda b: b.update(alerts=[]))}, "alerts"),
    ({"json": broken(lambda b: b.pop("groupKey"))}, "groupKey"),
    ({"json": broken(lambda b: b["alerts"][0].pop("fingerprint"))}, "alerts[0].fingerprint"),
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


def test_the_monitor_thread_acts_on_a_new_alert_and_stops_cleanly(client, parts):
    monitor = parts.healing.monitor
    monitor.interval_s = 60  # only the receiver's wake-up can make it act within the test
    monitor.start()
    try:
        assert wait_until(lambda: monitor.running, 5)
        client.post(RECEIVER, json=FIRING)
        assert wait_until(lambda: parts.healing.ledger.remediations() != [], 20)
    finally:
        monitor.stop()
    assert not monitor.running
