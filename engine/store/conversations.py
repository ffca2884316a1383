"""A conversation's own rows: its state (stage, payload, version), the user's verdicts on fixes, feedback and
the examples learned from it. Writes go through `commit`, so a turn is one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.store.database import DuckDBStore, Guard, Statement

# The remediations the user is answering about: those of the latest decision in this conversation that ran a
# remedy that looked fine (a decision may run several, e.g. the remedy telemetry points at and a learned one).
LAST_FIXES_SQL = """
SELECT a.name, a.target FROM actions a WHERE a.decision_id = (
    SELECT a2.decision_id FROM actions a2 JOIN decisions d ON d.id = a2.decision_id
    WHERE d.conversation_id = ? AND a2.status = 'succeeded' AND a2.name NOT IN ('handoff', 'escalate')
    ORDER BY a2.finished_at DESC LIMIT 1)
AND a.status = 'succeeded' AND a.name NOT IN ('handoff', 'escalate') ORDER BY a.seq
"""
# The user says it is still broken: every remedy of the decision they judged gets a verdict of its own, which the
# rules then see as a failed action (`Decisions.past_actions`).
NOT_FIXED_SQL = """
INSERT INTO fix_verdicts SELECT ? || '-' || a.seq, d.conversation_id, a.decision_id, a.user_id, a.name, a.target,
    'not_fixed', ?
FROM actions a JOIN decisions d ON d.id = a.decision_id WHERE a.decision_id = (
    SELECT a2.decision_id FROM actions a2 JOIN decisions d ON d.id = a2.decision_id
    WHERE d.conversation_id = ? AND a2.status IN ('succeeded', 'skipped') AND a2.name NOT IN ('handoff', 'escalate')
    ORDER BY a2.finished_at DESC LIMIT 1)
