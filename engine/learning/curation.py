"""What curators read and change, in one place for the web pages, the JSON API and the CLI.

- Learned rules with their status, the confidence of their fix, how often they fired, their live record, their
  shadow record, every version with its provenance, and example traces: decisions where the rule fired, and
  the decisions of the conversations that taught it or that it was scored on in shadow.
- Playbooks with their examples, decisions and each remedy's confidence.
- The unmatched queue (messages declined or clarified) with "add to playbook X" and "draft a new playbook".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConflictError, InputError, NotFoundError, RuleError
from core.taxonomy import CATEGORIES
from engine.decision.explain import explain_rule
from engine.learning.ledger import STATUSES, LearnedRule, LearningLedger
from engine.store.curation import CurationQueries
from rules.model import RuleBase

VERBS = {"approve": "active", "reject": "rejected", "retire": "retired", "shadow": "shadow"}
EXAMPLE_LIMIT = 10  # example decisions shown per kind (fired, taught, shadow)

@dataclass(frozen=True)
class RuleFilter:
    """Which learned rules a listing shows; thousands of rules are read a page at a time."""

    status: str | None = None
    playbook: str | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise InputError(f"unknown status {self.status!r}; use one of {', '.join(STATUSES)}",
                             code="invalid_body")
        if not 1 <= self.limit <= 500 or self.offset < 0:
            raise InputError("`limit` is 1 to 500 and `offset` 0 or more", code="invalid_body")


class RuleReview:
    """The learned rules as a curator sees them; needs only the ledger (the CLI runs without the model).

    `parse` reads a rule body as the loader reads a rule file (see `engine.learning.ledger.rule_parser`); with it, a
    learned rule in any status can be explained on a decision's facts, shadow rules included, which never
    reach the engine.
    """

    def __init__(self, ledger: LearningLedger, parse: Callable[[dict[str, Any]], RuleBase] | None = None) -> None:
        self.ledger = ledger
        self.parse = parse
        self.queries = CurationQueries(ledger.records.db)

    def listing(self, where: RuleFilter = RuleFilter()) -> tuple[list[dict[str, Any]], int]:
        """One page of rule summaries, and how many rules match in all."""
        rules = self.ledger.rules(where.status, where.playbook)
        page = rules[where.offset:where.offset + where.limit]
        fired = self.ledger.fire_counts([r.name for r in page])
        live = self.ledger.live_records(page)
        return [self._summary(r, fired.get(r.name, 0), live[r.name]) for r in page], len(rules)

    def detail(self, name: str) -> dict[str, Any]:
        """A rule with every version, its provenance and example decisions whose traces can be opened."""
        current = self.ledger.existing(name)
        fired = self.ledger.fire_counts([name]).get(name, 0)
        return {**self._summary(current, fired, self.ledger.live_record(current)),
                "provenance": current.provenance,
                "body": current.body,
                "versions": [_version(v) for v in self.ledger.versions(name)],
                "examples": self.examples(current)}

    def examples(self, rule: LearnedRule) -> list[dict[str, Any]]:
        """Decisions to read the traces of: where it fired, where it was taught, where it was shadow-scored."""
        fix = _fix(rule)
        found = [_example("fired", row) for row in self.queries.fired_in(rule.name, EXAMPLE_LIMIT)]
        for kind, conversations in (("taught", rule.provenance.get("conversations", [])),
                                    ("shadow", self.ledger.shadow_conversations(rule.name))):
            if conversations:
                rows = self.queries.decisions_about(conversations, fix.get("playbook"), EXAMPLE_LIMIT)
                found.extend(_example(kind, row) for row in rows)
        return found

    def why_not(self, trace: Mapping[str, Any], name: str) -> dict[str, Any]:
        """Why learned rule `name`, as its latest version reads, did or did not fire on the trace's facts."""
        rule = self.ledger.existing(name)
        if self.parse is None:
            raise InputError("explaining learned rules needs the rule vocabulary; use the curator pages or API")
        try:
            rulebase = self.parse(rule.body)
        except RuleError as error:
            raise InputError(f"learned rule {name} is not a valid rule: {error.problems[0].message}") from None
        report = explain_rule(trace, rulebase, name)
        report["note"] = f"learned rule {name} version {rule.version} ({rule.status}), on this decision's facts"
        return report

    def change(self, name: str, verb: str, actor: str, reason: str = "", version: int | None = None) -> LearnedRule:
        """approve | reject | retire | shadow | revert (to `version`); each writes a new version."""
        if verb == "revert":
            if version is None:
                raise InputError("revert needs the version to restore", code="invalid_body")
            return self.ledger.revert(name, version, actor)
        if verb not in VERBS:
            raise NotFoundError(f"unknown change {verb!r}; use approve, reject, retire, shadow or revert")
        return self.ledger.set_status(name, VERBS[verb], actor, reason or verb)

    def _summary(self, rule: LearnedRule, fired: int, live: tuple[int, int]) -> dict[str, Any]:
        fix = _fix(rule)
        successes, tries = live
        agreed, cases = self.ledger.shadow_record(rule.name)
        confidence = self.ledger.confidence(fix.get("playbook", ""), fix.get("action", ""), fix.get("target", ""))
        return {"name": rule.name, "version": rule.version, "status": rule.status,
                "description": rule.body.get("description", ""), "reason": rule.reason, "actor": rule.actor,
                "at": rule.at, "fix": fix, "users": rule.provenance.get("users", 0),
                "taught_by_conversations": len(rule.provenance.get("conversations", [])),
                "confidence": round(confidence, 4), "fired": fired,
                "live": {"successes": successes, "tries": tries},
                "shadow": {"agreed": agreed, "cases": cases}}


