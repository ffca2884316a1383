"""Playbooks as data: safe YAML -> JSON Schema -> meaning checks -> frozen records.

One playbook per file, so a curator's change is one small diff and every error names one file.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import PlaybookError, Problem
from core.taxonomy import Kind, kind_of
from core.yamlfile import Located, load_documents, load_schema, schema_problems, yaml_files

SCHEMA_PATH = Path(__file__).parent / "schema" / "playbook.schema.json"
REPLY_PLACEHOLDERS = frozenset({"done", "product", "title"})
ESCALATION_PLACEHOLDERS = frozenset({"message", "title", "product"})
SELF_SERVICE_PLACEHOLDERS = frozenset({"product"})


@dataclass(frozen=True)
class Signal:
    """A metric of a service that a diagnosis looks at."""

    service: str
    metric: str


@dataclass(frozen=True)
class Remedy:
    """One fix: an action on a target, with what it means in plain words and how to check it worked.
    `self_service` is what the user can do themselves when the fix may not run for them (an action on their
    account, asked for by someone the host app did not vouch for); "" for none."""

    action: str
    target: str
    explain: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    indicated_by: Signal | None = None
    verify: Signal | None = None
    rollback: str | None = None
    self_service: str = ""


@dataclass(frozen=True)
class Escalation:
    """What a person deciding a business request must be given."""

    summary: str
    must_include: tuple[str, ...]


@dataclass(frozen=True)
class Playbook:
    """A known problem or request: how users say it, how to diagnose and fix it, what to reply."""

    id: str
    title: str
    category: str
    description: str
    examples: tuple[str, ...]
    diagnostics: tuple[Signal, ...] = ()
    remedies: tuple[Remedy, ...] = ()
    replies: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    escalation: Escalation | None = None
    source: str = ""

    @property
    def kind(self) -> Kind:
        return kind_of(self.category)


@dataclass(frozen=True)
class Vocabulary:
    """What the infrastructure offers, so playbooks naming unknown actions or metrics are refused at load."""

    actions: Mapping[str, frozenset[str]]  # action -> the services it can target
    metrics: Mapping[str, frozenset[str]]  # service -> its metrics


def load_playbooks(directory: Path, vocabulary: Vocabulary | None = None) -> dict[str, Playbook]:
    """Load every `*.yaml` playbook under `directory`; raise PlaybookError listing every problem found."""
    if not directory.is_dir():
        raise PlaybookError([Problem(str(directory), None, "", "playbook folder does not exist")])
    validator = load_schema(SCHEMA_PATH)
    playbooks: dict[str, Playbook] = {}
    files = yaml_files(directory)
    documents, problems = load_documents(files)
    if not files:
        problems.append(Problem(str(directory), None, "", "no playbook files (*.yaml) found"))
    for doc in documents:
        errors = schema_problems(validator, doc)
        if errors:
            problems += errors
            continue
        errors = _meaning_problems(doc, vocabulary)
        playbook_id = doc.data["id"]
        if playbook_id in playbooks:
            errors.append(doc.problem(["id"], f"duplicate id, also in {playbooks[playbook_id].source}"))
        problems += errors
        if not errors:
            playbooks[playbook_id] = _record(doc)
    if problems:
        raise PlaybookError(problems)
    return playbooks


def _meaning_problems(doc: Located, vocabulary: Vocabulary | None) -> list[Problem]:
    data = doc.data
    kind = kind_of(data["category"])
    problems = []
    if kind is Kind.TECHNICAL:
        if not data.get("remedies"):
            problems.append(doc.problem(["remedies"], "a technical playbook needs at least one remedy"))
        if "escalation" in data:
            problems.append(doc.problem(["escalation"], "technical playbooks are never escalated; remove it"))
    elif kind is Kind.BUSINESS:
        if "escalation" not in data:
            problems.append(doc.problem(["category"], "a business playbook needs `escalation` for the decider"))
        if data.get("remedies"):
            problems.append(doc.problem(["remedies"], "business requests are decided by a person; remove it"))
    elif any(key in data for key in ("remedies", "escalation", "replies", "diagnostics")):
        problems.append(doc.problem(["category"], "out_of_scope playbooks hold only examples"))
    for key, templates in (data.get("replies") or {}).items():
        for i, text in enumerate([templates] if isinstance(templates, str) else templates):
            path = ["replies", key] if isinstance(templates, str) else ["replies", key, i]
            problems += _placeholder_problems(doc, path, text, REPLY_PLACEHOLDERS)
    for i, remedy in enumerate(data.get("remedies") or []):
        if "self_service" in remedy:
            problems += _placeholder_problems(doc, ["remedies", i, "self_service"], remedy["self_service"],
                                              SELF_SERVICE_PLACEHOLDERS)
    if "escalation" in data:
        summary = data["escalation"]["summary"]
        problems += _placeholder_problems(doc, ["escalation", "summary"], summary, ESCALATION_PLACEHOLDERS)
    if vocabulary is not None:
        problems += _vocabulary_problems(doc, vocabulary)
    return problems


def _placeholder_problems(doc: Located, path: list, text: str, allowed: frozenset[str]) -> list[Problem]:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as error:
        return [doc.problem(path, f"bad template: {error} (write {{{{ and }}}} for literal braces)")]
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        return [doc.problem(path, f"unknown placeholder {{{unknown[0]}}}; allowed: {sorted(allowed)}")]
    return []


def _vocabulary_problems(doc: Located, vocabulary: Vocabulary) -> list[Problem]:
    problems = []

    def check_signal(path: list, signal: Mapping[str, str]) -> None:
        metrics = vocabulary.metrics.get(signal["service"])
        if metrics is None:
            problems.append(doc.problem([*path, "service"], f"unknown service {signal['service']!r}"))
        elif signal["metric"] not in metrics:
            known = ", ".join(sorted(metrics))
            problems.append(doc.problem([*path, "metric"], f"{signal['service']} has no metric "
                                        f"{signal['metric']!r}; it has: {known}"))

    for i, signal in enumerate(doc.data.get("diagnostics") or []):
        check_signal(["diagnostics", i], signal)
    for i, remedy in enumerate(doc.data.get("remedies") or []):
        targets = vocabulary.actions.get(remedy["action"])
        if targets is None:
            known = ", ".join(sorted(vocabulary.actions))
            problems.append(doc.problem(["remedies", i, "action"], f"unknown action {remedy['action']!r}; "
                                        f"known: {known}"))
        elif remedy["target"] not in targets:
            problems.append(doc.problem(["remedies", i, "target"], f"{remedy['action']} cannot target "
                                        f"{remedy['target']!r}; it can target: {', '.join(sorted(targets))}"))
        rollback = remedy.get("rollback")
        if rollback and rollback not in vocabulary.actions:
            problems.append(doc.problem(["remedies", i, "rollback"], f"unknown action {rollback!r}"))
        for key in ("indicated_by", "verify"):
            if key in remedy:
                check_signal(["remedies", i, key], remedy[key])
    return problems


def _signal(data: Mapping[str, str] | None) -> Signal | None:
    return Signal(data["service"], data["metric"]) if data else None


def _record(doc: Located) -> Playbook:
    data = doc.data
    remedies = tuple(
        Remedy(
            action=r["action"],
            target=r["target"],
            explain=r["explain"].strip(),
            params=MappingProxyType(dict(r.get("params") or {})),
            indicated_by=_signal(r.get("indicated_by")),
            verify=_signal(r.get("verify")),
            rollback=r.get("rollback"),
            self_service=" ".join((r.get("self_service") or "").split()),
        )
        for r in data.get("remedies") or []
    )
    replies = {
        key: (value,) if isinstance(value, str) else tuple(value) for key, value in (data.get("replies") or {}).items()
    }
    escalation = data.get("escalation")
    return Playbook(
        id=data["id"],
        title=data["title"].strip(),
        category=data["category"],
        description=" ".join(data["description"].split()),
        examples=tuple(e.strip() for e in data["examples"]),
        diagnostics=tuple(Signal(s["service"], s["metric"]) for s in data.get("diagnostics") or []),
        remedies=remedies,
        replies=MappingProxyType(replies),
        escalation=Escalation(escalation["summary"], tuple(escalation["must_include"])) if escalation else None,
        source=doc.file,
    )
