"""`firstline ask`: answer messages as fresh conversations, with the trace on request."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path

import click

from core.errors import InputError
from engine.chat.assistant import Answer, clean_message
from engine.decision.pack import load_pack, load_rulebase
from engine.decision.trace import trace_lines
from engine.wiring import build
from firstline.context import Context
from rules.model import RuleBase

USER = "cli"


@click.command()
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
