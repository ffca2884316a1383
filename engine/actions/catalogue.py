"""The remediation actions Firstline knows, and which services each can act on."""

from __future__ import annotations

from dataclasses import dataclass

from engine.infra.topology import Topology


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


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("restart_service", None, "restart every instance of the service, one at a time",
                   "restarting {service}", "restarted {service}"),
        ActionSpec("rollback_deploy", None, "roll the service back to its previous version",
                   "rolling back the latest update to {service}", "rolled back the latest update to {service}"),
        ActionSpec("scale_out", None, "add instances to the service",
                   "adding capacity to {service}", "added capacity to {service}"),
        ActionSpec("rebuild_cache", "cache", "rebuild the cache from the source of truth",
                   "rebuilding the saved copies of pages and search results",
                   "rebuilt the saved copies of pages and search results"),
        # clear_user_cache and resync_account only rebuild data derived from what the account already holds:
        # they change nothing its owner set and show the asker nothing, so they run without a verified identity.
        ActionSpec("clear_user_cache", "cache", "drop the asking user's cached pages",
                   "clearing the saved copy of your pages", "cleared the saved copy of your pages", per_user=True),
        ActionSpec("kill_slow_queries", "sql", "terminate queries running longer than a limit",
                   "stopping stuck requests that slow everything down",
                   "stopped stuck requests that were slowing everything down"),
        ActionSpec("analyze_tables", "sql", "refresh the query planner's statistics",
                   "refreshing what helps the app find your data quickly",
                   "refreshed what helps the app find your data quickly"),
        ActionSpec("reset_connection_pool", "sql", "close and reopen the pool's connections",
                   "resetting the app's connections to your data", "reset the app's connections to your data"),
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
                   "sending your e-mail again", "sent your e-mail again", per_user=True, account=True),
        ActionSpec("reconnect_integration", "connectors", "renew the asking user's connector link",
                   "renewing the link to your connected app", "renewed the link to your connected app",
                   per_user=True, account=True),
        ActionSpec("reset_user_settings", "settings", "restore a group of the user's settings",
                   "restoring your settings", "restored your settings", per_user=True, account=True),
    )
}


def action_targets(topology: Topology) -> dict[str, frozenset[str]]:
    """For each action, the services of this topology it may target."""
    return {name: topology.services_providing(spec.needs) for name, spec in ACTIONS.items()}
