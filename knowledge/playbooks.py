"""Playbooks as data: safe YAML -> JSON Schema -> meaning checks -> frozen records.

One playbook per file, so a curator's change is one small diff and every error names one file.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import PlaybookError, Problem
from core.taxonomy import Kind, kind_of
from core.yamlfile import Located, capped, load_documents, load_schema, schema_problems, yaml_files

SCHEMA_PATH = Path(__file__).parent / "schema" / "playbook.schema.json"
REPLY_PLACEHOLDERS = frozenset({"done", "product", "title", "subject"})
GUIDANCE_PLACEHOLDERS = REPLY_PLACEHOLDERS | {"when"}  # an escalation's words may say when a person answers
ESCALATION_PLACEHOLDERS = frozenset({"message", "title", "subject", "product"})
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
    subject: str = ""  # how it is named inside a sentence; loading fills it (declared, else derived from the title)

    @property
    def kind(self) -> Kind:
        return kind_of(self.category)

    @property
    def named(self) -> str:
        """The playbook's name as it reads inside a sentence, after "about" (see `derive_subject`)."""
        return self.subject or derive_subject(self.title, self.description)


# (action, target, params) -> (parameter, message) for each problem (engine.actions.catalogue.param_problems)
ParamCheck = Callable[[str, str | None, Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Vocabulary:
    """What the infrastructure offers, so playbooks naming unknown actions or metrics, or giving an action
    parameters it does not take or values out of bounds, are refused at load."""

    actions: Mapping[str, frozenset[str]]  # action -> the services it can target
    metrics: Mapping[str, frozenset[str]]  # service -> its metrics
    params: ParamCheck | None = None


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
        raise PlaybookError(capped(problems))
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
            problems += _placeholder_problems(doc, path, text,
                                              GUIDANCE_PLACEHOLDERS if key == "guidance" else REPLY_PLACEHOLDERS)
    for i, remedy in enumerate(data.get("remedies") or []):
        if "self_service" in remedy:
            problems += _placeholder_problems(doc, ["remedies", i, "self_service"], remedy["self_service"],
                                              SELF_SERVICE_PLACEHOLDERS)
    if "subject" in data:
        problems += _subject_problems(doc, data["subject"])
    if "escalation" in data:
        summary = data["escalation"]["summary"]
        problems += _placeholder_problems(doc, ["escalation", "summary"], summary, ESCALATION_PLACEHOLDERS)
    if vocabulary is not None:
        problems += _vocabulary_problems(doc, vocabulary)
    return problems


def _subject_problems(doc: Located, subject: str) -> list[Problem]:
    """A subject is read inside the assistant's sentences, sometimes in a list of choices joined by "or"."""
    if "{" in subject or "}" in subject:
        return [doc.problem(["subject"], "a subject is plain words: no {placeholders}")]
    if len(re.findall(r"\bor\b", subject)) > 1 or re.search(r",[^,]*\bor\b", subject):
        return [doc.problem(["subject"], "name one thing: at most one 'or' and no list (\"X, Y or Z\"); the "
                            "assistant may offer it in a list of choices joined by 'or'")]
    return []


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
        if vocabulary.params is not None and targets is not None:
            for name, message in vocabulary.params(remedy["action"], remedy["target"], remedy.get("params") or {}):
                problems.append(doc.problem(["remedies", i, "params", *([name] if name else [])], message))
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
        subject=" ".join((data.get("subject") or "").split()) or derive_subject(
            data["title"], " ".join(data["description"].split())),
    )


# -- a title as it reads inside a sentence ------------------------------------------------------------------------

_PERSON = {"i": "you", "i'm": "you're", "i've": "you've", "i'd": "you'd", "i'll": "you'll", "my": "your",
           "me": "you", "mine": "yours", "myself": "yourself"}
# Words that make a title a statement ("My export fails") rather than a name ("CSV export"): a statement is named
# as "the problem where ..." so that it still reads after "about".
_STATEMENT = frozenset((
    "is", "are", "was", "were", "am", "be", "been", "keep", "keeps", "kept", "take", "takes", "took", "show", "shows",
    "showed", "fail", "fails", "failed", "stop", "stops", "stopped", "load", "loads", "crash", "crashes", "break",
    "breaks", "broke", "look", "looks", "say", "says", "get", "gets", "got", "use", "uses", "come", "comes", "came",
    "want", "wants", "need", "needs", "have", "has", "had", "lose", "lost", "save", "saves", "arrive", "arrives",
    "work", "works", "never", "can", "could", "will", "would", "don't", "doesn't", "didn't", "can't", "won't", "isn't",
    "aren't", "wasn't", "weren't", "couldn't",
))
# A title that starts with a request's verb ("Cancel my subscription") is named by what is asked: "cancelling ...".
_GERUND = {"add": "adding", "cancel": "cancelling", "change": "changing", "close": "closing", "connect": "connecting",
           "delete": "deleting", "downgrade": "downgrading", "export": "exporting", "extend": "extending",
           "get": "getting", "import": "importing", "merge": "merging", "move": "moving", "need": "needing",
           "pause": "pausing", "raise": "raising", "remove": "removing", "reset": "resetting", "restore": "restoring",
           "transfer": "transferring", "update": "updating", "upgrade": "upgrading", "want": "wanting"}
# First words that already read after "about": determiners and possessives; question words start a clause that does.
_DETERMINED = frozenset(("a", "an", "the", "your", "this", "that", "these", "those", "each", "every", "some", "any",
                         "no", "all"))
_QUESTION = frozenset(("what", "how", "who", "whom", "whose", "why", "where", "when", "whether", "which"))
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+)\W*$")