class Curation:
    """Everything on the curator's pages: the rule review, playbooks and the unmatched queue."""

    def __init__(self, review: RuleReview, playbooks: Callable[[], dict], examples: Callable[[], Iterable],
                 teach: Callable[[str, str, str, str], str], publish: Callable[[], int], drafts_dir: Path,
                 trace: Callable[[str], dict[str, Any]], explain: Callable[[Mapping[str, Any], str], dict]) -> None:
        self.review = review
        self.queries = review.queries
        self._trace = trace  # any user's decision: curators read traces across users
        self._explain = explain  # why a rule of the running rule base did or did not fire
        self._playbooks = playbooks  # the knowledge base's playbooks, read when asked (the base changes)
        self._examples = examples
        self._teach = teach
        self.publish = publish
        self.drafts_dir = drafts_dir

    @property
    def ledger(self) -> LearningLedger:
        return self.review.ledger

    def change_rule(self, name: str, verb: str, actor: str, reason: str = "",
                    version: int | None = None) -> LearnedRule:
        """Change a rule's status and publish the active rules, so the running engine picks the change up."""
        rule = self.review.change(name, verb, actor, reason, version)
        self.publish()
        return rule

    def trace(self, decision_id: str, why_not: Sequence[str] = ()) -> dict[str, Any]:
        """A decision's trace; `why_not` names rules of the running rule base or learned rules in any status."""
        trace = self._trace(decision_id)
        if why_not:
            trace["why_not"] = [self.review.why_not(trace, name) if self.ledger.latest(name) is not None
                                else self._explain(trace, name) for name in why_not]
        return trace

    def playbooks(self) -> list[dict[str, Any]]:
        """Each playbook: examples in the index (curated + learned), decisions, resolutions, remedy confidence."""
        counts: dict[str, int] = {}
        for example in self._examples():
            counts[example.playbook] = counts.get(example.playbook, 0) + 1
        usage = self.queries.playbook_usage()
        posteriors = self.ledger.posteriors()
        rows = []
        for pid, playbook in sorted(self._playbooks().items()):
            decisions, resolved = usage.get(pid, (0, 0))
            remedies = [_remedy(r.action, r.target, posteriors.get((pid, r.action, r.target), (1.0, 1.0)))
                        for r in playbook.remedies]
            rows.append({"id": pid, "title": playbook.title, "category": playbook.category,
                         "examples": counts.get(pid, 0), "decisions": decisions, "resolved": resolved,
                         "remedies": remedies})
        return rows

    def unmatched(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent messages declined or clarified that nobody has taught a playbook yet, newest first."""
        return self.queries.unmatched(limit)

    def add_to_playbook(self, decision_id: str, playbook: str) -> dict[str, Any]:
        """Index an unmatched message as an example of `playbook` at once (owned by the user who wrote it)."""
        message = self._unmatched_message(decision_id)
        learned_id = self._teach(message["user_id"], message["conversation_id"], playbook, message["text"])
        return {"learned_example_id": learned_id, "playbook": playbook, "text": message["text"]}

    def draft_playbook(self, decision_id: str, playbook_id: str, title: str, category: str) -> Path:
        """Start a new playbook from an unmatched message: a draft file for a curator to complete."""
        message = self._unmatched_message(decision_id)
        if not re.fullmatch(r"[a-z][a-z0-9_]{2,60}", playbook_id or ""):
            raise InputError("a playbook id is 3-61 lowercase letters, digits or _, starting with a letter",
                             code="invalid_body")
        if playbook_id in self._playbooks():
            raise ConflictError(f"there is already a playbook {playbook_id}; add the message to it instead")
        if category not in CATEGORIES:
            raise InputError(f"unknown category {category!r}; use one of {', '.join(sorted(CATEGORIES))}",
                             code="invalid_body")
        self.drafts_dir.mkdir(parents=True, exist_ok=True)
        path = self.drafts_dir / f"{playbook_id}.yaml"
        if path.exists():
            raise ConflictError(f"a draft named {playbook_id} already exists")
        draft = {"id": playbook_id, "title": (title or "").strip() or playbook_id.replace("_", " "),
                 "category": category, "description": "Draft from the unmatched queue: describe the problem.",
                 "examples": [message["text"]]}
        path.write_text(yaml.safe_dump(draft, sort_keys=False), encoding="utf-8")
        return path

    def _unmatched_message(self, decision_id: str) -> dict[str, Any]:
        found = self.queries.unmatched_message(decision_id)
        if found is None:
            raise NotFoundError("no such message in the unmatched queue (it may have been deleted by its user)")
        user_id, conversation_id, text = found
        return {"user_id": user_id, "conversation_id": conversation_id, "text": text}


def _remedy(action: str, target: str, posterior: tuple[float, float]) -> dict[str, Any]:
    alpha, beta = posterior
    return {"action": action, "target": target, "confidence": round(alpha / (alpha + beta), 4),
            "successes": round(alpha - 1, 3), "failures": round(beta - 1, 3)}


def _fix(rule: LearnedRule) -> dict[str, Any]:
    return dict(rule.provenance.get("fix", {}))


def _version(rule: LearnedRule) -> dict[str, Any]:
    return {"version": rule.version, "status": rule.status, "reason": rule.reason, "actor": rule.actor,
            "at": rule.at}


def _example(kind: str, row: tuple) -> dict[str, Any]:
    decision_id, conversation_id, at, decision = row
    return {"kind": kind, "decision_id": decision_id, "conversation_id": conversation_id, "at": at,
            "decision": decision}
