"""`firstline learned ...`: the curator's commands for rules the system learned from resolutions."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import click

from engine.catalogue import action_targets
from engine.learning import LearnedRule, Ledger, rule_validator
from engine.store import DuckDBStore
from engine.wiring import load_pack
from firstline.context import Context

CURATOR = "curator (cli)"


@contextlib.contextmanager
def _ledger(obj: Context) -> Iterator[Ledger]:
    settings = obj.settings()
    topology, playbooks = load_pack(settings)
    store = DuckDBStore(settings.database_path)
    try:
        ledger = Ledger(store, validate=rule_validator(action_targets(topology), frozenset(playbooks)))
        yield ledger
        # Publish what is live now; a running server's rule source picks the file up.
        ledger.export(settings.learned_rules_dir / "active.yaml")
    finally:
        store.close()


@click.group("learned")
def learned_group() -> None:
    """Review the rules learned from resolutions: list, show, approve, reject, retire, revert, diff."""


@learned_group.command("list")
@click.option("--status", type=click.Choice(["proposed", "shadow", "active", "retired", "rejected", "invalid"]),
              help="Only rules whose latest version has this status.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def list_command(obj: Context, status: str | None, as_json: bool) -> None:
    """Every learned rule's latest version: status, version, why it has that status."""
    with _ledger(obj) as ledger:
        rules = ledger.rules(status)
    if as_json:
        click.echo(json.dumps([_summary(r) for r in rules], indent=2))
        return
    if not rules:
        click.echo("no learned rules" + (f" with status {status}" if status else ""))
        return
    width = max(len(r.name) for r in rules)
    click.echo(f"{'STATUS':<10}{'VERSION':>8}  {'NAME':<{width}}  WHY")
    for rule in rules:
        click.echo(f"{rule.status:<10}{rule.version:>8}  {rule.name:<{width}}  {rule.reason}")


@learned_group.command("show")
@click.argument("name")
@click.pass_obj
def show_command(obj: Context, name: str) -> None:
    """A learned rule: its versions, provenance (which conversations taught it) and current body."""
    with _ledger(obj) as ledger:
        ledger.existing(name)  # a clear error for an unknown name
        versions = ledger.versions(name)
    current = versions[-1]
    click.echo(f"{name}: {current.status} (version {current.version})")
    for version in versions:
        click.echo(f"  v{version.version} {version.status:<9} by {version.actor}: {version.reason}")
    fix = current.provenance.get("fix", {})
    click.echo(f"taught by {current.provenance.get('users', '?')} users in conversations "
               f"{', '.join(current.provenance.get('conversations', [])) or '(none recorded)'}")
    click.echo(f"fix: {fix.get('action')} on {fix.get('target')} for {fix.get('playbook')}")
    click.echo(json.dumps(current.body, indent=2))


def _transition(status: str, verb: str):
    @click.argument("name")
    @click.option("--reason", default="", help="Why, for the rule's history.")
    @click.pass_obj
    def command(obj: Context, name: str, reason: str) -> None:
        with _ledger(obj) as ledger:
            rule = ledger.set_status(name, status, CURATOR, reason or f"{verb} by a curator")
        click.echo(f"{name}: version {rule.version} is {rule.status}")

    command.__doc__ = f"Mark a learned rule {status} (a new version; the old ones stay)."
    return command


learned_group.command("approve")(_transition("active", "approved"))
learned_group.command("reject")(_transition("rejected", "rejected"))
learned_group.command("retire")(_transition("retired", "retired"))
learned_group.command("shadow")(_transition("shadow", "put in shadow"))


@learned_group.command("revert")
@click.argument("name")
@click.argument("version", type=int)
@click.pass_obj
def revert_command(obj: Context, name: str, version: int) -> None:
    """Make an earlier version current again (as a new version)."""
    with _ledger(obj) as ledger:
        rule = ledger.revert(name, version, CURATOR)
    click.echo(f"{name}: version {rule.version} restores version {version} ({rule.status})")


@learned_group.command("diff")
@click.argument("name")
@click.argument("old", type=int)
@click.argument("new", type=int)
@click.pass_obj
def diff_command(obj: Context, name: str, old: int, new: int) -> None:
    """A unified diff between two versions of a learned rule."""
    with _ledger(obj) as ledger:
        click.echo(ledger.diff(name, old, new) or "the two versions are the same")


def _summary(rule: LearnedRule) -> dict:
    return {"name": rule.name, "version": rule.version, "status": rule.status, "reason": rule.reason,
            "actor": rule.actor, "provenance": rule.provenance}


@click.group("handoff")
def handoff_group() -> None:
    """Engineering hand-offs: list the open ones; close one with the fix that worked (it teaches the rules)."""


@handoff_group.command("list")
@click.pass_obj
def handoff_list(obj: Context) -> None:
    """Open hand-offs, oldest first."""
    with _ledger(obj) as ledger:
        rows = ledger.store.execute(
            "SELECT h.id, d.playbook, h.summary FROM handoffs h JOIN decisions d ON d.id = h.decision_id "
            "WHERE h.status = 'open' ORDER BY h.created_at")
    if not rows:
        click.echo("no open hand-offs")
    for handoff_id, playbook, summary in rows:
        click.echo(f"{handoff_id}  {playbook}  {summary}")


@handoff_group.command("close")
@click.argument("handoff_id")
@click.option("--fix", "action", required=True, help="The remediation action that fixed it, e.g. rebuild_cache.")
@click.option("--target", required=True, help="The service it ran on, e.g. cache.")
@click.option("--by", "engineer", required=True, help="Who fixed it (recorded with the vote).")
@click.pass_obj
def handoff_close(obj: Context, handoff_id: str, action: str, target: str, engineer: str) -> None:
    """Close a hand-off with its fix; with another user's confirmation of the same fix, a rule is proposed."""
    with _ledger(obj) as ledger:
        rule = ledger.close_handoff(handoff_id, action, target, engineer)
    click.echo(f"hand-off {handoff_id} closed; {action} on {target} recorded as its fix"
               + (f"; proposed learned rule {rule.name}" if rule else ""))