def derive_subject(title: str, description: str = "") -> str:
    """A playbook's title as it reads after "about", for a playbook that declares no `subject`: in the second person
    ("my" -> "your"); its first word in lower case unless it is an acronym or a name (written capitalised
    mid-sentence in `description`, outside quotes, and never in lower case); a request's verb as "-ing" ("Cancel
    my subscription" -> "cancelling your subscription"); a statement as "the problem where ..." ("I keep getting
    logged out" -> "the problem where you keep getting logged out"); a bare singular noun with "a" or "an" ("Refund
    request" -> "a refund request")."""
    words = [_PERSON.get(w.lower().replace("\u2019", "'"), w) for w in title.strip().rstrip(".!?:;").split()]
    if not words:
        return ""
    first = words[0]
    if first[:1].isupper() and first[1:] == first[1:].lower() and first not in _names(description):
        words[0] = first = first.lower()
    text = " ".join(words)
    if first in _GERUND:
        return " ".join([_GERUND[first], *words[1:]])
    if first in _QUESTION:
        return text
    if first in ("you", "you're", "you've") or any(w.lower().strip(",;:") in _STATEMENT for w in words[1:]):
        return f"the problem where {text}"
    head = re.split(r"\s(?:for|of|to|in|on|with|from|at|by|or|and)\s|,", text)[0].split()
    if first in _DETERMINED or first.endswith("ing") or not first.islower() or any(
            w.endswith("s") and not w.endswith("ss") for w in head):
        return text
    return f"{'an' if first[0] in 'aeiou' else 'a'} {text}"


def _names(description: str) -> set[str]:
    """Words `description` writes capitalised where no sentence starts, and never in lower case: names and
    acronyms."""
    plain = re.sub(r"\"[^\"]*\"|\u201c[^\u201d]*\u201d", "\"\"", description)  # a quoted label names nothing
    lower = set(re.findall(r"\b[a-z][\w'-]*", plain))
    return {m.group() for m in re.finditer(r"\b[A-Z][\w'-]*", plain)
            if m.group().lower() not in lower and not _SENTENCE_START.search(plain[:m.start()])}
