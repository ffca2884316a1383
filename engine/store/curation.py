"""The curators' read-only views across decisions and learning: the unmatched queue, each playbook's use, and
the decisions a learned rule fired in, was taught from or was shadow-scored on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.store.database import DuckDBStore

UNMATCHED_SQL = """
SELECT d.id, d.decision, d.created_at, m.text, d.user_id, d.conversation_id, d.playbook
FROM decisions d JOIN messages m ON m.id = d.message_id
WHERE d.decision IN ('decline', 'clarify')
  AND NOT EXISTS (SELECT 1 FROM learned_examples l WHERE l.text = m.text AND l.user_id = d.user_id)
ORDER BY d.created_at DESC LIMIT ?
"""
# A playbook's decisions, and the conversations it resolved by the metrics' definition (docs/metrics.md: confirmed
# or assumed, once per conversation): counting `resolve` decisions counted every hand-off to engineering too.
PLAYBOOK_SQL = """
WITH used AS (SELECT playbook, count(*) AS decisions FROM decisions WHERE playbook IS NOT NULL GROUP BY playbook),
resolved AS (SELECT playbook, count(*) AS resolved FROM conversation_outcomes WHERE ai_resolved GROUP BY playbook)
SELECT u.playbook, u.decisions, coalesce(r.resolved, 0) FROM used u LEFT JOIN resolved r USING (playbook)
"""
FIRED_SQL = """
SELECT r.decision_id, d.conversation_id, d.created_at, d.decision FROM rules_fired r
JOIN decisions d ON d.id = r.decision_id WHERE r.rule = ? ORDER BY d.created_at DESC LIMIT ?
"""
CONVERSATION_DECISIONS_SQL = """
SELECT id, conversation_id, created_at, decision FROM decisions
WHERE conversation_id IN (SELECT unnest(?::VARCHAR[])) AND playbook = ? ORDER BY created_at DESC LIMIT ?
"""
UNMATCHED_KEYS = ("decision_id", "decision", "at", "text", "user_id", "conversation_id", "playbook")
# (decision_id, conversation_id, created_at, decision)
DecisionRef = tuple[str, str, float, str]


class CurationQueries:
    """Read-only queries for the curator pages, on the DuckDB database."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    def unmatched(self, limit: int) -> list[dict[str, Any]]:
        """Messages declined or clarified that nobody has taught a playbook yet, newest first."""
        return [dict(zip(UNMATCHED_KEYS, row, strict=True)) for row in self.db.execute(UNMATCHED_SQL, (limit,))]

    def unmatched_message(self, decision_id: str) -> tuple[str, str, str] | None:
        """(user_id, conversation_id, text) of one message of the unmatched queue, or None."""
        rows = self.db.execute(
            "SELECT d.user_id, d.conversation_id, m.text FROM decisions d JOIN messages m ON m.id = d.message_id "
            "WHERE d.id = ? AND d.decision IN ('decline', 'clarify')", (decision_id,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def playbook_usage(self) -> dict[str, tuple[int, int]]:
        """playbook -> (decisions naming it, conversations it resolved), measured at the store's clock."""
        self.db.execute("SET VARIABLE firstline_now = ?", (self.db.clock(),))  # this thread's own cursor
        return {row[0]: (int(row[1]), int(row[2])) for row in self.db.execute(PLAYBOOK_SQL)}

    def fired_in(self, rule: str, limit: int) -> list[DecisionRef]:
        """The latest decisions `rule` fired in."""
        return [tuple(row) for row in self.db.execute(FIRED_SQL, (rule, limit))]

    def decisions_about(self, conversations: Sequence[str], playbook: str | None, limit: int) -> list[DecisionRef]:
        """The latest decisions about `playbook` in `conversations`."""
        return [tuple(row) for row in self.db.execute(
            CONVERSATION_DECISIONS_SQL, (list(conversations), playbook, limit))]

    def open_handoffs(self) -> list[tuple[str, str | None, str]]:
        """(id, playbook, summary) of the chat's engineering hand-offs still open, oldest first."""
        return [(row[0], row[1], row[2]) for row in self.db.execute(
            "SELECT h.id, d.playbook, h.summary FROM handoffs h JOIN decisions d ON d.id = h.decision_id "
            "WHERE h.status = 'open' ORDER BY h.created_at")]
