"""The conversation's own tables beside the event store: dialogue state, feedback, learned examples, API
tokens and deciders' answers; and forgetting a user.

They live in the same DuckDB file and go through `DuckDBStore.transaction`, so a turn's writes and a user's
deletion are each one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.store import DuckDBStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversation_state (
    conversation_id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, payload JSON NOT NULL,
    updated_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id VARCHAR PRIMARY KEY, conversation_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, rating INTEGER NOT NULL,
    comment VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS learned_examples (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL, playbook VARCHAR NOT NULL,
    text VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, role VARCHAR NOT NULL, salt VARCHAR NOT NULL,
    hash VARCHAR NOT NULL, created_at DOUBLE NOT NULL, revoked BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS escalation_decisions (
    escalation_id VARCHAR PRIMARY KEY, decided_by VARCHAR NOT NULL, outcome VARCHAR NOT NULL,
    note VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
"""

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
# rules then see as a failed action (engine/store.py, `past_actions`).
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


# Every table holding something of a user's, and how its rows are found: by user id, or through the
# user's decisions or escalations. `forget` deletes from all of them; a test reads them all back.
BY_USER = ("messages", "decisions", "actions", "fix_verdicts", "escalations", "handoffs", "conversations",
           "conversation_state", "feedback", "learned_examples")
BY_DECISION = ("candidates", "facts", "rules_fired", "traces")
FORGOTTEN = "forgotten"  # who asked for an action, once the user who asked has had their history deleted


@dataclass(frozen=True)
class ConversationRow:
    id: str
    channel: str
    started_at: float
    last_at: float
    stage: str
    messages: int


@dataclass(frozen=True)
class EscalationRow:
    id: str
    decision_id: str
    conversation_id: str
    user_id: str
    category: str
    summary: str
    status: str
    created_at: float


@dataclass(frozen=True)
class TokenRow:
    id: str
    user_id: str
    role: str
    salt: str
    hash: str
    revoked: bool


@dataclass(frozen=True)
class LearnedRow:
    id: str
    user_id: str
    playbook: str
    text: str


