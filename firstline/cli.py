"""The command line. Each command parses its arguments, calls one function below, and prints.

Errors print as one line on stderr, `firstline: error: ...`, with exit status 2 for a wrong command line and 1
for everything else; tracebacks go to the log file in the data folder, never to the terminal.
"""

from __future__ import annotations

import difflib
import json
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from core.errors import DataFileError, FirstlineError, InputError
from core.settings import SECRETS, Settings, describe, load_settings
from engine.access.tokens import Role
from engine.chat.assistant import Answer, clean_message
from engine.chat.lexicon import load_lexicon
from engine.chat.understanding import load_reply_examples
from engine.chat.voice import load_voice
from engine.decision.ruleengine import RuleEngine
from engine.decision.trace import trace_lines
from engine.desk.policy import load_decision_policy
from engine.healing.healer import Event
from engine.healing.scenarios import SCENARIOS, ScenarioReport, run_scenario
from engine.wiring import build, load_pack, load_rulebase, open_healing, open_index
from firstline.admin import administration
from firstline.analytics import sql_command
from firstline.context import Context
from firstline.curate import rules_group
from firstline.escalations import escalations_group
from firstline.handoffs import handoffs_group
from firstline.learned import handoff_group, learned_group
from firstline.metrics import metrics_command
from firstline.notify import notify_group
from firstline.simulate import simulate_command
from firstline.users import user_group
from knowledge.background import load_background
from knowledge.base import Scoring
from knowledge.calibration import CalibrationReport
from knowledge.embedder import Embedder
from knowledge.evaluation import Labelled, evaluate, evaluate_base, load_labelled, report_lines
from knowledge.finetune import Recipe
from rules.model import RuleBase
from web.server import run_server

