import pytest

from core.errors import ConfigurationError, RemediationError
from core.settings import PROJECT_ROOT
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import load_topology
from tests.conftest import ManualClock

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")


def test_healthy_by_default_and_deterministic():
    clock = ManualClock(1_000_000.0)
    first = SimulatedInfrastructure(TOPOLOGY, seed=3, clock=clock)
    second = SimulatedInfrastructure(TOPOLOGY, seed=3, clock=clock)
    assert first.observe() == second.observe()
    assert TOPOLOGY.unhealthy_services(first.observe()) == set()
    assert SimulatedInfrastructure(TOPOLOGY, seed=4, clock=clock).observe() != first.observe()


def test_slow_queries_slow_the_services_that_depend_on_the_database():
    infra = SimulatedInfrastructure(TOPOLOGY, clock=ManualClock(1_000_000.0))
    assert infra.inject("slow_queries") == "database"
    unhealthy = TOPOLOGY.unhealthy_services(infra.observe())
    assert {"database", "api", "web"} <= unhealthy
    assert TOPOLOGY.root_causes("web", unhealthy) == ["database"]


def test_the_right_action_clears_the_fault_and_the_wrong_one_does_not():
    infra = SimulatedInfrastructure(TOPOLOGY, clock=ManualClock(1_000_000.0))
    infra.inject("cache_degradation")
    infra.execute("restart_service", "cache", {})
    assert "cache" in TOPOLOGY.unhealthy_services(infra.observe())
    infra.execute("rebuild_cache", "cache", {})
    assert TOPOLOGY.unhealthy_services(infra.observe()) == set()


def test_a_memory_leak_grows_with_time():
    clock = ManualClock(1_000_000.0)
    infra = SimulatedInfrastructure(TOPOLOGY, clock=clock)
    service = infra.inject("memory_leak")
    early = infra.observe()[service]["memory_pct"]
    clock.now += 30 * 60
    late = infra.observe()[service]["memory_pct"]
    assert late > early + 30
    infra.execute("restart_service", service, {})
    assert infra.observe()[service]["memory_pct"] < TOPOLOGY.services[service].limits["memory_pct"]


def test_unknown_fault_and_action_are_refused():
    infra = SimulatedInfrastructure(TOPOLOGY, clock=ManualClock(1_000_000.0))
    with pytest.raises(ConfigurationError, match="unknown fault"):
        infra.inject("gremlins")
    with pytest.raises(ConfigurationError, match="unknown service"):
        infra.inject("slow_queries@moon")
    with pytest.raises(RemediationError, match="unknown action"):
        infra.execute("format_disk", "database", {})


def test_the_simulation_answers_every_action_of_the_catalogue_and_no_other():
    from engine.actions.catalogue import ACTIONS
    from engine.infra.simulation import PER_USER, SIMULATED

    sim = SimulatedInfrastructure(TOPOLOGY, seed=3, clock=ManualClock(1_000_000.0))
    assert set(ACTIONS) == SIMULATED
    assert {name for name, spec in ACTIONS.items() if spec.per_user} == PER_USER
    with pytest.raises(RemediationError, match="unknown action"):
        sim.execute("format_disk", "api", {})
