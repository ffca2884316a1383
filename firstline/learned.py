"""`firstline learned ...`: the curator's commands for rules the system learned from resolutions."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import click

from engine.actions.catalogue import action_targets
from engine.decision.trace import trace_lines
from engine.learning.curation import RuleFilter, RuleReview
from engine.learning.ledger import STATUSES, LearningLedger, Policy, rule_parser, rule_validator
from engine.store import CurationQueries, Decisions, DuckDBStore
from engine.wiring import load_pack
from firstline.context import Context

CURATOR = "curator (cli)"


@contextlib.contextmanager
def _review(obj: Context) -> Iterator[RuleReview]:
    settings = obj.settings()
    topology, playbooks = load_pack(settings)
    store = DuckDBStore(settings.database_path)
    try:
        known = (action_targets(topology), frozenset(playbooks))
        ledger = LearningLedger(store, Policy.from_settings(settings), validate=rule_validator(*known))
        yield RuleReview(ledger, rule_parser(*known))
        # Publish what is live now; a running server's rule source picks the file up.
        ledger.export(settings.learned_rules_dir / "active.yaml")
    finally:
        store.close()


@contextlib.contextmanager
def _ledger(obj: Context) -> Iterator[LearningLedger]:
    with _review(obj) as review:
        yield review.ledger


@click.group("learned")
def learned_group() -> None:
    """Review the rules learned from resolutions: list, show, approve, reject, retire, revert, diff."""


@learned_group.command("list")
@click.option("--status", type=click.Choice(list(STATUSES)), help="Only rules whose latest version has this status.")
@click.option("--playbook", help="Only rules about this playbook.")
@click.option("--limit", type=click.IntRange(1, 500), default=500, show_default=True, help="At most this many.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many (to page through thousands).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def list_command(obj: Context, status: str | None, playbook: str | None, limit: int, offset: int,
                 as_json: bool) -> None:
    """Every learned rule's latest version: status, fix confidence, fire count, live and shadow record, why."""
    with _review(obj) as review:
        rules, total = review.listing(RuleFilter(status, playbook, limit, offset))
        provenance = {r["name"]: review.ledger.existing(r["name"]).provenance for r in rules} if as_json else {}
    if as_json:
        click.echo(json.dumps([{**r, "provenance": provenance[r["name"]]} for r in rules], indent=2))
        return
    if not rules:
        click.echo("no learned rules" + (f" with status {status}" if status else "")
                   + (f" about {playbook}" if playbook else ""))
        return
    width = max(len(r["name"]) for r in rules)
    click.echo(f"{'STATUS':<10}{'VERSION':>8}{'CONF':>6}{'FIRED':>7}{'LIVE':>8}{'SHADOW':>8}  {'NAME':<{width}}  WHY")
    for r in rules:
        click.echo(f"{r['status']:<10}{r['version']:>8}{r['confidence']:>6.0%}{r['fired']:>7}"
                   f"{_ratio(r['live']['successes'], r['live']['tries']):>8}"
                   f"{_ratio(r['shadow']['agreed'], r['shadow']['cases']):>8}  {r['name']:<{width}}  {r['reason']}")
    if total > len(rules):
        click.echo(f"({offset + 1}-{offset + len(rules)} of {total}; --offset pages on)")


@learned_group.command("show")
@click.argument("name")
@click.option("--traces", is_flag=True, help="Also print the example decisions' traces, with why the rule did or "
                                              "did not fire in each.")
@click.pass_obj
def show_command(obj: Context, name: str, traces: bool) -> None:
    """A learned rule: its record, versions, provenance (which conversations taught it), example decisions
    and current body."""
    with _review(obj) as review:
        detail = review.detail(name)
        explained = {e["decision_id"]: _explained(review, e["decision_id"], name)
                     for e in detail["examples"]} if traces else {}
    click.echo(f"{name}: {detail['status']} (version {detail['version']})")
    fix = detail["fix"]
    click.echo(f"fix: {fix.get('action')} on {fix.get('target')} for {fix.get('playbook')}; "
               f"confidence {detail['confidence']:.0%}; fired {detail['fired']} times; live "
               f"{_ratio(detail['live']['successes'], detail['live']['tries'])}; shadow "
               f"{_ratio(detail['shadow']['agreed'], detail['shadow']['cases'])}")
    for version in detail["versions"]:
        click.echo(f"  v{version['version']} {version['status']:<9} by {version['actor']}: {version['reason']}")
    click.echo(f"taught by {detail['users']} users in conversations "
               f"{', '.join(detail['provenance'].get('conversations', [])) or '(none recorded)'}")
    if detail["examples"]:
        click.echo("example decisions (`firstline learned show NAME --traces` prints their traces):")
    for example in detail["examples"]:
        click.echo(f"  {example['kind']:<7} {example['decision_id']}  conversation {example['conversation_id']}  "
                   f"{example['decision']}")
        for line in explained.get(example["decision_id"], []):
            click.echo(f"    {line}")
    click.echo(json.dumps(detail["body"], indent=2))


def _explained(review: RuleReview, decision_id: str, name: str) -> list[str]:
    trace = Decisions(review.ledger.records.db).trace(decision_id)
    if trace is None:
        return ["(deleted by its user)"]
    trace["why_not"] = [review.why_not(trace, name)]
    return trace_lines(trace)


def _ratio(part: float, whole: int) -> str:
    return f"{part:g}/{whole}" if whole else "-"


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


@click.group("handoff")
def handoff_group() -> None:
    """Engineering hand-offs: list the open ones; close one with the fix that worked (it teaches the rules)."""


@handoff_group.command("list")
@click.pass_obj
def handoff_list(obj: Context) -> None:
    """Open hand-offs, oldest first."""
    with _ledger(obj) as ledger:
        rows = CurationQueries(ledger.records.db).open_handoffs()
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
