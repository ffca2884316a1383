"""What learning keeps: remedy outcomes (one per conversation), resolution votes, every version of every
learned rule, and shadow cases. The lifecycle that reads and writes them is `engine.learning.ledger`.

Writes go through the database's transactions like every other; the learning ledger serialises its own
read-decide-write steps. Forgetting a user's rows is `engine.store.privacy`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from engine.store.database import DuckDBStore

# Observed successes and failures of a remedy; a success shared between remedies counts its share.
BETA_SUMS = ("coalesce(sum(weight) FILTER (WHERE succeeded), 0), "
             "coalesce(sum(weight) FILTER (WHERE NOT succeeded), 0)")
# A rule's shadow record counts each user once, by their first case: one user alone cannot promote a rule.
SHADOW_RECORD_SQL = """
SELECT count(*), count(*) FILTER (WHERE agreed) FROM (
    SELECT DISTINCT ON (coalesce(user_id, conversation_id)) agreed FROM shadow_cases WHERE name = ?
    ORDER BY coalesce(user_id, conversation_id), at_s)
"""
LATEST_RULES_SQL = """
SELECT name, version, status, body, provenance, reason, actor, at_s FROM (
    SELECT *, json_extract_string(provenance, '$.fix.playbook') AS playbook,
           coalesce(nullif(json_extract_string(provenance, '$.fix.matched'), ''),
                    json_extract_string(provenance, '$.fix.playbook')) AS route
    FROM learned_rules QUALIFY version = max(version) OVER (PARTITION BY name))
WHERE (? IS NULL OR status = ?) AND (? IS NULL OR playbook = ?) AND (? IS NULL OR route = ?)
ORDER BY name
"""
# Outcomes count under the playbook the conversation was on when the rule fired.
LIVE_RECORDS_SQL = """
SELECT x.name, count(*) FILTER (WHERE o.succeeded), count(o.succeeded)
FROM (SELECT unnest(?::VARCHAR[]) AS name, unnest(?::VARCHAR[]) AS playbook, unnest(?::VARCHAR[]) AS action,
             unnest(?::VARCHAR[]) AS target) x
LEFT JOIN (SELECT DISTINCT r.rule, d.conversation_id FROM rules_fired r JOIN decisions d ON d.id = r.decision_id
           WHERE r.rule IN (SELECT unnest(?::VARCHAR[]))) f ON f.rule = x.name
LEFT JOIN remedy_outcomes o ON o.conversation_id = f.conversation_id AND o.playbook = x.playbook
     AND o.action = x.action AND o.target = x.target
