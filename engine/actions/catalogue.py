"""The remediation actions Firstline knows, which services each can act on, and the parameters each takes.

Parameters are checked against `ActionSpec.params` wherever they come from: a playbook remedy and a rule's
`remediate` when the files are loaded (curated and learned rules alike), and every action again in the adapter
router before it runs (a rule may fill a parameter from a fact). An action takes only the parameters it declares;
a number is finite and within its bounds; `scale_out`'s `replicas` is a whole number within the target service's
`replicas` in the infrastructure file.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from engine.infra.topology import Topology

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")  # a word, or schema.table
DAY_S = 86_400.0


@dataclass(frozen=True)
class Param:
    """A parameter an action takes. `kind`: "whole" (an int), "number" (finite, int or float) or "name" (a word
    of letters, digits and `_`, at most 63 characters, optionally `schema.table`); bounds are inclusive. The
    bounds of `replicas` come from the target service instead (`replicas: {min, max}`)."""

    kind: Literal["whole", "number", "name"]
    help: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class ActionSpec:
    """A remediation verb: the capability a target must provide (None: any service), and whom it affects.
    `help` is for operators; `doing` and `did` are what the user reads, in plain words: the progress line while it
    runs ("clearing the saved copy of your pages") and what was done ("cleared the saved copy of your pages").
    `{service}` in them is the target as the user hears it (the voice's service names)."""

    name: str
    needs: str | None
    help: str
    doing: str
    did: str
    per_user: bool = False  # acts for the asking user only, so cooldowns do not apply across users
    account: bool = False  # changes the asking user's account: runs only for a verified identity (safety.decide)
    params: Mapping[str, Param] = field(default_factory=lambda: MappingProxyType({}))


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("restart_service", None, "restart every instance of the service, one at a time",
                   "restarting {service}", "restarted {service}"),
        ActionSpec("rollback_deploy", None, "roll the service back to its previous version",
                   "rolling back the latest update to {service}", "rolled back the latest update to {service}"),
        ActionSpec("scale_out", None, "add instances to the service",
                   "adding capacity to {service}", "added capacity to {service}",
                   params=MappingProxyType({"replicas": Param("whole", "how many instances the service should run, "
                                                              "within its `replicas` in the infrastructure file")})),
        ActionSpec("rebuild_cache", "cache", "rebuild the cache from the source of truth",
                   "rebuilding the saved copies of pages and search results",
                   "rebuilt the saved copies of pages and search results"),
        # clear_user_cache and resync_account only rebuild data derived from what the account already holds:
        # they change nothing its owner set and show the asker nothing, so they run without a verified identity.
        ActionSpec("clear_user_cache", "cache", "drop the asking user's cached pages",
                   "clearing the saved copy of your pages", "cleared the saved copy of your pages", per_user=True),
        ActionSpec("kill_slow_queries", "sql", "terminate queries running longer than a limit",
                   "stopping stuck requests that slow everything down",
                   "stopped stuck requests that were slowing everything down",
                   params=MappingProxyType({"older_than_s": Param("number", "seconds a query must have run", 1,
                                                                  DAY_S)})),
        ActionSpec("analyze_tables", "sql", "refresh the query planner's statistics",
                   "refreshing what helps the app find your data quickly",
                   "refreshed what helps the app find your data quickly",
                   params=MappingProxyType({"table": Param("name", "the table (or schema.table); all when absent")})),
        ActionSpec("reset_connection_pool", "sql", "close and reopen the pool's connections",
                   "resetting the app's connections to your data", "reset the app's connections to your data",
                   params=MappingProxyType({"idle_s": Param("number", "seconds a connection must have been idle", 0,
                                                            DAY_S)})),
        ActionSpec("retry_failed_jobs", "jobs", "put failed background jobs back on the queue",
                   "retrying background tasks that had failed", "retried background tasks that had failed"),
        ActionSpec("resync_account", "jobs", "queue a full resync of the asking user's data",
                   "syncing your data again from the start", "started a fresh sync of your data", per_user=True),
        ActionSpec("revoke_sessions", "sessions", "sign the asking user out everywhere",
                   "signing you out on every device", "signed you out on every device", per_user=True,
                   account=True),
        ActionSpec("unlock_account", "sessions", "lift a sign-in lockout on the asking user",
                   "lifting the sign-in lock on your account", "lifted the sign-in lock on your account",
                   per_user=True, account=True),
        ActionSpec("resend_email", "email", "send the asking user's e-mail again",
                   "sending your e-mail again", "sent your e-mail again", per_user=True, account=True,
                   params=MappingProxyType({"kind": Param("name", "which e-mail (verification, invitation, ...)")})),
        ActionSpec("reconnect_integration", "connectors", "renew the asking user's connector link",
                   "renewing the link to your connected app", "renewed the link to your connected app",
                   per_user=True, account=True,
                   params=MappingProxyType({"integration": Param("name", "which connector (calendar, slack, ...)")})),
        ActionSpec("reset_user_settings", "settings", "restore a group of the user's settings",
                   "restoring your settings", "restored your settings", per_user=True, account=True,
                   params=MappingProxyType({"scope": Param("name", "which group of settings (filters, editor, ...)")})),
    )
}


