"""Shell, process and webhook adapters, the router, and start-up refusal of a bad configuration."""

import os
import sys

import pytest

from core.errors import ConfigurationError, RemediationError
from core.settings import PROJECT_ROOT
from engine.actions.adapters import AdapterRouter, build_router
from engine.actions.adapters.process import ProcessAdapter
from engine.actions.adapters.shell import ShellAdapter
from engine.actions.adapters.webhook import WebhookAdapter
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import load_topology
from tests.conftest import make_settings
from tests.peers import HTTPPeer

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")


def test_shell_runs_only_allow_listed_argv_with_the_target_filled_in(tmp_path):
    marker = tmp_path / "ran"
    adapter = ShellAdapter.from_settings(
        (f"restart_service={sys.executable} -c 'import sys; open(sys.argv[1], \"w\").write(sys.argv[2])' "
         f"{marker} {{target}}",), timeout_s=30)
    assert adapter.supports("restart_service") and not adapter.supports("rollback_deploy")
    detail = adapter.execute("restart_service", "api", {})
    assert marker.read_text() == "api" and detail.startswith("restart_service on api: ran ")
    # A target is passed as one argument, never through a shell, and odd ones are refused outright.
    with pytest.raises(RemediationError, match="refusing target"):
        adapter.execute("restart_service", "api; rm -rf /", {})


def test_shell_reports_a_failing_command_and_kills_a_hanging_one():
    adapter = ShellAdapter.from_settings((f"scale_out={sys.executable} -c 'import sys; sys.exit(3)'",
                                          f"rebuild_cache={sys.executable} -c 'import time; time.sleep(30)'"),
                                         timeout_s=0.5)
    with pytest.raises(RemediationError, match="exited with 3"):
        adapter.execute("scale_out", "api", {})
    with pytest.raises(RemediationError, match="did not finish"):
        adapter.execute("rebuild_cache", "cache", {})


@pytest.mark.parametrize(("entry", "message"), [
    ("restart_service", "action=program"),
    ("format_disk=/bin/true", "known action"),
    ("restart_service=", "empty"),
    ("restart_service=/bin/echo {user}", "only {target}"),
    ("restart_service=/bin/echo 'unclosed", "No closing quotation"),
])
def test_shell_configuration_mistakes_are_refused(entry, message):
    with pytest.raises(ConfigurationError, match=message):
        ShellAdapter.from_settings((entry,), timeout_s=1)


def test_process_restart_stops_the_old_process_and_starts_a_new_one(tmp_path):
    argv = f"{sys.executable} -c 'import time; time.sleep(120)'"
    adapter = ProcessAdapter.from_settings((f"queue={argv}",), TOPOLOGY, tmp_path / "run")
    try:
        first = adapter.execute("restart_service", "queue", {})
        old = adapter.running_pid("queue")
        assert old is not None and first == f"restart_service on queue: started pid {old}"
        second = adapter.execute("restart_service", "queue", {})
        new = adapter.running_pid("queue")
        assert new not in (None, old) and second == f"restart_service on queue: stopped pid {old}, started pid {new}"
        with pytest.raises(ProcessLookupError):
            os.kill(old, 0)
        with pytest.raises(RemediationError, match="no process command for api"):
            adapter.execute("restart_service", "api", {})
    finally:
        adapter.stop("queue")
    assert adapter.running_pid("queue") is None


def test_webhook_posts_the_action_and_reports_a_refusal():
    with HTTPPeer(status=200) as peer:
        adapter = WebhookAdapter(peer.url, timeout_s=10)
        assert adapter.execute("rollback_deploy", "api", {"to": "previous"}).endswith("200 done")
        assert adapter.undo("rollback_deploy", "api", {}).startswith("undo rollback_deploy on api")
        assert peer.requests == [
            {"action": "rollback_deploy", "target": "api", "params": {"to": "previous"}, "undo": False},
            {"action": "rollback_deploy", "target": "api", "params": {}, "undo": True}]
    with HTTPPeer(status=503) as peer, pytest.raises(RemediationError, match="answered 503"):
        WebhookAdapter(peer.url, timeout_s=10).execute("scale_out", "api", {})


def test_the_router_refuses_what_the_topology_does_not_know(tmp_path):
    router = build_router(make_settings(tmp_path), SimulatedInfrastructure(TOPOLOGY), TOPOLOGY)
    assert isinstance(router, AdapterRouter) and router.adapter_for("restart_service").name == "simulated"
    with pytest.raises(RemediationError, match="unknown service"):
        router.execute("restart_service", "moon", {})
    with pytest.raises(RemediationError, match="unknown action"):
        router.execute("format_disk", "api", {})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"remediation_routes": ["kill_slow_queries=ansible"]}, "unknown adapter 'ansible'"),
    ({"remediation_routes": ["restart_service=redis"], "redis_url": "redis://127.0.0.1:6379/0"},
     "cannot run restart_service"),
    ({"remediation_adapter": "webhook"}, "FIRSTLINE_WEBHOOK_URL"),
    ({"remediation_adapter": "postgres"}, "FIRSTLINE_POSTGRES_DSN"),
    ({"remediation_adapter": "shell"}, "FIRSTLINE_SHELL_COMMANDS"),
])
def test_a_bad_adapter_configuration_is_refused_at_start_up(tmp_path, overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        build_router(make_settings(tmp_path, **overrides), SimulatedInfrastructure(TOPOLOGY), TOPOLOGY)


def test_an_unknown_adapter_name_is_refused_by_the_settings(tmp_path):
    with pytest.raises(ConfigurationError, match=r"remediation_adapter.*'simulated'.*'ansible'"):
        make_settings(tmp_path, remediation_adapter="ansible")


def test_routes_send_actions_to_their_adapter(tmp_path):
    with HTTPPeer() as peer:
        settings = make_settings(tmp_path, remediation_routes=["rollback_deploy=webhook"], webhook_url=peer.url)
        infrastructure = SimulatedInfrastructure(TOPOLOGY)
        router = build_router(settings, infrastructure, TOPOLOGY)
        router.execute("rollback_deploy", "api", {})
        router.execute("restart_service", "api", {})
        assert [r["action"] for r in peer.requests] == ["rollback_deploy"]
        assert [op[1:] for op in infrastructure.operations()] == [("restart_service", "api")]