AND a.status IN ('succeeded', 'skipped') AND a.name NOT IN ('handoff', 'escalate')
"""
FAILED_BEFORE_SQL = (
    "SELECT (SELECT count(*) FROM actions a JOIN decisions d ON d.id = a.decision_id WHERE d.conversation_id = ? "
    "AND a.status = 'failed' AND a.name NOT IN ('handoff', 'escalate')) "
    "+ (SELECT count(*) FROM fix_verdicts WHERE conversation_id = ? AND verdict = 'not_fixed')")



@dataclass(frozen=True)
class ConversationRow:
    id: str
    channel: str
    started_at: float
    last_at: float
    stage: str
    messages: int


@dataclass(frozen=True)
class LearnedRow:
    id: str
    user_id: str
    playbook: str
    text: str


class Conversations:
    """The conversations repository on the DuckDB database."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    def commit(self, statements: list[Statement], guard: Guard | None = None) -> None:
        """Write a turn's statements in one transaction (see `DuckDBStore.transaction` for `guard`)."""
        self.db.transaction(statements, guard)

    # -- state --------------------------------------------------------------------------------------

    def state(self, conversation_id: str) -> tuple[str, dict[str, Any], int] | None:
        """(stage, payload, version) of a conversation's state; the version changes with every saved turn."""
        rows = self.db.execute(
            "SELECT stage, payload, coalesce(version, 0) FROM conversation_state WHERE conversation_id = ?",
            (conversation_id,))
        return (rows[0][0], json.loads(rows[0][1]), int(rows[0][2])) if rows else None

    def state_guard(self, conversation_id: str, user_id: str, stage: str, payload: dict[str, Any], now: float,
                    version: int | None) -> tuple[str, Sequence[Any], str]:
        """The statement that saves a conversation's state if nobody saved another since it was read at
        `version` (None: there was no state yet), for `DuckDBStore.transaction(..., guard=...)`: of two turns of
        one conversation answered at once, the second to commit is refused whole, never written over the first."""
        lost = ("This conversation moved on while your message was being answered (another message in it was "
                "answered at the same moment). Your message is kept; send it again if it still needs an answer.")
        if version is None:
            return ("INSERT INTO conversation_state (conversation_id, user_id, stage, payload, updated_at, version) "
                    "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT DO NOTHING RETURNING version",
                    (conversation_id, user_id, stage, json.dumps(payload), now), lost)
        return ("UPDATE conversation_state SET user_id = ?, stage = ?, payload = ?, updated_at = ?, "
                "version = version + 1 WHERE conversation_id = ? AND coalesce(version, 0) = ? RETURNING version",
                (user_id, stage, json.dumps(payload), now, conversation_id, version), lost)

    # -- the user's verdict on a fix ------------------------------------------------------------------

    def last_fixes(self, conversation_id: str) -> list[tuple[str, str]]:
        """(action, target) of the remedies the user is answering about, in the order they ran."""
        return [(str(a), str(t)) for a, t in self.db.execute(LAST_FIXES_SQL, (conversation_id,))]

    def record_not_fixed(self, conversation_id: str, verdict_id: str, now: float) -> None:
        """The user says the last fix did not work: its remedies count as failed for the rules from now on."""
        self.commit([(NOT_FIXED_SQL, (verdict_id, now, conversation_id))])

    @staticmethod
    def verdict_sql(verdict_id: str, conversation_id: str, user_id: str, playbook: str | None, verdict: str,
                    now: float) -> Statement:
        """What the user said about the fix in hand (`fixed`, `not_fixed`, `partly`) or about a person's answer
        to their request (`settled`, `not_settled`), at `now` (epoch s): the metrics' confirmed resolutions."""
        return ("INSERT INTO user_verdicts VALUES (?, ?, ?, ?, ?, ?)",
                (verdict_id, conversation_id, user_id, playbook, verdict, now))

    def failed_actions(self, conversation_id: str) -> int:
        """How many remedies of this conversation failed, by telemetry or by the user's word."""
        return int(self.db.execute(FAILED_BEFORE_SQL, (conversation_id, conversation_id))[0][0])

    @staticmethod
    def message_sql(message_id: str, conversation_id: str, user_id: str, role: str, text: str,
                    now: float) -> tuple[str, Sequence[Any]]:
        return ("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", (message_id, conversation_id, user_id, role, text,
                                                                   now))

    def conversations(self, user_id: str) -> list[ConversationRow]:
        """The user's conversations, the most recently active first."""
        rows = self.db.execute(
            "SELECT c.id, c.channel, c.started_at, coalesce(max(m.created_at), c.started_at), "
            "coalesce(any_value(s.stage), 'open'), count(m.id) FROM conversations c "
            "LEFT JOIN messages m ON m.conversation_id = c.id LEFT JOIN conversation_state s "
            "ON s.conversation_id = c.id WHERE c.user_id = ? GROUP BY c.id, c.channel, c.started_at "
            "ORDER BY 4 DESC, c.id", (user_id,))
        return [ConversationRow(*row) for row in rows]

    # -- feedback and learning ----------------------------------------------------------------------

    @staticmethod
    def feedback_sql(feedback_id: str, conversation_id: str, user_id: str, rating: int, comment: str,
                     now: float) -> list[Statement]:
        """A conversation's rating: one per conversation, a later one replacing the earlier (so one user cannot
        drag a conversation's satisfaction down by rating it again and again)."""
        return [("DELETE FROM feedback WHERE conversation_id = ?", (conversation_id,)),
                ("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?)",
                 (feedback_id, conversation_id, user_id, rating, comment, now))]

    def learned(self) -> list[LearnedRow]:
        return [LearnedRow(*row) for row in self.db.execute(
            "SELECT id, user_id, playbook, text FROM learned_examples ORDER BY created_at, id")]

    def add_learned(self, row: LearnedRow, conversation_id: str, now: float) -> None:
        self.commit([("INSERT INTO learned_examples VALUES (?, ?, ?, ?, ?, ?)",
                     (row.id, row.user_id, conversation_id, row.playbook, row.text, now))])

