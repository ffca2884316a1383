"""The learning loop: what one conversation teaches, behind one interface for the dialogue.

The dialogue only reports what happened: a fix the user confirmed or refused (`judged`), remedies whose
verification on telemetry failed (`verification_failed`), a problem the user confirmed was the one (`confirmed`).
From these the loop counts remedy outcomes, scores shadow rules, votes for learned rules, retires live rules
whose fix keeps failing, publishes the active learned rules for the rule source, and teaches the index how
users describe their problems (each example owned by its user, so deleting their history removes it).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from engine.learning.ledger import Fix, LearningLedger
from engine.store.conversations import Conversations, LearnedRow
from knowledge.base import KnowledgeBase

HANDOFF_VERBS = ("handoff", "escalate")  # actions that hand the problem on: nothing to credit or blame


@dataclass(frozen=True)
class JudgedFix:
    """The user's verdict on the last fix of a conversation.

    `playbook` is the problem as it stands; `first_playbook` the one it was first taken for; `candidates` the
    playbooks the problem's match offered; `tried` how many playbooks were acted on for it."""

    conversation_id: str
    user_id: str
    playbook: str
    first_playbook: str | None
    candidates: frozenset[str]
    tried: int
    succeeded: bool


class LearningLoop:
    """Outcomes, shadow scoring, votes, learned-rule publishing and taught examples, for the dialogue.

    `ledger` None (or `enabled` False) learns nothing from verdicts; examples a curator teaches still index.
    """

    def __init__(self, knowledge: KnowledgeBase, conversations: Conversations, ledger: LearningLedger | None,
                 enabled: bool = True, learned_rules_file: Path | None = None,
                 clock: Callable[[], float] = time.time, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.knowledge = knowledge
        self.conversations = conversations
        self.ledger = ledger
        self.enabled = enabled
        self.learned_rules_file = learned_rules_file
        self.clock = clock
        self.new_id = new_id
        self._lock = threading.Lock()
        self._indexed: dict[str, list[int]] = {}  # learned example id -> its ids in the knowledge index
        for row in conversations.learned():
            self._indexed[row.id] = knowledge.add_examples(row.playbook, [row.text])

    # -- what the dialogue reports ------------------------------------------------------------------

    def confirmed(self, user_id: str, conversation_id: str, playbook: str | None, problem: str) -> None:
        """The user confirmed a fix of `playbook` for `problem`: their wording becomes an example of it."""
        if self.enabled and problem and playbook is not None and playbook in self.knowledge.playbooks:
            self.teach(user_id, conversation_id, playbook, problem)

    def judged(self, verdict: JudgedFix) -> None:
        """The user's verdict on the last fix counts for the posterior of each remedy it ran (a success shared
        between them, since the user cannot say which one did it); it scores the shadow rules whose fix has now
        been judged in this conversation; and a confirmed fix that was not the first thing tried votes for a
        learned rule."""
        ledger = self.ledger
        if not self._learns(verdict.playbook) or ledger is None:
            return
        fixes = self.conversations.last_fixes(verdict.conversation_id)
        if not fixes:
            return  # nothing was run (a dry run, or a hand-off): no remedy to credit
        weight = 1.0 / len(fixes) if verdict.succeeded else 1.0
        for action, target in fixes:
            ledger.record_outcome(verdict.playbook, action, target, verdict.conversation_id, verdict.user_id,
                                  verdict.succeeded, weight)
        # A live rule for this problem whose fix keeps failing retires; other playbooks' rules are not touched.
        changed = bool(ledger.review_active(verdict.playbook))
        changed |= self._score_shadow_rules(ledger, verdict)
        earlier_failures = self.conversations.failed_actions(verdict.conversation_id)
        if verdict.succeeded and (earlier_failures or verdict.tried > 1):
            for action, target in fixes:
                self._vote(ledger, verdict, action, target)
        if changed:
            self.publish()  # the rule source picks the file up

    def verification_failed(self, conversation_id: str, user_id: str, playbook: str | None,
                            failed: Sequence[tuple[str, str]]) -> None:
        """Remedies (action, target) whose verification on telemetry failed did not fix the problem: they count
        at once. A verified success waits for the user's word (a metric back to normal does not prove their
        problem is gone)."""
        if self.ledger is None or playbook is None or not self._learns(playbook):
            return
        for action, target in failed:
            if action not in HANDOFF_VERBS:
                self.ledger.record_outcome(playbook, action, target, conversation_id, user_id, False)

    # -- examples -----------------------------------------------------------------------------------

    def teach(self, user_id: str, conversation_id: str, playbook: str, text: str) -> str:
        """Index `text` as an example of `playbook` at once, owned by the user who wrote it (so deleting their
        history removes it); a curator does this from the unmatched queue. Returns the learned row's id.
        Raises InputError for an unknown playbook."""
        if playbook not in self.knowledge.playbooks:
            raise InputError(f"unknown playbook {playbook!r}", code="invalid_body")
        row = LearnedRow(self.new_id(), user_id, playbook, text)
        self.conversations.add_learned(row, conversation_id, self.clock())
        with self._lock:
            self._indexed[row.id] = self.knowledge.add_examples(row.playbook, [row.text])
        return row.id

    def forget_examples(self, user_id: str) -> int:
        """Take the examples learned from `user_id` out of the index (their rows go with the user's history);
        returns how many index entries were removed."""
        learned = [row.id for row in self.conversations.learned() if row.user_id == user_id]
        with self._lock:
            ids = [i for key in learned for i in self._indexed.pop(key, [])]
            return self.knowledge.remove_examples(ids)

    def publish(self) -> int:
        """Write the active learned rules where the rule source loads them; returns how many."""
        if self.ledger is None or self.learned_rules_file is None:
            return 0
        return self.ledger.export(self.learned_rules_file)

    def close(self) -> None:
        """Take learned examples out of the in-memory index (the store keeps them for the next start)."""
        with self._lock:
            self.knowledge.remove_examples([i for ids in self._indexed.values() for i in ids])
            self._indexed.clear()

    # -- helpers ------------------------------------------------------------------------------------

    def _learns(self, playbook: str | None) -> bool:
        return self.enabled and playbook is not None and playbook in self.knowledge.playbooks

    def _score_shadow_rules(self, ledger: LearningLedger, verdict: JudgedFix) -> bool:
        """A shadow rule says "this fix works for this problem": each one that would have applied to this
        conversation and whose fix has been judged in it agrees if the fix worked. A problem fixed by something
        else says nothing about the rule's fix (rules add their fix; they do not replace the others), so it is
        not a case. True if a rule was promoted."""
        judged = ledger.conversation_outcomes(verdict.conversation_id)
        promoted = False
        for playbook in sorted({key[0] for key in judged}):
            for rule in ledger.rules("shadow", playbook=playbook):
                fix = rule.provenance.get("fix", {})
                if fix.get("matched") and (fix["matched"] != verdict.first_playbook
                                           or fix.get("playbook") not in verdict.candidates):
                    continue  # matched to another playbook first, or without this candidate: it would not apply
                outcome = judged.get((fix.get("playbook"), fix.get("action"), fix.get("target")))
                if outcome is not None:
                    case = ledger.record_shadow_case(rule.name, verdict.conversation_id, outcome, verdict.user_id)
                    promoted |= case is not None
        return promoted

    def _vote(self, ledger: LearningLedger, verdict: JudgedFix, action: str, target: str) -> None:
        """A fix that was not the first thing tried votes for a learned rule: the second remedy of the same
        playbook, or the fix of a close candidate when the playbook first matched was not the problem."""
        remedy = next((r for r in self.knowledge.playbooks[verdict.playbook].remedies
                       if (r.action, r.target) == (action, target)), None)
        signal = remedy.indicated_by if remedy else None
        first = verdict.first_playbook
        fix = Fix(verdict.playbook, action, target, signal.service if signal else "", signal.metric if signal else "",
                  matched=first if first and first != verdict.playbook else "")
        proposed = ledger.record_resolution(fix, verdict.conversation_id, verdict.user_id)
        if proposed is not None and proposed.status == "proposed" and ledger.policy.auto_shadow:
            ledger.set_status(proposed.name, "shadow", "learning", "shadowing a new proposal")