USER = "cli"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML settings file (default: ./firstline.toml if present, or $FIRSTLINE_CONFIG).")
@click.version_option(package_name="firstline")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Firstline: technical support that diagnoses, fixes, escalates and learns."""
    ctx.obj = Context(config)


@cli.command()
@click.argument("messages", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message, one per line.")
@click.option("--dry-run", is_flag=True, help="Plan remediations and record them, but run none.")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read messages from a file, one per line (blank lines are skipped).")
@click.option("--explain", is_flag=True, help="Add the trace: facts, rules fired in order, what each matched.")
@click.option("--why-not", "why_not", multiple=True, metavar="RULE",
              help="Also say why RULE did or did not fire (repeatable; implies --explain).")
@click.pass_obj
def ask(obj: Context, messages: tuple[str, ...], as_json: bool, dry_run: bool, file: Path | None, explain: bool,
        why_not: tuple[str, ...]) -> None:
    """Answer each message on its own, as a fresh conversation."""
    settings = obj.settings()
    texts = _collect(messages, file, settings.max_message_chars)
    explain = explain or bool(why_not)
    if why_not:  # an unknown rule name is a usage error, found before the model loads
        topology, playbooks = load_pack(settings)
        _known_rules(load_rulebase(settings, topology, playbooks), why_not)
    parts = build(settings, progress=False)
    try:
        for text in texts:
            answer = parts.assistant.answer(text, USER, channel="cli", dry_run=dry_run or None)
            trace = dict(answer.trace or {})
            if why_not:
                trace["why_not"] = [parts.assistant.why_not(trace, name) for name in why_not]
            if as_json:
                body = {**answer.contract(), **({"trace": trace} if explain else {})}
                click.echo(json.dumps(body, ensure_ascii=False, default=str))
            else:
                click.echo(_human(text, answer) + ("\n".join(trace_lines(trace)) + "\n" if explain else ""))
    finally:
        parts.close()


def _known_rules(rulebase: RuleBase, names: Sequence[str]) -> None:
    unknown = [n for n in names if rulebase.get(n) is None]
    if unknown:
        close = difflib.get_close_matches(unknown[0], [r.name for r in rulebase.rules], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; `firstline rules list` shows them"
        raise click.UsageError(f"no rule named {unknown[0]!r}{hint}")


def _collect(messages: tuple[str, ...], file: Path | None, max_chars: int) -> list[str]:
    """Every message to answer, checked before anything slow is loaded; all problems reported at once."""
    numbered: list[tuple[str, str]] = [(f"message {i}", m) for i, m in enumerate(messages, 1)]
    if file is not None:
        numbered += _read_lines(file)
    if not numbered:
        raise click.UsageError("give a message to answer, e.g. firstline ask \"I can't log in\", or --file PATH")
    texts, problems = [], []
    for where, text in numbered:
        try:
            texts.append(clean_message(text, max_chars))
        except InputError as error:
            problems.append(f"{where}: {error}")
    if problems:
        raise InputError("; ".join(problems))
    return texts


def _read_lines(file: Path) -> list[tuple[str, str]]:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise click.UsageError(f"--file {file}: no such file") from None
    except OSError as error:
        raise click.UsageError(f"--file {file}: cannot be read ({error.strerror})") from None
    lines = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            raise InputError(f"{file}:{number}: not UTF-8 text (byte {error.start}); save the file as UTF-8") \
                from None
        if text.strip():
            lines.append((f"{file}:{number}", text))
    if not lines:
        raise InputError(f"{file}: no messages in it (one message per line)")
    return lines


def _human(text: str, answer: Answer) -> str:
    head = f"{answer.decision} · {answer.category}"
    if answer.playbook:
        head += f" · {answer.playbook}"
    lines = [f"> {text}", f"{head} (confidence {answer.confidence:.2f})"]
    if answer.rules_fired:
        lines.append(f"  rules: {', '.join(answer.rules_fired)}")
    for action in answer.actions:
        lines.append(f"  action: {action.name} on {action.target}: {action.status}")
    lines += [answer.reply, ""]
    return "\n".join(lines)


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8000; 0 picks a free one).")
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None) -> None:
    """Serve the chat page and the JSON API."""
    settings = obj.settings(host=host, port=port)
    run_server(settings)


@cli.command(short_help="Detect and fix problems on the infrastructure, live or in a simulated scenario.")
@click.option("--simulate", "scenario", type=click.Choice(list(SCENARIOS)), default=None,
              help="Run a simulated scenario in simulated time instead of watching the configured telemetry.")
@click.option("--minutes", type=click.FloatRange(1, 24 * 60), default=60.0, show_default=True,
              help="Simulated minutes to run the scenario for.")
@click.option("--seed", type=int, default=None, help="Seed of the scenario (default: the simulation_seed setting).")
@click.option("--detection", type=click.Choice(["predictive", "threshold"]), default="predictive",
              show_default=True, help="threshold: act only on confirmed limit breaches (the baseline).")
@click.option("--audit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --simulate: keep the run's ledger (samples, signals, actions) in this DuckDB file.")
@click.option("--once", is_flag=True, help="Live: run one monitor pass and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --simulate: print one JSON object.")
@click.pass_obj
def heal(obj: Context, scenario: str | None, minutes: float, seed: int | None, detection: str, audit: Path | None,
         once: bool, as_json: bool) -> None:
    """Watch telemetry, predict trouble and fix it safely; or replay a fault in simulated time.

    With --simulate SCENARIO, a 60-minute scenario runs in seconds and prints the timeline (detected, acted,
    verified, recovered) and the measures: lead time before users would have been hit, time to recovery, and
    whether it was prevented. Without it, the monitor runs on the configured telemetry until Ctrl+C (it also
    runs inside `firstline serve`; both open the same DuckDB file, so run one of them at a time).
    """
    settings = obj.settings()
    if scenario is None:
        if as_json or audit:
            raise click.UsageError("--json and --audit go with --simulate SCENARIO")
        _heal_live(settings, once)
        return
    if audit is not None and audit.exists():
        raise click.UsageError(f"--audit {audit}: the file exists; name a new one")
    topology, _ = load_pack(settings)
    rules = RuleEngine(load_rulebase(settings, topology))
    report = run_scenario(scenario, minutes, settings.simulation_seed if seed is None else seed, settings, topology,
                          rules, predictive=detection == "predictive", audit=audit)
    click.echo(json.dumps(report.contract()) if as_json else _timeline(report))


def _heal_live(settings: Settings, once: bool) -> None:
    def show(event: Event) -> None:
        click.echo(f"{time.strftime('%H:%M:%S', time.localtime(event.at))}  {event.kind:<20} {event.summary}")

    healing, store = open_healing(settings, on_event=show)
    try:
        if once:
            report = healing.monitor.tick()
            state = report.error or f"{len(report.signals)} signals, {len(report.attempts)} actions"
            click.echo(f"one pass over {healing.source.name} telemetry: {state}")
            return
        click.echo(f"watching {healing.source.name} telemetry every {settings.monitor_interval_s:g} s "
                   f"(Ctrl+C to stop)")
        healing.monitor.start()
        while healing.monitor.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        healing.close()
        store.close()


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(abs(seconds)), 60)
    text = f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f"-{text}" if seconds < 0 else text


def _timeline(report: ScenarioReport) -> str:
    lines = [f"scenario {report.scenario} (seed {report.seed}, {report.minutes:g} simulated minutes, "
             f"{report.detection} detection)"]
    lines += [f"  {_clock(e['at_s'])}  {e['kind']:<20} {e['summary']}" for e in report.timeline]
    if not report.timeline:
        lines.append("  nothing happened: no signal, no action")
    lines.append("measures")
    if report.fault is None:
        lines.append(f"  false actions      {report.false_actions} (no fault: any action would be one)")
    else:
        hit = f"at {_clock(report.would_hit_at_s)}" if report.would_hit_at_s is not None else "not in this run"
        lines += [
            f"  lead time          {_span(report.lead_time_s)} before users would have been hit "
            f"({hit} without Firstline)",
            f"  time to recovery   {_span(report.time_to_recovery_s)} from the start of the fault",
            f"  prevented          {'yes' if report.prevented else 'no'} (users affected for "
            f"{_span(report.user_impact_s)})",
        ]
    for action in report.actions:
        lines.append(f"  action             {action['name']} on {action['target']}: {action['status']}")
    return "\n".join(lines)


@cli.group()
def index() -> None:
    """Build or inspect the playbook index."""


@index.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if the stored index is up to date.")
@click.pass_obj
def index_build(obj: Context, force: bool) -> None:
    """Build the faiss index of playbook examples if it is missing or stale, and calibrate the bands."""
    settings = obj.settings()
    _, playbooks = load_pack(settings)
    _, report = open_index(settings, playbooks, force=force, progress=True)
    state = "built" if report.built else "up to date"
    click.echo(f"index {state}: {report.examples} examples of {report.playbooks} playbooks, "
               f"{report.index_kind}, {report.seconds:.1f} s, in {settings.index_dir}")
    click.echo(f"  model {report.model}, scoring {report.scoring}")
    for line in CalibrationReport(report.calibration).lines():
        click.echo(f"  {line}")


@cli.command("eval", short_help="Measure matching on a labelled data set.")
@click.argument("dataset", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--train", type=click.Path(dir_okay=False, path_type=Path),
              help="Build a throwaway base from this labelled set instead of using the playbooks.")
@click.option("--val", type=click.Path(dir_okay=False, path_type=Path),
              help="Calibrate the bands on this set (default: the same file's val split, else leave-one-out).")
@click.option("--test", type=click.Path(dir_okay=False, path_type=Path),
              help="Score on this set (default: the same file's test split).")
@click.option("--oos-label", default="oos", show_default=True, help="The label meaning out of scope.")
@click.option("--scoring", type=click.Choice([s.value for s in Scoring]), default=None,
              help="How playbooks are scored (default: the `scoring` setting).")
@click.option("--refusal-recall", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Set the out-of-scope threshold to refuse this share of held-out out-of-scope queries "
                   "at 95%% confidence (default: the `refusal_recall` setting, else balanced).")
@click.option("--fine-tune-epochs", type=click.IntRange(0, 50), default=None,
              help="With --train: fine-tune the embedding model on train first (default: the setting).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.pass_obj
def eval_command(obj: Context, dataset: Path | None, train: Path | None, val: Path | None, test: Path | None,
                 oos_label: str, scoring: str | None, refusal_recall: float | None, fine_tune_epochs: int | None,
                 as_json: bool) -> None:
    """Measure matching on a labelled set.

    With DATASET only, score the playbook base on it (labels are playbook ids or categories). With --train,
    build a throwaway base from it, calibrate on --val and score --test. Files: CSV or TSV with `text` and
    `label` (or `category`) columns, CLINC150's JSON, or the NLU-Evaluation-Corpora JSON.
    """
    settings = obj.settings(scoring=scoring, refusal_recall=refusal_recall, fine_tune_epochs=fine_tune_epochs)
    if train is None:
        if dataset is None:
            raise click.UsageError("give a labelled DATASET, or --train (with --val and --test)")
        base, _ = open_index(settings, load_pack(settings)[1])
        result = evaluate_base(base, _split(dataset, "test", oos_label, required=True), oos_label)
    else:
        test = test or dataset or (train if train.suffix.lower() == ".json" else None)
        if test is None:
            raise click.UsageError("give --test (a CSV or TSV holds one split)")
        multi_split = train.suffix.lower() == ".json"
        validation = _split(val, "val", oos_label) if val else (
            load_labelled(train, "val", oos_label) if multi_split else None)
        embedder = Embedder(settings.model_path, settings.cache_dir, settings.embed_batch_size)
        result = evaluate(_split(train, "train", oos_label, required=True),
                          _split(test, "test", oos_label, required=True), embedder, validation, oos_label,
                          settings.answer_precision, progress=not as_json, scoring=Scoring(settings.scoring),
                          refusal_recall=settings.refusal_recall,
                          fine_tune=Recipe(epochs=settings.fine_tune_epochs) if settings.fine_tune_epochs else None,
                          background=load_background(settings.background_dir), act_precision=settings.act_precision)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo("\n".join(report_lines(result)))


def _split(path: Path, split: str, oos_label: str, required: bool = False) -> Labelled | None:
    found = load_labelled(path, split, oos_label)  # a CSV or TSV is one split, whatever is asked
    if found is None and required:
        raise InputError(f"{path} has no {split} split")
    return found


@cli.command(short_help="Validate playbooks, rules and other data files.")
@click.pass_obj
def check(obj: Context) -> None:
    """Validate playbooks, rules, infrastructure, replies and the decision policy (no model load)."""
    settings = obj.settings()
    topology, playbooks = load_pack(settings)
    rulebase = load_rulebase(settings, topology, playbooks)
    policy = load_decision_policy(settings.decision_policy_file, playbooks, topology.signals())
    load_voice(settings.replies_file, topology.product)
    load_reply_examples(settings.reply_examples_file)
    load_lexicon(settings.reply_words_file)
    background = load_background(settings.background_dir)
    click.echo(f"ok: {len(playbooks)} playbooks, {len(rulebase)} rules (version {rulebase.version}), "
               f"{len(topology.services)} services, {background.size} background lines in "
               f"{len(background.topics)} topics, "
               f"{sum(len(c.guidelines) for c in policy.categories.values())} decision policy guidelines")


cli.add_command(rules_group)
cli.add_command(learned_group)
cli.add_command(handoff_group)
cli.add_command(user_group)
cli.add_command(escalations_group)
cli.add_command(handoffs_group)
cli.add_command(notify_group)
cli.add_command(sql_command)
cli.add_command(metrics_command)
cli.add_command(simulate_command)


@cli.group()
def token() -> None:
    """API tokens for integrations and staff (works while the server runs: it goes through the server)."""


@token.command("create")
@click.option("--user", "user", required=True, help="The user the token acts as.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.USER.value, show_default=True,
              help="decider: may also list business escalations and record their decisions; curator: may also "
              "sign in to the curator pages; engineer: may also list and close hand-offs (/api/v1/handoffs); "
              "operator: may only read /metrics and post Alertmanager alerts.")
@click.pass_obj
def token_create(obj: Context, user: str, role: str) -> None:
    """Create a token; it is printed once, and only a salted hash of it is stored. It works at once."""
    with administration(obj.settings()) as admin:
        issued = admin.create_token(user, role)
    click.echo(issued["token"])
    click.echo(f"token {issued['id']} for {issued['user_id']} ({issued['role']}); send it as "
               "`Authorization: Bearer TOKEN`. It is not shown again.", err=True)


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def token_revoke(obj: Context, token_id: str) -> None:
    """Revoke a token by its id (the part after `fl_`); staff signed in with it are signed out at once."""
    with administration(obj.settings()) as admin:
        admin.revoke_token(token_id)
    click.echo(f"revoked {token_id}")


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def token_list(obj: Context, as_json: bool) -> None:
    """Every token issued: id, user, role, and whether it is revoked (never the secret)."""
    with administration(obj.settings()) as admin:
        tokens = admin.list_tokens()
    if as_json:
        click.echo(json.dumps(tokens, indent=2))
        return
    for found in tokens:
        click.echo(f"{found['id']}  {found['user_id']}  {found['role']}{'  revoked' if found['revoked'] else ''}")


@cli.group()
def account() -> None:
    """Users' accounts as the rules see them: plan, seats and role (works while the server runs)."""


