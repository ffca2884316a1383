"""End to end with the real peers: Prometheus scrapes Firstline's /metrics, a predict_linear rule fires into
Alertmanager, Alertmanager posts to Firstline's receiver, and Firstline fixes the leak before the limit.

Debian's `prometheus` and `prometheus-alertmanager` run on loopback ports with temporary folders (recipe in
../shared/notes/real-peers.md; `.ci/run` installs them). Firstline's own detection is switched off here, so
the only way to act is the alert.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request

import pytest

from engine.access.tokens import Role
from tests.conftest import build_parts, make_settings
from tests.peers import free_port, unavailable, wait_until
from web.server import BackgroundServer, make_server

LIMIT = 90.0  # api memory_pct in data/infrastructure.yaml
RAMP_S = 90.0  # the leak reaches full strength (99%) in 90 s, so it crosses 90% about 74 s after it starts

PROMETHEUS_CONFIG = """
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]}}]
scrape_configs:
  - job_name: firstline
    metrics_path: /metrics
    authorization: {{credentials: "{token}"}}
    static_configs: [{{targets: ["127.0.0.1:{fl_port}"]}}]
"""
RULES = """
groups:
  - name: firstline
    rules:
      - alert: MemoryWillRunOut
        expr: predict_linear(firstline_memory_pct{service="api"}[10s], 60) > 90
        for: 2s
        labels: {metric: memory_pct, severity: page}
        annotations: {summary: "api memory will pass 90% within a minute"}
"""
ALERTMANAGER_CONFIG = """
route: {{receiver: firstline, group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}
receivers:
  - name: firstline
    webhook_configs:
      - url: "http://127.0.0.1:{fl_port}/api/v1/alerts/alertmanager"
        send_resolved: true
        http_config: {{authorization: {{credentials: "{token}"}}}}
"""


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} (apt-get install -y prometheus prometheus-alertmanager)")
    return path


def diagnostics(prometheus: str) -> str:
    found = []
    for path in ("/api/v1/targets?state=active", "/api/v1/alerts"):
        try:
            with urllib.request.urlopen(prometheus + path, timeout=5) as response:
                found.append(response.read(2000).decode())
        except OSError as error:
            found.append(f"{path}: {error}")
    return " | ".join(found)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def peers(tmp_path):
    """Start Prometheus and Alertmanager for a Firstline port; stop them by their pids afterwards."""
    started: list[subprocess.Popen] = []

    def start(fl_port: int, token: str) -> str:
        am_port, prom_port = free_port(), free_port()
        (tmp_path / "rules.yml").write_text(RULES, encoding="utf-8")
        (tmp_path / "prometheus.yml").write_text(PROMETHEUS_CONFIG.format(
            rules=tmp_path / "rules.yml", am_port=am_port, fl_port=fl_port, token=token), encoding="utf-8")
        (tmp_path / "alertmanager.yml").write_text(ALERTMANAGER_CONFIG.format(fl_port=fl_port, token=token),
                                                   encoding="utf-8")
        logs = tmp_path / "logs"
        logs.mkdir()
        commands = [
            [binary("prometheus-alertmanager"), f"--config.file={tmp_path / 'alertmanager.yml'}",
             f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{am_port}",
             "--cluster.listen-address="],
            [binary("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'prom-data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        ]
        for command in commands:
            with open(logs / f"{command[0].rsplit('/', 1)[1]}.log", "wb") as log:
                started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        assert wait_until(lambda: ready(f"http://127.0.0.1:{am_port}/-/ready"), 30), "Alertmanager did not start"
        assert wait_until(lambda: ready(f"http://127.0.0.1:{prom_port}/-/ready"), 30), "Prometheus did not start"
        return f"http://127.0.0.1:{prom_port}"

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_predicted_leak_is_fixed_through_prometheus_and_alertmanager(tmp_path, knowledge, peers):
    settings = make_settings(tmp_path / "data", port=0, threads=4, monitor_interval_s=0.5)
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    monitor = parts.healing.monitor
    monitor.act_on_detection = False  # detection only feeds verification: the alert must do the work
    try:
        # Both peers present an operator's token, as docs/self-healing.md tells operators to configure them.
        token = parts.tokens.create("prometheus", Role.OPERATOR).token
        prometheus = peers(server.server.effective_port, token)
        monitor.start()
        leak_started = time.time()
        parts.infrastructure.inject("memory_leak@api", ramp_s=RAMP_S)
        ledger = parts.healing.ledger
        acted = wait_until(lambda: ledger.remediations() != [], 60, step=0.25)
        assert acted, f"no alert reached Firstline; Prometheus says {diagnostics(prometheus)}"
        action = ledger.remediations()[0]
        assert (action.action, action.target) == ("restart_service", "api")
        crossing = leak_started + (LIMIT - 48) / (99 - 48) * RAMP_S  # from the baseline, noise aside
        assert action.started_at < crossing - 10, "acted too late to prevent the breach"
        peak = parts.store.execute("SELECT max(value) FROM telemetry WHERE service = 'api' AND metric = "
                                   "'memory_pct' AND observed_at <= ?", (action.started_at,))[0][0]
        assert peak < LIMIT  # the threshold was never crossed
        alert = parts.store.execute("SELECT s.kind, a.alertname, a.status FROM signals s JOIN alerts a "
                                    "ON a.fingerprint = s.fingerprint WHERE s.id = ?", (action.signal_id,))
        assert alert == [("alert", "MemoryWillRunOut", "firing")]
        assert parts.infrastructure.faults() == []  # the restart really freed the memory
    finally:
        monitor.stop()
        server.stop()
        parts.close()
