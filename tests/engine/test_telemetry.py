import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.errors import TelemetryError
from core.settings import PROJECT_ROOT
from engine.actions.safety import SafetyPolicy
from engine.healing.detection import DetectionConfig, Detector
from engine.healing.healer import Healer
from engine.healing.monitor import Monitor
from engine.healing.scenarios import SimClock
from engine.infra.prometheus_text import exposition, parse_exposition
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import ScrapeSource, SimulationSource
from engine.infra.topology import load_topology
from engine.store import DuckDBStore
from engine.store.healing import HealingLedger
from tests.peers import HTTPPeer

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")


def test_the_simulation_speaks_prometheus_text_format_and_reads_back_the_same():
    infrastructure = SimulatedInfrastructure(TOPOLOGY, seed=5, clock=SimClock())
    infrastructure.inject("memory_leak@api", ramp_s=600)
    snapshot = SimulationSource(infrastructure).read()
    text = exposition(snapshot, TOPOLOGY).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["firstline_memory_pct"].type == "gauge"
    assert "firstline_deployed_version" in families
    back = parse_exposition(text, TOPOLOGY, snapshot.at)
    assert back.metrics == {s: dict(v) for s, v in snapshot.metrics.items()}
    assert back.versions == snapshot.versions


@pytest.mark.parametrize("text", [
    "<html><body>502 Bad Gateway</body></html>",
    'firstline_memory_pct{service="api"} lots',
    "# only a comment\n",
    'other_metric{service="api"} 1\n',
])
def test_a_malformed_or_foreign_scrape_is_refused_with_a_clear_message(text):
    with pytest.raises(TelemetryError, match=r"not Prometheus text format|no firstline_"):
        parse_exposition(text, TOPOLOGY, 0.0)


def test_unknown_services_and_metrics_in_a_scrape_are_ignored():
    text = ('firstline_memory_pct{service="api"} 51\nfirstline_memory_pct{service="moon"} 99\n'
            'firstline_mood{service="api"} 3\n')
    assert parse_exposition(text, TOPOLOGY, 0.0).metrics == {"api": {"memory_pct": 51.0}}


def test_a_failing_scrape_is_a_log_line_and_changes_nothing(tmp_path, caplog):
    with HTTPPeer() as peer:  # answers POST only: a GET is an HTTP error, like a broken exporter
        source = ScrapeSource(peer.url, TOPOLOGY, timeout_s=5)
        with pytest.raises(TelemetryError, match="cannot scrape"):
            source.read()
        store = DuckDBStore(tmp_path / "f.duckdb")
        ledger = HealingLedger(store)
        healer = Healer(TOPOLOGY, None, None, ledger, SafetyPolicy())  # never reached: nothing to act on
        monitor = Monitor(source, Detector(TOPOLOGY, DetectionConfig()), healer, ledger, 15)
        report = monitor.tick()
        assert report.snapshot is None and "cannot scrape" in report.error
        assert "cannot scrape" in caplog.text
        assert store.execute("SELECT count(*) FROM telemetry")[0][0] == 0
        assert ledger.remediations() == []
        store.close()
