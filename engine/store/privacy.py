"""Forgetting a user: every row of theirs deleted in one transaction.

Deleted: their conversations, messages, decisions and everything recorded about them, escalations with the
decisions on them and their record (escalation_events), hand-offs, verdicts, feedback, learned examples, their
account record, the e-mail address the host app gave, when they were last on the chat, every notice queued for
them (sent or not), and what learning kept of theirs. Made anonymous: the remediations they asked for (the
infrastructure's audit trail keeps what was done, which cooldowns and the circuit breaker read, not who asked).
Kept: API tokens, which an operator issued and revokes (`firstline token revoke`); they hold a user name and a
hash, no history.
"""

from __future__ import annotations

from engine.store.database import DuckDBStore, Statement

# Every table holding something of a user's, and how its rows are found: by user id, or through the
# user's decisions or escalations. `forget` deletes from all of them; a test reads them all back.
BY_USER = ("messages", "decisions", "actions", "fix_verdicts", "user_verdicts", "escalations", "handoffs",
           "conversations", "conversation_state", "feedback", "learned_examples", "accounts",
           # how to reach them and what they were to be told: the address, their presence, every notice, the
           # notes engineering closed their hand-offs with
           "user_contacts", "user_presence", "notifications", "handoff_closures")
BY_DECISION = ("candidates", "facts", "rules_fired", "traces", "decision_replies")
# What learning kept of the user's: their outcomes, votes and shadow cases (rules they helped create keep only
# counts and conversation ids, which lead nowhere once the conversations are deleted). Reported together.
LEARNING_BY_USER = ("remedy_outcomes", "resolution_votes", "shadow_cases")
FORGOTTEN = "forgotten"  # who asked for an action, once the user who asked has had their history deleted


class Privacy:
    """Deletes a user's history across the store."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    def forget(self, user_id: str) -> dict[str, int]:
        """Delete everything of the user's, in one transaction; returns rows deleted (or, for `remediations`,
        made anonymous) per table, with `learning_votes` for the learning tables together."""
        counts = {table: self._count(table, "user_id = ?", user_id) for table in BY_USER}
        decisions = "decision_id IN (SELECT id FROM decisions WHERE user_id = ?)"
        counts |= {table: self._count(table, decisions, user_id) for table in BY_DECISION}
        decided = "escalation_id IN (SELECT id FROM escalations WHERE user_id = ?)"
        counts["escalation_decisions"] = self._count("escalation_decisions", decided, user_id)
        counts["escalation_events"] = self._count("escalation_events", decided, user_id)
        # Rows found through the user's decisions and escalations go before those.
        statements: list[Statement] = [(f"DELETE FROM {t} WHERE {decisions}", (user_id,)) for t in BY_DECISION]
        statements += [(f"DELETE FROM {t} WHERE {decided}", (user_id,))
                       for t in ("escalation_decisions", "escalation_events")]
        # Rows from before learning kept user ids are found through the user's conversations.
        theirs = "user_id = ? OR conversation_id IN (SELECT id FROM conversations WHERE user_id = ?)"
        counts["learning_votes"] = sum(self._count(table, theirs, user_id, user_id) for table in LEARNING_BY_USER)
        statements += [(f"DELETE FROM {t} WHERE {theirs}", (user_id, user_id)) for t in LEARNING_BY_USER]
        # The infrastructure's audit trail keeps what was done (cooldowns and the breaker read it), not who
        # asked: the user's conversations and name are replaced by a mark that points at nobody.
        mine = "requester IN (SELECT 'conversation:' || id FROM conversations WHERE user_id = ?) OR subject = ?"
        counts["remediations"] = int(self.db.execute(
            f"SELECT count(*) FROM remediations WHERE {mine}", (user_id, user_id))[0][0])
        statements += [
            ("UPDATE remediations SET subject = ? WHERE subject = ?", (FORGOTTEN, user_id)),
            ("UPDATE remediations SET requester = ? WHERE requester IN "
             "(SELECT 'conversation:' || id FROM conversations WHERE user_id = ?)",
             (f"conversation:{FORGOTTEN}", user_id)),
        ]
        statements += [(f"DELETE FROM {t} WHERE user_id = ?", (user_id,)) for t in BY_USER]
        self.db.transaction(statements)
        return counts

    def _count(self, table: str, where: str, *params: str) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0])