@account.command("set")
@click.argument("user")
@click.option("--plan", required=True, help="The user's plan, e.g. pro or enterprise.")
@click.option("--seats", required=True, type=click.IntRange(min=1), help="Seats on the user's account.")
@click.option("--role", default="member", show_default=True, help="The user's role in their account, e.g. admin.")
@click.option("--organisation", default="", help="The organisation the account belongs to (shown to deciders).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The day the account began, YYYY-MM-DD (its tenure, shown to deciders).")
@click.option("--price", "monthly_price", type=click.FloatRange(min=0), default=None,
              help="What the account pays a month, in your currency (deciders compare similar accounts).")
@click.pass_obj
def account_set(obj: Context, user: str, plan: str, seats: int, role: str, organisation: str,
                since: datetime | None, monthly_price: float | None) -> None:
    """Record USER's account; every later decision gets plan, seats and role as the `account` fact."""
    began = since.replace(tzinfo=UTC).timestamp() if since else None
    with administration(obj.settings()) as admin:
        found = admin.set_account(user, plan, seats, role, organisation, began, monthly_price)
    click.echo(_account_line(found))


@account.command("show")
@click.argument("user")
@click.pass_obj
def account_show(obj: Context, user: str) -> None:
    """Print USER's account as the rules see it."""
    with administration(obj.settings()) as admin:
        found = admin.account(user)
    click.echo(_account_line(found))


