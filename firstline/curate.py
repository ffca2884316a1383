"""`firstline rules ...`: the curator's commands to read, check, test, graph and trace rules."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import click
import yaml

from core.errors import InputError
from engine.decision.explain import decision_trace
from engine.decision.ruleengine import RuleEngine
from engine.decision.ruletest import run_cases
from engine.decision.trace import trace_lines
from engine.store import Decisions, DuckDBStore
from engine.wiring import load_pack, load_rulebase
from firstline.context import Context
from rules.compiler import compile_rule
from rules.graph import analyse
from rules.model import Rule, RuleBase
from rules.testfile import load_cases

PATHS = click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))


def _rulebase(obj: Context, paths: tuple[Path, ...] = ()) -> RuleBase:
    """The rules in `paths` (default: the configured rules folder), checked against actions and playbooks."""
    settings = obj.settings()
    topology, playbooks = load_pack(settings)
    return load_rulebase(settings, topology, playbooks, list(paths) or None)


@click.group("rules")
def rules_group() -> None:
    """Read, check, test, graph and trace the rules."""


@rules_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def list_command(obj: Context, as_json: bool) -> None:
    """List every rule: ruleset, salience, name, where it is defined."""
    rulebase = _rulebase(obj)
    rules = sorted(rulebase.rules, key=lambda r: (r.ruleset, -r.salience, r.name))
    if as_json:
        click.echo(json.dumps([_summary(r) for r in rules], indent=2))
        return
    width = max(len(r.name) for r in rules)
    click.echo(f"{'RULESET':<11}{'SALIENCE':>8}  {'NAME':<{width}}  WHERE")
    for rule in rules:
        click.echo(f"{rule.ruleset:<11}{rule.salience:>8}  {rule.name:<{width}}  {_where(rule)}")
    click.echo(f"{len(rules)} rules, version {rulebase.version}")


def _where(rule: Rule) -> str:
    """file:line, relative to the current folder when the file is under it."""
    path = Path(rule.source)
    with contextlib.suppress(ValueError):  # outside the current folder: keep it as it is
        path = path.resolve().relative_to(Path.cwd())
    return f"{path}:{rule.line}" if rule.line else str(path)


def _summary(rule: Rule) -> dict[str, Any]:
    return {"name": rule.name, "ruleset": rule.ruleset, "salience": rule.salience, "file": rule.source,
            "line": rule.line, "description": rule.description}


@rules_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def show_command(obj: Context, name: str, as_json: bool) -> None:
    """Show one rule: as written, as alternatives, as compiled, and the rules it feeds and is fed by."""
    rulebase = _rulebase(obj)
    rule = rulebase.get(name)
    if rule is None:
        raise click.UsageError(f"no rule named {name!r}; `firstline rules list` shows them")
    graph = analyse(rulebase).graph
    links = {
        "fed_by": sorted({(a, d["fact"]) for a, _, d in graph.in_edges(name, data=True) if d["kind"] == "feeds"}),
        "feeds": sorted({(b, d["fact"]) for _, b, d in graph.out_edges(name, data=True) if d["kind"] == "feeds"}),
        "blocked_by": sorted({(a, d["fact"]) for a, _, d in graph.in_edges(name, data=True) if d["kind"] != "feeds"}),
    }
    detail = {
        **_summary(rule),
        "when": rule.condition,
        "alternatives": [[p.describe() for p in alternative] for alternative in rule.alternatives],
        "then": [{a.verb: _plain(a.args)} for a in rule.actions],
        "compiled": compile_rule(rule),
        **{key: [f"{other} ({fact})" for other, fact in value] for key, value in links.items()},
    }
    if as_json:
        click.echo(json.dumps(detail, indent=2, default=str))
        return
    click.echo(f"{rule.name}  ({rule.ruleset}, salience {rule.salience}, {_where(rule)})")
    if rule.description:
        click.echo(f"  {rule.description}")
    for key in ("when", "then"):
        click.echo(f"{key}:")
        click.echo(_indent(yaml.safe_dump(detail[key], sort_keys=False, allow_unicode=True)))
    click.echo("alternatives:")
    for index, alternative in enumerate(detail["alternatives"]):
        click.echo(f"  {index}: {' AND '.join(alternative)}")
    click.echo("compiled (durable-rules; `none` patterns are checked by Firstline when the rule fires):")
    for name, body in detail["compiled"].items():
        click.echo(f"  {name}: {json.dumps(body)}")
    for key in ("fed_by", "feeds", "blocked_by"):
        click.echo(f"{key.replace('_', ' ')}: {', '.join(detail[key]) or '-'}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.rstrip().splitlines())


@rules_group.command("validate")
@PATHS
@click.pass_obj
def validate_command(obj: Context, paths: tuple[Path, ...]) -> None:
    """Check rule files (default: the configured folder); every problem as file:line: field: message."""
    rulebase = _rulebase(obj, paths)
    files = sorted({r.source for r in rulebase.rules})
    click.echo(f"ok: {len(rulebase)} rules in {len(files)} files, version {rulebase.version}")


@rules_group.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--rules", "rules_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Rule files or folders to test (default: the configured rules folder).")
@click.pass_context
def test_command(ctx: click.Context, paths: tuple[Path, ...], rules_paths: tuple[Path, ...]) -> None:
    """Run rule test files: each case gives facts and the rules and actions expected. Exit 1 if any fails."""
    rulebase = _rulebase(ctx.obj, rules_paths)
    cases = load_cases(list(paths), rulebase.vocabulary)
    results = run_cases(RuleEngine(rulebase), cases)
    for result in results:
        click.echo("\n".join(result.lines()))
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results)} cases: {len(results) - failed} passed, {failed} failed")
    if failed:
        ctx.exit(1)


@rules_group.command("graph")
@PATHS
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "json"]), default="text", show_default=True,
              help="text: the findings; dot: Graphviz; json: nodes, edges and findings.")
@click.pass_obj
def graph_command(obj: Context, paths: tuple[Path, ...], fmt: str) -> None:
    """Which rule's facts feed which rule; cycles, rules that can never fire, conflicting overlaps."""
    report = analyse(_rulebase(obj, paths))
    click.echo({"text": lambda: "\n".join(report.lines()), "dot": report.dot, "json": report.json}[fmt]())


@rules_group.command("trace")
@click.argument("decision_id")
@click.option("--why-not", "why_not", multiple=True, metavar="RULE",
              help="Say why RULE did or did not fire on this decision's facts (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@click.pass_obj
def trace_command(obj: Context, decision_id: str, why_not: tuple[str, ...], as_json: bool) -> None:
    """Show a stored decision's trace (stop the server first: DuckDB has one writer)."""
    settings = obj.settings()
    if not settings.database_path.exists():
        raise InputError(f"no decisions yet: {settings.database_path} does not exist (set FIRSTLINE_DATA_DIR?)")
    rulebase = _rulebase(obj)
    store = DuckDBStore(settings.database_path)
    try:
        trace = decision_trace(Decisions(store), rulebase, decision_id, why_not=why_not)
    finally:
        store.close()
    click.echo(json.dumps(trace, indent=2, default=str) if as_json else "\n".join(trace_lines(trace)))
