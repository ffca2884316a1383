"""A scraped telemetry source on loopback, seen from the server: /metrics says 503 when the source cannot be read,
and chat turns never read the source themselves while the monitor runs (a hanging exporter never holds a turn)."""

from __future__ import annotations

import pytest

from core.settings import PROJECT_ROOT
from engine.actions.catalogue import ACTIONS
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import SimulationSource, exposition
from engine.infra.topology import load_topology
from tests.conftest import ManualClock, build_parts, make_settings
from tests.peers import Exporter, free_port, wait_until
from web import create_app

SLOW = "The dashboard is loading really slowly"
TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml",
                         {name: spec.needs for name, spec in ACTIONS.items()})


def exported(*faults: str) -> bytes:
    """What an exporter of the simulated infrastructure with `faults` serves (Prometheus text format)."""
    infrastructure = SimulatedInfrastructure(TOPOLOGY, 7, ManualClock())
    for fault in faults:
        infrastructure.inject(fault, ramp_s=0)
    return exposition(SimulationSource(infrastructure).read(), TOPOLOGY)


@pytest.fixture
def exporter():
    with Exporter(exported()) as running:
        yield running


def scraping(tmp_path, knowledge, url: str, clock=None, **settings):
    settings = make_settings(tmp_path / "data", telemetry_source="scrape", scrape_url=url, scrape_timeout_s=2,
                             operator_auth=False, **settings)
    return build_parts(settings, knowledge=knowledge, **({"clock": clock} if clock else {})), settings


@pytest.mark.parametrize(("status", "content_type", "body", "said"), [
    (200, "text/html", b"<html><body>Login</body></html>", "no firstline_"),
    (500, "text/plain", b"internal error", "500"),
    (200, "text/plain", b"", "no firstline_"),
])
def test_metrics_answers_503_with_the_reason_while_its_source_cannot_be_read(tmp_path, knowledge, exporter, status,
                                                                             content_type, body, said):
    parts, settings = scraping(tmp_path, knowledge, exporter.url)
    try:
        client = create_app(settings, parts).test_client()
        assert client.get("/metrics").status_code == 200
        exporter.serve(body, status, content_type)
        response = client.get("/metrics")
        assert response.status_code == 503, response.get_data(as_text=True)
        error = response.get_json()["error"]
        assert error["code"] == "telemetry_unavailable" and said in error["message"]
        assert "Traceback" not in error["message"]
        exporter.serve(exported())
        assert client.get("/metrics").status_code == 200  # back as soon as the source is
    finally:
        parts.close()


def test_metrics_answers_503_when_nothing_listens_at_the_source(tmp_path, knowledge):
    url = f"http://127.0.0.1:{free_port()}/metrics"
    parts, settings = scraping(tmp_path, knowledge, url)
    try:
        response = create_app(settings, parts).test_client().get("/metrics")
        assert response.status_code == 503 and url in response.get_json()["error"]["message"]
    finally:
        parts.close()


def test_chat_turns_read_the_monitors_stored_readings_and_never_the_source(tmp_path, knowledge, exporter):
    exporter.serve(exported("slow_queries"))
    clock = ManualClock()
    parts, settings = scraping(tmp_path, knowledge, exporter.url, clock, monitor_interval_s=3600)
    try:
        monitor = parts.healing.monitor
        monitor.act_on_detection = False  # the test's turns decide; the monitor only reads and stores
        monitor.start()  # one read now, the next in an hour of real time: after this test
        assert wait_until(lambda: parts.healing.ledger.snapshots(monitor.source.name, 0.0), 30)
        reads = exporter.reads
        answers = [parts.assistant.answer(SLOW, f"user-{n}", dry_run=True) for n in range(3)]
        assert exporter.reads == reads  # three turns, no read of the source
        # The stored reading is what the rules saw: the database's slow queries point at their remedy.
        assert [(a.actions[0].name, a.actions[0].status) for a in answers] == [("kill_slow_queries", "dry_run")] * 3
        # Three intervals without a reading (the source is down, the monitor says so): no telemetry, not stale.
        clock.advance(3 * settings.monitor_interval_s + 1)
        assert parts.healing.telemetry.recent(3600, 60) == [(clock(), {})]
        assert exporter.reads == reads
    finally:
        parts.close()


def test_without_a_running_monitor_a_turn_reads_the_source_itself(tmp_path, knowledge, exporter):
    parts, _ = scraping(tmp_path, knowledge, exporter.url)
    try:
        before = exporter.reads
        [(_, metrics)] = parts.healing.telemetry.recent(3600, 60)  # `firstline ask`: no monitor in the process
        assert exporter.reads == before + 1 and metrics["database"]["slow_queries"] >= 0
    finally:
        parts.close()


def test_while_the_monitor_runs_metrics_shows_its_reading_and_never_waits_on_the_source(tmp_path, knowledge,
                                                                                      exporter):
    clock = ManualClock()
    parts, settings = scraping(tmp_path, knowledge, exporter.url, clock, monitor_interval_s=3600)
    try:
        monitor = parts.healing.monitor
        monitor.act_on_detection = False
        monitor.start()
        assert wait_until(lambda: monitor.last_snapshot is not None, 30)
        client = create_app(settings, parts).test_client()
        reads = exporter.reads
        assert client.get("/metrics").status_code == 200 and exporter.reads == reads  # the monitor's reading
        # The exporter now trickles its body a byte at a time: the monitor's next read fails at its deadline...
        exporter.serve(exported(), trickle_s=0.2)
        monitor.wake()
        assert wait_until(lambda: monitor.last_error is not None, 30)
        assert "scrape timeout" in monitor.last_error
        # ... and /metrics says so at once, holding no server thread on the source.
        response = client.get("/metrics")
        assert response.status_code == 503 and "scrape timeout" in response.get_json()["error"]["message"]
        # A chat turn's check after an action does not wait on it either: the monitor's last read failed.
        reads = exporter.reads
        assert parts.healing.telemetry.observe() is None and exporter.reads == reads
    finally:
        parts.close()


def test_a_source_that_fails_between_ticks_costs_one_turn_and_the_monitor_is_told(tmp_path, knowledge, exporter):
    parts, _ = scraping(tmp_path, knowledge, exporter.url, monitor_interval_s=3600)
    try:
        monitor = parts.healing.monitor
        monitor.act_on_detection = False
        monitor.start()  # one read now, the next in an hour
        assert wait_until(lambda: monitor.last_snapshot is not None, 30) and monitor.last_error is None
        exporter.serve(b"<html>maintenance</html>", content_type="text/html")  # broken between two ticks
        assert parts.healing.telemetry.observe() is None  # this turn read it and found it broken ...
        assert wait_until(lambda: monitor.last_error is not None, 30)  # ... and woke the monitor, not in an hour
        reads = exporter.reads
        assert parts.healing.telemetry.observe() is None and exporter.reads == reads  # the next turn: no wait
    finally:
        parts.close()