def action_targets(topology: Topology) -> dict[str, frozenset[str]]:
    """For each action, the services of this topology it may target."""
    return {name: topology.services_providing(spec.needs) for name, spec in ACTIONS.items()}


def param_problems(action: str, target: str | None, params: Mapping[str, Any],
                   topology: Topology | None = None) -> list[tuple[str, str]]:
    """What is wrong with `params` for `action` on `target`, as (parameter, message) pairs; none when they are
    fine. `target` None: not known yet (a rule's `{alias.field}`), so `replicas` is held to the widest bounds any
    service declares. Without `topology` only the kinds and fixed bounds are checked."""
    spec = ACTIONS.get(action)
    if spec is None:
        return []  # an unknown action is reported by whoever checks actions
    if not isinstance(params, Mapping):
        return [("", f"{action}'s params are a mapping of name -> value, not {_shown(params)}")]
    problems = []
    for name, value in params.items():
        param = spec.params.get(name) if isinstance(name, str) else None
        if param is None:
            takes = ", ".join(spec.params) or "none"
            problems.append((str(name)[:60], f"{action} takes no parameter {_shown(name)}; it takes: {takes}"))
            continue
        why = _kind_problem(param, value)
        if why is None and name == "replicas":
            why = _replicas_problem(value, target, topology)
        if why is not None:
            problems.append((name, why))
    return problems


def refusal_of_params(problems: list[tuple[str, str]]) -> str:
    """The one-line refusal of `param_problems`' findings (the first five), for logs, events and errors."""
    return "refusing the parameters: " + "; ".join(f"{name}: {message}" if name else message
                                                     for name, message in problems[:5])


def _kind_problem(param: Param, value: Any) -> str | None:
    if param.kind == "name":
        if not isinstance(value, str) or not NAME.match(value):
            return f"{_shown(value)} is not a name (letters, digits and _, at most 63 characters)"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{_shown(value)} is not a {'whole ' if param.kind == 'whole' else ''}number"
    if not math.isfinite(value):
        return f"{_shown(value)} is not a finite number"
    if param.kind == "whole" and not isinstance(value, int):
        return f"{_shown(value)} is not a whole number"
    if param.minimum is not None and value < param.minimum:
        return f"{value:g} is below the minimum {param.minimum:g}"
    if param.maximum is not None and value > param.maximum:
        return f"{value:g} is above the maximum {param.maximum:g}"
    return None


def _replicas_problem(value: int, target: str | None, topology: Topology | None) -> str | None:
    if topology is None:
        return None if value >= 1 else f"{value} is below 1"
    if target is None:
        declared = [s.replicas for s in topology.services.values() if s.replicas]
        if not declared:
            return "no service declares `replicas` in the infrastructure file, so none can be scaled to a number"
        low, high = min(r[0] for r in declared), max(r[1] for r in declared)
        return None if low <= value <= high else f"{value} is outside every service's replicas ({low} to {high})"
    service = topology.services.get(target)
    if service is None:
        return None  # an unknown target is reported by whoever checks targets
    if service.replicas is None:
        return (f"{target} declares no `replicas` in the infrastructure file; add `replicas: {{min: N, max: M}}` "
                "to it to let scale_out set a number")
    low, high = service.replicas
    if not low <= value <= high:
        return f"{value} is outside {target}'s replicas, {low} to {high} (the infrastructure file)"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def params_checker(topology: Topology) -> Callable[[str, str | None, Mapping[str, Any]], list[tuple[str, str]]]:
    """`param_problems` against this topology, for the playbook and rule loaders (which do not import the engine)."""
    return functools.partial(param_problems, topology=topology)
