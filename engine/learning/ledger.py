"""What the system learns from resolutions, kept in the store: remedy outcomes and learned rules.

- Every confirmed outcome of a (playbook, remedy) counts once per conversation; a remedy's confidence is the
  Beta(1 + successes, 1 + failures) posterior, and remedies are tried in the order of a Thompson sample from
  it, so a new remedy still gets tried while the proven one usually goes first.
- A resolution that was not the rules' first choice proposes a learned rule binding that symptom to that
  fix, in the same YAML schema as hand-written rules. Its lifecycle: proposed -> shadow (evaluated on live
  traffic and logged, never acted on) -> active (enough shadow cases agreed with what actually fixed the
  problem, or a curator approved) -> retired (its success rate fell below a floor). Every version is kept
  with its provenance, and any earlier version can be restored.
- Poisoning guards: a rule is only proposed once several distinct users confirmed the same fix, each user's
  confirmations per day are capped, and a user's text is only ever data (it never enters a rule).

Decisions are functions of stored state plus the new input, so several processes can share one store.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConflictError, InputError, NotFoundError, Problem, RuleError
from core.yamlfile import dump_yaml
from engine.store.database import DuckDBStore
from engine.store.learning import LearningRecords

STATUSES = ("proposed", "shadow", "active", "retired", "rejected", "invalid")
DAY_S = 86_400.0


@dataclass(frozen=True)
class Policy:
    """The thresholds of the lifecycle; defaults are conservative, the settings may change them."""

    min_users: int = 2  # distinct users who confirmed the same fix before a rule is proposed
    per_user_per_day: int = 20  # confirmations of one user that count per day
    shadow_cases: int = 5  # shadow cases needed before automatic promotion
    shadow_precision: float = 0.8  # share of them that must agree with the actual fix
    retire_below: float = 0.5  # success rate under which an active rule is retired...
    retire_after: int = 5  # ...once it has been tried this many times
    auto_shadow: bool = True  # a valid new proposal starts shadowing at once (a curator may still reject it)

    @classmethod
    def from_settings(cls, settings) -> Policy:
        return cls(min_users=settings.learn_min_users, per_user_per_day=settings.learn_votes_per_user_per_day,
                   shadow_cases=settings.learn_shadow_cases, shadow_precision=settings.learn_shadow_precision,
                   retire_below=settings.learn_retire_below, retire_after=settings.learn_retire_after,
                   auto_shadow=settings.learn_auto_shadow)


@dataclass(frozen=True)
class Fix:
    """A confirmed resolution: for this playbook's problem (with this unhealthy signal, if any), this fixed it.

    `matched` is set when the problem was first matched to another playbook and this one, a close candidate,
    turned out to be the problem: the rule then binds that symptom cluster (matched as `matched`, with
    `playbook` among the candidates) to the fix.
    """

    playbook: str
    action: str
    target: str
    service: str = ""
    metric: str = ""
    matched: str = ""

    @property
    def key(self) -> str:
        parts = (self.playbook, self.service, self.metric, self.action, self.target)
        return "|".join((*parts, self.matched) if self.matched else parts)  # keys of plain fixes stay as they were

    @property
    def route(self) -> str:
        """The playbook a decision must be matched to for the rule to apply."""
        return self.matched or self.playbook

    @property
    def rule_name(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", f"{self.playbook}_{self.action}_{self.target}".lower()).strip("_")
        return f"learned_{slug}_{hashlib.sha256(self.key.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class LearnedRule:
    name: str
    version: int
    status: str
    body: dict[str, Any]
    provenance: dict[str, Any]
    reason: str
    actor: str
    at: float


class LearningLedger:
    """Remedy outcomes, resolution votes and learned rules in the event store's DuckDB."""

    def __init__(self, store: DuckDBStore, policy: Policy = Policy(), clock: Callable[[], float] = time.time,
                 validate: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.records = LearningRecords(store)
        self.policy = policy
        self.clock = clock
        self.validate = validate  # raises RuleError when a rule body is not a valid rule
        # DuckDB resolves concurrent inserts of one key optimistically (the loser gets an error, not a no-op),
        # so this process's ledger writes go one at a time; with PostgreSQL, ON CONFLICT alone would do.
        self._lock = threading.RLock()

    # -- remedy outcomes ----------------------------------------------------------------------------

    def record_outcome(self, playbook: str, action: str, target: str, conversation_id: str, user_id: str,
                       succeeded: bool, weight: float = 1.0) -> bool:
        """Count one outcome per conversation; a repeated or concurrent confirmation counts once. `weight` < 1
        is a success shared with other remedies that ran together. True if new."""
        with self._lock:
            return self.records.add_outcome(playbook, action, target, conversation_id, user_id, succeeded,
                                            self.clock(), weight)

    def posterior(self, playbook: str, action: str, target: str) -> tuple[float, float]:
        """Beta(alpha, beta) over the remedy's success rate: a uniform prior plus what was seen (shared
        successes count their share)."""
        successes, failures = self.records.outcome_sums(playbook, action, target)
        return 1.0 + successes, 1.0 + failures

    def posteriors(self) -> dict[tuple[str, str, str], tuple[float, float]]:
        """`posterior` of every (playbook, action, target) with outcomes, in one query (for overviews)."""
        return {key: (1.0 + s, 1.0 + f) for key, (s, f) in self.records.all_outcome_sums().items()}

    def conversation_outcomes(self, conversation_id: str) -> dict[tuple[str, str, str], bool]:
        """What was judged in one conversation: (playbook, action, target) -> whether it fixed the problem."""
        return self.records.conversation_outcomes(conversation_id)

    def confidence(self, playbook: str, action: str, target: str) -> float:
        alpha, beta = self.posterior(playbook, action, target)
        return alpha / (alpha + beta)

    def order(self, playbook: str, remedies: Sequence[tuple[str, str]], seed: str) -> list[tuple[str, str]]:
        """Remedies in the order of one Thompson sample each, seeded (say, by conversation) so that a
        conversation sees one stable order; ties keep the playbook's order."""
        rng = random.Random(f"{seed}|{playbook}")
        draws = [rng.betavariate(*self.posterior(playbook, action, target)) for action, target in remedies]
        ranked = sorted(range(len(remedies)), key=lambda i: (-draws[i], i))
        return [remedies[i] for i in ranked]

    # -- resolutions become rules -------------------------------------------------------------------

    def record_resolution(self, fix: Fix, conversation_id: str, user_id: str) -> LearnedRule | None:
        """A confirmed fix that was not the first choice; proposes a rule once enough distinct users agree.
        Returns the rule when this resolution created it."""
        with self._lock:
            return self._vote(fix, conversation_id, user_id)

    def _vote(self, fix: Fix, conversation_id: str, user_id: str) -> LearnedRule | None:
        since = self.clock() - DAY_S
        if self.records.votes_since(user_id, since) >= self.policy.per_user_per_day:
            return None  # past the user's daily allowance: recorded nowhere, so it cannot tip a vote
        self.records.add_vote(fix.key, conversation_id, user_id, {
            "playbook": fix.playbook, "service": fix.service, "metric": fix.metric, "action": fix.action,
            "target": fix.target}, self.clock())
        if self.latest(fix.rule_name) is not None:
            return None
        voters = self.records.voters(fix.key)
        if len(voters) < self.policy.min_users:
            return None
        conversations = self.records.vote_conversations(fix.key)
        provenance = {"fix": fix.__dict__, "conversations": conversations, "users": len(voters)}
        return self._new_version(fix.rule_name, rule_body(fix, len(conversations)), provenance, "proposed",
                                 f"{len(voters)} users confirmed this fix", "learning")

    def _new_version(self, name: str, body: dict[str, Any], provenance: dict[str, Any], status: str, reason: str,
                     actor: str) -> LearnedRule:
        with self._lock:
            return self._insert_version(name, body, provenance, status, reason, actor)

    def _insert_version(self, name: str, body: dict[str, Any], provenance: dict[str, Any], status: str,
                        reason: str, actor: str) -> LearnedRule:
        if self.validate is not None:
            try:
                self.validate(body)
            except RuleError as error:
                status, reason = "invalid", f"failed validation, never activated: {error}"
        latest = self.latest(name)
        version = (latest.version if latest else 0) + 1
        at = self.clock()
        self.records.add_rule_version((name, version, status, body, provenance, reason, actor, at))
        return LearnedRule(name, version, status, body, provenance, reason, actor, at)

    # -- lifecycle ----------------------------------------------------------------------------------

    def versions(self, name: str) -> list[LearnedRule]:
        return [LearnedRule(*row) for row in self.records.rule_versions(name)]

    def latest(self, name: str) -> LearnedRule | None:
        versions = self.versions(name)
        return versions[-1] if versions else None

    def rules(self, status: str | None = None, playbook: str | None = None,
              route: str | None = None) -> list[LearnedRule]:
        """The latest version of every learned rule, optionally only those with `status`, whose fix is for
        `playbook`, or that apply to decisions matched to `route` (see `Fix.route`)."""
        return [LearnedRule(*row) for row in self.records.latest_rules(status, playbook, route)]

    def set_status(self, name: str, status: str, actor: str, reason: str) -> LearnedRule:
        """Approve (active), reject, retire or shadow a rule: a new version with the same body."""
        if status not in STATUSES or status == "invalid":
            raise InputError(f"unknown status {status!r}; use one of proposed, shadow, active, retired, rejected")
        current = self.existing(name)
        if current.status == "invalid" and status in ("shadow", "active"):
            raise ConflictError(f"rule {name} failed validation and can never be activated: {current.reason}")
        return self._new_version(name, current.body, current.provenance, status, reason, actor)

    def revert(self, name: str, version: int, actor: str) -> LearnedRule:
        """Make `version`'s body and status current again, as a new version."""
        self.existing(name)  # an unknown rule is "no such rule", not "no such version"
        versions = self.versions(name)
        target = next((v for v in versions if v.version == version), None)
        if target is None:
            known = ", ".join(str(v.version) for v in versions) or "none"
            raise InputError(f"rule {name} has no version {version}; versions: {known}")
        return self._new_version(name, target.body, target.provenance, target.status,
                                 f"reverted to version {version}", actor)

    def diff(self, name: str, old: int, new: int) -> str:
        versions = {v.version: v for v in self.versions(name)}
        missing = [v for v in (old, new) if v not in versions]
        if missing:
            raise InputError(f"rule {name} has no version {missing[0]}; versions: "
                             f"{', '.join(map(str, sorted(versions))) or 'none'}")
        before, after = (_rule_text(versions[v]) for v in (old, new))
        return "".join(difflib.unified_diff(before, after, f"{name} v{old}", f"{name} v{new}"))

    def record_shadow_case(self, name: str, conversation_id: str, agreed: bool,
                           user_id: str | None = None) -> LearnedRule | None:
        """A shadow rule's fix judged in a conversation; promotes the rule when enough distinct users' cases
        agree. Returns the new version when this case promoted it."""
        with self._lock:
            return self._shadow_case(name, conversation_id, agreed, user_id)

    def _shadow_case(self, name: str, conversation_id: str, agreed: bool, user_id: str | None) -> LearnedRule | None:
        self.records.add_shadow_case(name, conversation_id, agreed, self.clock(), user_id)
        current = self.existing(name)
        if current.status != "shadow":
            return None
        agreeing, cases = self.shadow_record(name)
        if cases >= self.policy.shadow_cases and agreeing / cases >= self.policy.shadow_precision:
            return self._new_version(name, current.body, current.provenance, "active",
                                     f"{agreeing} of {cases} shadow cases agreed", "learning")
        return None

    def review_active(self, playbook: str | None = None,
                      records: Callable[[Sequence[LearnedRule]], Mapping[str, tuple[int, int]]] | None = None,
                      ) -> list[LearnedRule]:
        """Retire active rules (those applying to `playbook`, or all) whose live (successes, tries) fall below
        the floor; returns those retired. `records` defaults to the live record in the store."""
        rules = self.rules("active", route=playbook)
        found = (records or self.live_records)(rules)
        retired = []
        for rule in rules:
            successes, tries = found.get(rule.name, (0, 0))
            if tries >= self.policy.retire_after and successes / tries < self.policy.retire_below:
                retired.append(self._new_version(rule.name, rule.body, rule.provenance, "retired",
                                                 f"success rate {successes}/{tries} under the floor", "learning"))
        return retired

    def close_handoff(self, handoff_id: str, action: str, target: str, engineer: str) -> LearnedRule | None:
        """An engineer closes a hand-off with the fix that worked: it counts as a confirmed resolution of that
        playbook (the engineer's vote; a rule still needs another user's), and the hand-off is closed."""
        found = self.records.handoff(handoff_id)
        if found is None:
            raise NotFoundError(f"no hand-off {handoff_id!r}; `firstline handoff list` shows the open ones")
        status, conversation_id, playbook = found
        if status != "open":
            raise ConflictError(f"hand-off {handoff_id} is already {status}")
        fix = Fix(playbook or "", action, target)
        if self.validate is not None:
            try:
                self.validate(rule_body(fix, 1))
            except RuleError as error:
                raise InputError(f"that fix cannot become a rule: {error.problems[0].message}") from None
        voter = f"engineer:{engineer}"
        with self._lock:
            self.records.close_handoff(handoff_id, f"closed by {engineer}")
            self.record_outcome(fix.playbook, action, target, conversation_id, voter, True)
            return self._vote(fix, conversation_id, voter)

    def live_record(self, rule: LearnedRule) -> tuple[int, int]:
        """(successes, tries) of a learned rule's fix in the conversations where the rule fired. A success is
        whole even when another remedy ran beside it: the question is whether the rule's problems get fixed
        (a shared success would keep a rule that always runs beside another under any floor of one half)."""
        return self.live_records([rule])[rule.name]

    def live_records(self, rules: Sequence[LearnedRule]) -> dict[str, tuple[int, int]]:
        """`live_record` of many rules in one query (a playbook may have hundreds of learned rules)."""
        if not rules:
            return {}
        fixes = [r.provenance.get("fix", {}) for r in rules]
        # Outcomes count under the playbook the conversation was on when the rule fired: its route.
        columns = [[r.name for r in rules], [str(f.get("matched") or f.get("playbook", "")) for f in fixes],
                   *([str(f.get(k, "")) for f in fixes] for k in ("action", "target"))]
        return self.records.live_records(*columns)

    def fire_counts(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """How often each learned rule (or each of `names`) fired in a decision."""
        return self.records.fire_counts(names)

    def shadow_record(self, name: str) -> tuple[int, int]:
        """(agreeing, all) shadow cases of a rule, one per user (their first): how often its fix worked."""
        return self.records.shadow_record(name)

    def shadow_conversations(self, name: str) -> list[str]:
        return self.records.shadow_conversations(name)

    def export(self, path: Path) -> int:
        """Write the active learned rules as a rule file (atomically) for the rule source to load. With none
        active there is no file: the loader refuses a file without rules (it is what a half-saved file looks
        like), and a missing file unloads the last ones."""
        active = [r.body for r in self.rules("active")]
        path.parent.mkdir(parents=True, exist_ok=True)
        if not active:
            path.unlink(missing_ok=True)
            return 0
        document = {"ruleset": "learned_rules", "description": "Written by Firstline from confirmed resolutions; "
                    "curate with `firstline learned`.", "rules": active}
        staging = path.with_suffix(".tmp")
        staging.write_text(dump_yaml(document), encoding="utf-8")
        staging.replace(path)
        return len(active)

    def existing(self, name: str) -> LearnedRule:
        current = self.latest(name)
        if current is None:
            raise NotFoundError(f"no learned rule named {name!r}; `firstline learned list` shows them")
        return current


def rule_body(fix: Fix, confirmations: int) -> dict[str, Any]:
    """The rule, in the hand-written schema: this playbook (with this unhealthy signal) -> propose this fix."""
    conditions: list[dict[str, Any]] = [{"match": {"playbook": fix.route, "band": "answer"}}]
    if fix.matched:
        conditions.append({"candidate": {"playbook": fix.playbook}})
    if fix.service and fix.metric:
        conditions.append({"metric": {"service": fix.service, "name": fix.metric, "status": "unhealthy"}})
    conditions.append({"none": {"proposal": {"action": fix.action, "target": fix.target}}})
    signal = f" while {fix.service} {fix.metric} was unhealthy" if fix.service and fix.metric else ""
    seen_as = f", when the problem was first taken for {fix.matched}" if fix.matched else ""
    return {
        "name": fix.rule_name,
        "description": f"Learned: {fix.action} on {fix.target} fixed {fix.playbook}{signal}{seen_as} "
                       f"({confirmations} confirmed resolutions).",
        "salience": 450,
        "when": {"all": conditions},
        "then": [{"assert": {"proposal": {"action": fix.action, "target": fix.target,
                                          "reason": f"learned {fix.rule_name}"}}}],
    }


def _rule_text(rule: LearnedRule) -> list[str]:
    return yaml.safe_dump({"status": rule.status, **rule.body}, sort_keys=False).splitlines(keepends=True)


def rule_parser(known_actions, known_playbooks: frozenset[str] | None = None) -> Callable[[dict[str, Any]], Any]:
    """Reads a learned rule body exactly as a hand-written rule file is read (schema, names, actions) and
    returns it as a one-rule RuleBase; raises RuleError listing what is wrong."""
    import tempfile

    from rules.loader import load_rules

    def parse(body: dict[str, Any]):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "learned.yaml"
            path.write_text(dump_yaml({"ruleset": "learned_rules", "rules": [body]}), encoding="utf-8")
            return load_rules([path], known_actions, known_playbooks=known_playbooks)

    return parse


def rule_validator(known_actions, known_playbooks: frozenset[str] | None = None) -> Callable[[dict[str, Any]], None]:
    """Checks a learned rule body as a hand-written rule is checked, and that the remedy it proposes exists and
    fits its target (a proposal is only data to the loader)."""
    parse = rule_parser(known_actions, known_playbooks)

    def validate(body: dict[str, Any]) -> None:
        parse(body)
        where = f"learned rule {body.get('name')}"
        for step in body.get("then", ()):
            proposal = step.get("assert", {}).get("proposal") if isinstance(step, dict) else None
            if not proposal:
                continue
            action, target = proposal.get("action"), proposal.get("target")
            if known_actions is not None and action not in known_actions:
                raise RuleError([Problem(where, None, "then.assert.proposal.action", f"unknown action {action!r}")])
            if known_actions is not None and target not in known_actions[action]:
                raise RuleError([Problem(where, None, "then.assert.proposal.target",
                                         f"{action} cannot run on {target!r}")])

    return validate
