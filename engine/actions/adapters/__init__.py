"""Remediation adapters: one small interface, chosen in configuration, so that an action reaches the real system.

    simulated   the built-in simulated infrastructure (default)
    webhook     POST the action to a deploy system or orchestrator
    shell       a command from an allow-list in the settings (argv, never a shell, never from user text)
    process     stop and start a local process (restart_service)
    postgres    terminate long queries via pg_stat_activity, ANALYZE, close idle connections
    redis       delete the cache's keys by prefix with SCAN, and report memory

`build_router` reads the settings, refuses an unknown adapter, route or missing connection setting at start-up,
and returns the router every remediation goes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from core.errors import ConfigurationError, RemediationError
from core.settings import Settings
from engine.actions.adapters.postgres import PostgresAdapter
from engine.actions.adapters.process import ProcessAdapter
from engine.actions.adapters.redis_cache import RedisAdapter
from engine.actions.adapters.shell import ShellAdapter
from engine.actions.adapters.simulated import SimulatedAdapter
from engine.actions.adapters.webhook import WebhookAdapter
from engine.actions.catalogue import ACTIONS, param_problems, refusal_of_params
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import Topology

ADAPTERS = ("simulated", "webhook", "shell", "process", "postgres", "redis")


class Adapter(Protocol):
    """Runs actions on one kind of system."""

    name: str

    def supports(self, action: str) -> bool: ...

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        """Run the action; return what was done; raise RemediationError when it could not be done."""
        ...

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        """Take the action back after failed verification; None when it cannot be undone."""
        ...

    def close(self) -> None: ...


class AdapterRouter:
    """Sends each action to its adapter: the route named for it, else the default adapter."""

    def __init__(self, default: Adapter, routes: Mapping[str, Adapter], topology: Topology) -> None:
        self.default = default
        self.routes = dict(routes)
        self.topology = topology

    def adapter_for(self, action: str) -> Adapter:
        return self.routes.get(action, self.default)

    def adapter_name(self, action: str) -> str:
        return self.adapter_for(action).name

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        adapter = self._checked(action, target, params)
        return adapter.execute(action, target, params)

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        adapter = self._checked(action, target, params)
        return adapter.undo(action, target, params)

    def close(self) -> None:
        for adapter in {id(a): a for a in [self.default, *self.routes.values()]}.values():
            adapter.close()

    def _checked(self, action: str, target: str, params: Mapping[str, Any]) -> Adapter:
        # Targets come from the infrastructure file through the rules; anything else is refused here too. So are
        # parameters the loaders did not see: a rule may fill one from a fact (`replicas: "{metric.value}"`).
        if action not in ACTIONS:
            raise RemediationError(f"unknown action {action!r}", action=action, target=target)
        if target not in self.topology.services:
            raise RemediationError(f"unknown service {target!r}", action=action, target=target)
        problems = param_problems(action, target, params, self.topology)
        if problems:
            raise RemediationError(refusal_of_params(problems), action=action, target=target)
        adapter = self.adapter_for(action)
        if not adapter.supports(action):
            raise RemediationError(f"the {adapter.name} adapter cannot run {action}; route it to another adapter "
                                   "with FIRSTLINE_REMEDIATION_ROUTES", action=action, target=target)
        return adapter


def build_router(settings: Settings, infrastructure: SimulatedInfrastructure, topology: Topology) -> AdapterRouter:
    """The adapters the settings name, each built once; configuration errors are raised here, at start-up."""
    routes = _parse_routes(settings.remediation_routes)
    built: dict[str, Adapter] = {}
    for name in {settings.remediation_adapter, *routes.values()}:
        built[name] = _make(name, settings, infrastructure, topology)
    for action, name in routes.items():
        if not built[name].supports(action):
            raise ConfigurationError(f"remediation route {action}={name}: the {name} adapter cannot run {action}",
                                     key="remediation_routes")
    return AdapterRouter(built[settings.remediation_adapter], {a: built[n] for a, n in routes.items()}, topology)


def _parse_routes(entries: tuple[str, ...]) -> dict[str, str]:
    routes = {}
    for entry in entries:
        action, sep, name = (part.strip() for part in entry.partition("="))
        if not sep or action not in ACTIONS:
            raise ConfigurationError(f"remediation route {entry!r}: write `action=adapter` with a known action "
                                     f"({', '.join(ACTIONS)})", key="remediation_routes")
        if name not in ADAPTERS:
            raise ConfigurationError(f"remediation route {entry!r}: unknown adapter {name!r}; known adapters: "
                                     f"{', '.join(ADAPTERS)}", key="remediation_routes")
        routes[action] = name
    return routes


def _make(name: str, settings: Settings, infrastructure: SimulatedInfrastructure, topology: Topology) -> Adapter:
    if name == "simulated":
        return SimulatedAdapter(infrastructure)
    if name == "webhook":
        return WebhookAdapter(_required(settings.webhook_url, "webhook_url", name), settings.remediation_timeout_s)
    if name == "shell":
        return ShellAdapter.from_settings(settings.shell_commands, settings.remediation_timeout_s)
    if name == "process":
        return ProcessAdapter.from_settings(settings.process_commands, topology, settings.data_dir / "run")
    if name == "postgres":
        return PostgresAdapter(_required(settings.postgres_dsn, "postgres_dsn", name), settings.postgres_slow_query_s)
    if name == "redis":
        return RedisAdapter(_required(settings.redis_url, "redis_url", name), settings.redis_key_prefix)
    raise ConfigurationError(f"unknown remediation adapter {name!r}; known adapters: {', '.join(ADAPTERS)}",
                             key="remediation_adapter")


def _required(value: str, key: str, adapter: str) -> str:
    if not value:
        raise ConfigurationError(f"the {adapter} adapter needs FIRSTLINE_{key.upper()}", key=key)
    return value