GROUP BY x.name
"""
RULE_COLUMNS = "name, version, status, body, provenance, reason, actor, at_s"
# (name, version, status, body, provenance, reason, actor, at_s) with body and provenance decoded
RuleRow = tuple[str, int, str, dict[str, Any], dict[str, Any], str, str, float]


def _rule(row: Sequence[Any]) -> RuleRow:
    name, version, status, body, provenance, reason, actor, at = row
    return (name, int(version), status, json.loads(body), json.loads(provenance), reason, actor, float(at))


class LearningRecords:
    """The learning repository on the DuckDB database."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    # -- remedy outcomes ----------------------------------------------------------------------------

    def add_outcome(self, playbook: str, action: str, target: str, conversation_id: str, user_id: str,
                    succeeded: bool, at: float, weight: float) -> bool:
        """Store one outcome of a remedy in a conversation; False when that conversation already had one."""
        (inserted,) = self.db.transaction([(
            "INSERT INTO remedy_outcomes (playbook, action, target, conversation_id, user_id, succeeded, at_s, "
            "weight) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
            (playbook, action, target, conversation_id, user_id, succeeded, at, weight))])
        return bool(inserted)

    def outcome_sums(self, playbook: str, action: str, target: str) -> tuple[float, float]:
        """(successes, failures) of one remedy, shared successes counting their share."""
        (successes, failures), = self.db.execute(
            f"SELECT {BETA_SUMS} FROM remedy_outcomes WHERE playbook = ? AND action = ? AND target = ?",
            (playbook, action, target))
        return float(successes), float(failures)

    def all_outcome_sums(self) -> dict[tuple[str, str, str], tuple[float, float]]:
        """`outcome_sums` of every (playbook, action, target) with outcomes."""
        rows = self.db.execute(f"SELECT playbook, action, target, {BETA_SUMS} FROM remedy_outcomes GROUP BY ALL")
        return {(p, a, t): (float(s), float(f)) for p, a, t, s, f in rows}

    def outcome_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM remedy_outcomes")[0][0])

    def conversation_outcomes(self, conversation_id: str) -> dict[tuple[str, str, str], bool]:
        rows = self.db.execute("SELECT playbook, action, target, succeeded FROM remedy_outcomes "
                               "WHERE conversation_id = ?", (conversation_id,))
        return {(playbook, action, target): bool(ok) for playbook, action, target, ok in rows}

    # -- votes --------------------------------------------------------------------------------------

    def votes_since(self, user_id: str, since: float) -> int:
        (count,), = self.db.execute("SELECT count(*) FROM resolution_votes WHERE user_id = ? AND at_s >= ?",
                                    (user_id, since))
        return int(count)

    def add_vote(self, fix_key: str, conversation_id: str, user_id: str, fix: dict[str, str], at: float) -> None:
        """One conversation's vote for a fix (`fix` has playbook, service, metric, action, target); a repeat
        changes nothing."""
        self.db.transaction([(
            "INSERT INTO resolution_votes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (fix_key, conversation_id, user_id, fix["playbook"], fix["service"], fix["metric"], fix["action"],
             fix["target"], at))])

    def voters(self, fix_key: str) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT DISTINCT user_id FROM resolution_votes WHERE fix_key = ? ORDER BY user_id", (fix_key,))]

    def vote_conversations(self, fix_key: str) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT conversation_id FROM resolution_votes WHERE fix_key = ? ORDER BY at_s", (fix_key,))]

    # -- learned rules ------------------------------------------------------------------------------

    def add_rule_version(self, row: RuleRow) -> None:
        name, version, status, body, provenance, reason, actor, at = row
        self.db.transaction([(f"INSERT INTO learned_rules ({RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (name, version, status, json.dumps(body), json.dumps(provenance), reason, actor, at))])

    def rule_versions(self, name: str) -> list[RuleRow]:
        return [_rule(row) for row in self.db.execute(
            f"SELECT {RULE_COLUMNS} FROM learned_rules WHERE name = ? ORDER BY version", (name,))]

    def latest_rules(self, status: str | None, playbook: str | None, route: str | None) -> list[RuleRow]:
        """The latest version of every rule, filtered by status, the fix's playbook and the route it applies to."""
        return [_rule(row) for row in self.db.execute(
            LATEST_RULES_SQL, (status, status, playbook, playbook, route, route))]

    def fire_counts(self, names: Sequence[str] | None) -> dict[str, int]:
        """How often each of `names` (None: every learned rule) fired in a decision."""
        if names is not None:
            rows = self.db.execute("SELECT rule, count(*) FROM rules_fired WHERE rule IN "
                                   "(SELECT unnest(?::VARCHAR[])) GROUP BY rule", (list(names),))
        else:
            rows = self.db.execute("SELECT rule, count(*) FROM rules_fired WHERE rule IN "
                                   "(SELECT DISTINCT name FROM learned_rules) GROUP BY rule")
        return {name: int(count) for name, count in rows}

    def learned_fired_in(self, conversation_id: str) -> bool:
        """Did any learned rule fire in a decision of this conversation?"""
        (count,), = self.db.execute(
            "SELECT count(*) FROM rules_fired r JOIN decisions d ON d.id = r.decision_id "
            "WHERE d.conversation_id = ? AND r.rule IN (SELECT name FROM learned_rules)", (conversation_id,))
        return int(count) > 0

    def live_records(self, names: Sequence[str], routes: Sequence[str], actions: Sequence[str],
                     targets: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(successes, tries) of each rule's fix (route, action, target) in the conversations where it fired."""
        rows = self.db.execute(LIVE_RECORDS_SQL, (list(names), list(routes), list(actions), list(targets),
                                                  list(names)))
        return {name: (int(successes), int(tries)) for name, successes, tries in rows}

    # -- shadow cases -------------------------------------------------------------------------------

    def add_shadow_case(self, name: str, conversation_id: str, agreed: bool, at: float, user_id: str | None) -> None:
        self.db.transaction([("INSERT INTO shadow_cases (name, conversation_id, agreed, at_s, user_id) "
                              "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                              (name, conversation_id, agreed, at, user_id))])

    def shadow_record(self, name: str) -> tuple[int, int]:
        """(agreeing, all) shadow cases, one per user."""
        (cases, agreeing), = self.db.execute(SHADOW_RECORD_SQL, (name,))
        return int(agreeing), int(cases)

    def shadow_conversations(self, name: str) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT conversation_id FROM shadow_cases WHERE name = ? ORDER BY at_s DESC", (name,))]

    # -- hand-offs closed with a fix ----------------------------------------------------------------

    def handoff(self, handoff_id: str) -> tuple[str, str, str | None] | None:
        """(status, conversation_id, playbook) of a hand-off, or None."""
        rows = self.db.execute(
            "SELECT h.status, h.conversation_id, d.playbook FROM handoffs h JOIN decisions d ON d.id = h.decision_id "
            "WHERE h.id = ?", (handoff_id,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def close_handoff(self, handoff_id: str, status: str) -> None:
        self.db.transaction([("UPDATE handoffs SET status = ? WHERE id = ?", (status, handoff_id))])