class ChatStore:
    """Reads and writes the conversation's tables through the event store's connection."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store = store
        store.execute(SCHEMA)
        # Files written before turns were versioned: every state starts at version 0.
        store.execute("ALTER TABLE conversation_state ADD COLUMN IF NOT EXISTS version BIGINT DEFAULT 0")

    # -- state --------------------------------------------------------------------------------------

    def state(self, conversation_id: str) -> tuple[str, dict[str, Any], int] | None:
        """(stage, payload, version) of a conversation's state; the version changes with every saved turn."""
        rows = self.store.execute(
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
        return [(str(a), str(t)) for a, t in self.store.execute(LAST_FIXES_SQL, (conversation_id,))]

    def record_not_fixed(self, conversation_id: str, verdict_id: str, now: float) -> None:
        """The user says the last fix did not work: its remedies count as failed for the rules from now on."""
        self.write([(NOT_FIXED_SQL, (verdict_id, now, conversation_id))])

    def failed_actions(self, conversation_id: str) -> int:
        """How many remedies of this conversation failed, by telemetry or by the user's word."""
        return int(self.store.execute(FAILED_BEFORE_SQL, (conversation_id, conversation_id))[0][0])

    @staticmethod
    def message_sql(message_id: str, conversation_id: str, user_id: str, role: str, text: str,
                    now: float) -> tuple[str, Sequence[Any]]:
        return ("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", (message_id, conversation_id, user_id, role, text,
                                                                   now))

    def write(self, statements: list[tuple[str, Sequence[Any]]],
              guard: tuple[str, Sequence[Any], str] | None = None) -> None:
        self.store.transaction(statements, guard)

    def conversations(self, user_id: str) -> list[ConversationRow]:
        """The user's conversations, the most recently active first."""
        rows = self.store.execute(
            "SELECT c.id, c.channel, c.started_at, coalesce(max(m.created_at), c.started_at), "
            "coalesce(any_value(s.stage), 'open'), count(m.id) FROM conversations c "
            "LEFT JOIN messages m ON m.conversation_id = c.id LEFT JOIN conversation_state s "
            "ON s.conversation_id = c.id WHERE c.user_id = ? GROUP BY c.id, c.channel, c.started_at "
            "ORDER BY 4 DESC, c.id", (user_id,))
        return [ConversationRow(*row) for row in rows]

    def user_messages_since(self, user_id: str, since: float) -> tuple[int, float | None]:
        """How many messages the user sent after `since`, and when the oldest of them was sent."""
        rows = self.store.execute("SELECT count(*), min(created_at) FROM messages WHERE user_id = ? AND role = "
                                  "'user' AND created_at > ?", (user_id, since))
        return int(rows[0][0]), rows[0][1]

    # -- feedback and learning ----------------------------------------------------------------------

    @staticmethod
    def feedback_sql(feedback_id: str, conversation_id: str, user_id: str, rating: int, comment: str,
                     now: float) -> tuple[str, Sequence[Any]]:
        return ("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?)",
                (feedback_id, conversation_id, user_id, rating, comment, now))

    def learned(self) -> list[LearnedRow]:
        return [LearnedRow(*row) for row in self.store.execute(
            "SELECT id, user_id, playbook, text FROM learned_examples ORDER BY created_at, id")]

    def add_learned(self, row: LearnedRow, conversation_id: str, now: float) -> None:
        self.write([("INSERT INTO learned_examples VALUES (?, ?, ?, ?, ?, ?)",
                     (row.id, row.user_id, conversation_id, row.playbook, row.text, now))])

    # -- escalations --------------------------------------------------------------------------------

    def escalation(self, escalation_id: str) -> EscalationRow | None:
        rows = self.store.execute("SELECT * FROM escalations WHERE id = ?", (escalation_id,))
        return EscalationRow(*rows[0]) if rows else None

    def escalations(self, status: str | None = None) -> list[EscalationRow]:
        if status is None:
            rows = self.store.execute("SELECT * FROM escalations ORDER BY created_at, id")
        else:
            rows = self.store.execute("SELECT * FROM escalations WHERE status = ? ORDER BY created_at, id",
                                      (status,))
        return [EscalationRow(*row) for row in rows]

    @staticmethod
    def decision_sql(escalation_id: str, decided_by: str, outcome: str, note: str,
                     now: float) -> list[tuple[str, Sequence[Any]]]:
        return [("UPDATE escalations SET status = ? WHERE id = ?", (outcome, escalation_id)),
                ("INSERT INTO escalation_decisions VALUES (?, ?, ?, ?, ?)",
                 (escalation_id, decided_by, outcome, note, now))]

    # -- tokens -------------------------------------------------------------------------------------

    def add_token(self, row: TokenRow, now: float) -> None:
        self.write([("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (row.id, row.user_id, row.role, row.salt, row.hash, now, False))])

    def token(self, token_id: str) -> TokenRow | None:
        rows = self.store.execute("SELECT id, user_id, role, salt, hash, revoked FROM api_tokens WHERE id = ?",
                                  (token_id,))
        return TokenRow(*rows[0]) if rows else None

    def tokens(self) -> list[TokenRow]:
        return [TokenRow(*row) for row in self.store.execute(
            "SELECT id, user_id, role, salt, hash, revoked FROM api_tokens ORDER BY created_at, id")]

    def revoke_token(self, token_id: str) -> bool:
        if self.token(token_id) is None:
            return False
        self.write([("UPDATE api_tokens SET revoked = true WHERE id = ?", (token_id,))])
        return True

    # -- forgetting ---------------------------------------------------------------------------------

    def forget(self, user_id: str) -> dict[str, int]:
        """Delete everything of the user's, in one transaction; returns rows deleted per table."""
        counts = {table: self._count(table, "user_id = ?", user_id) for table in BY_USER}
        decisions = "decision_id IN (SELECT id FROM decisions WHERE user_id = ?)"
        counts |= {table: self._count(table, decisions, user_id) for table in BY_DECISION}
        decided = "escalation_id IN (SELECT id FROM escalations WHERE user_id = ?)"
        counts["escalation_decisions"] = self._count("escalation_decisions", decided, user_id)
        # Rows found through the user's decisions and escalations go before those.
        statements: list[tuple[str, Sequence[Any]]] = [(f"DELETE FROM {t} WHERE {decisions}", (user_id,))
                                                       for t in BY_DECISION]
        statements.append((f"DELETE FROM escalation_decisions WHERE {decided}", (user_id,)))
        if self._has_table("remediations"):
            # The infrastructure's audit trail keeps what was done (cooldowns and the breaker read it), not who
            # asked: the user's conversations and name are replaced by a mark that points at nobody.
            mine = "requester IN (SELECT 'conversation:' || id FROM conversations WHERE user_id = ?) OR subject = ?"
            counts["remediations"] = int(self.store.execute(
                f"SELECT count(*) FROM remediations WHERE {mine}", (user_id, user_id))[0][0])
            statements += [
                ("UPDATE remediations SET subject = ? WHERE subject = ?", (FORGOTTEN, user_id)),
                ("UPDATE remediations SET requester = ? WHERE requester IN "
                 "(SELECT 'conversation:' || id FROM conversations WHERE user_id = ?)",
                 (f"conversation:{FORGOTTEN}", user_id)),
            ]
        statements += [(f"DELETE FROM {t} WHERE user_id = ?", (user_id,)) for t in BY_USER]
        self.write(statements)
        return counts

    def _has_table(self, table: str) -> bool:
        return bool(self.store.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", (table,)))

    def _count(self, table: str, where: str, user_id: str) -> int:
        return int(self.store.execute(f"SELECT count(*) FROM {table} WHERE {where}", (user_id,))[0][0])
