"""The remediation actions Firstline knows, and which services each can act on."""

from __future__ import annotations

from dataclasses import dataclass

from engine.infra.topology import Topology


@dataclass(frozen=True)
class ActionSpec:
    """A remediation verb: the capability a target must provide (None: any service), and whom it affects."""

    name: str
    needs: str | None
    help: str
    per_user: bool = False  # acts for the asking user only, so cooldowns do not apply across users
    account: bool = False  # changes the asking user's account: runs only for a verified identity (safety.decide)


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("restart_service", None, "restart every instance of the service, one at a time"),
        ActionSpec("rollback_deploy", None, "roll the service back to its previous version"),
        ActionSpec("scale_out", None, "add instances to the service"),
        ActionSpec("rebuild_cache", "cache", "rebuild the cache from the source of truth"),
        # clear_user_cache and resync_account only rebuild data derived from what the account already holds:
        # they change nothing its owner set and show the asker nothing, so they run without a verified identity.
        ActionSpec("clear_user_cache", "cache", "drop the asking user's cached pages", per_user=True),
        ActionSpec("kill_slow_queries", "sql", "terminate queries running longer than a limit"),
        ActionSpec("analyze_tables", "sql", "refresh the query planner's statistics"),
        ActionSpec("reset_connection_pool", "sql", "close and reopen the pool's connections"),
        ActionSpec("retry_failed_jobs", "jobs", "put failed background jobs back on the queue"),
        ActionSpec("resync_account", "jobs", "queue a full resync of the asking user's data", per_user=True),
        ActionSpec("revoke_sessions", "sessions", "sign the asking user out everywhere", per_user=True,
                   account=True),
        ActionSpec("unlock_account", "sessions", "lift a sign-in lockout on the asking user", per_user=True,
                   account=True),
        ActionSpec("resend_email", "email", "send the asking user's e-mail again", per_user=True, account=True),
        ActionSpec("reconnect_integration", "connectors", "renew the asking user's connector link", per_user=True,
                   account=True),
        ActionSpec("reset_user_settings", "settings", "restore a group of the user's settings", per_user=True,
                   account=True),
    )
}


def action_targets(topology: Topology) -> dict[str, frozenset[str]]:
    """For each action, the services of this topology it may target."""
    return {name: topology.services_providing(spec.needs) for name, spec in ACTIONS.items()}