def _account_line(found: dict[str, Any]) -> str:
    line = f"{found['user']}: {found['plan']}, {found['seats']} seats, {found['role']}"
    if found.get("organisation"):
        line += f", {found['organisation']}"
    if found.get("since") is not None:
        line += f", since {datetime.fromtimestamp(found['since'], UTC):%Y-%m-%d}"
    if found.get("monthly_price") is not None:
        line += f", pays {found['monthly_price']:g} a month"
    return line


@cli.command("settings", short_help="Show every setting, its value and default.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def settings_command(obj: Context, as_json: bool) -> None:
    """Show every setting with its value, variable, default and meaning."""
    current = obj.settings()
    rows = [{**row, "value": _shown(row["key"], getattr(current, row["key"]))} for row in describe()]
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    for row in rows:
        click.echo(f"{row['key']} = {row['value']!s}\n    {row['env']}; default {row['default']!s}\n    {row['help']}")


def _shown(key: str, value: object) -> object:
    if key in SECRETS:
        return "(set)" if value else "(not set)"
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn every failure into one line on stderr and an exit status."""
    try:
        status = cli.main(args=argv, prog_name="firstline", standalone_mode=False)
        if isinstance(status, int) and status:  # a command's ctx.exit(N) comes back as a return value
            return status
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.exceptions.Abort:
        _fail("aborted")
        return 130
    except click.UsageError as error:
        hint = f" (see 'firstline {error.ctx.command_path.split(' ', 1)[1]} --help')" \
            if error.ctx and " " in error.ctx.command_path else " (see 'firstline --help')"
        _fail(f"{error.format_message()}{hint}")
        return 2
    except click.ClickException as error:
        _fail(error.format_message())
        return error.exit_code
    except DataFileError as error:
        _fail(str(error))  # one line per problem: the file, line and field of each
        return 1
    except FirstlineError as error:
        _fail(str(error))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - last line of defence: no traceback on the terminal
        log = _log_exception()
        _fail(f"internal error: {type(error).__name__}: {error} (details in {log})")
        return 1
    return 0


def _fail(message: str) -> None:
    click.echo(f"firstline: error: {message}", err=True)


def _log_exception() -> Path:
    try:
        folder = load_settings().data_dir / "logs"
    except FirstlineError:
        folder = Path("var") / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "firstline.log"
    logging.basicConfig(filename=path, level=logging.ERROR)
    logging.getLogger("firstline").error("unhandled error\n%s", traceback.format_exc())
    return path


if __name__ == "__main__":
    sys.exit(main())
