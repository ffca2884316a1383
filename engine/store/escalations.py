"""Business escalations waiting for a person, and the decisions people recorded on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.store.database import DuckDBStore

COLUMNS = "id, decision_id, conversation_id, user_id, category, summary, status, created_at"


class EscalationStatus(StrEnum):
    OPEN = "open"  # waiting for a person
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True)
class EscalationRow:
    id: str
    decision_id: str
    conversation_id: str
    user_id: str
    category: str
    summary: str
    status: EscalationStatus
    created_at: float


class Escalations:
    """The escalations repository on the DuckDB database: `get` one, `find` by status (None: all)."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    # -- escalations --------------------------------------------------------------------------------

    def get(self, escalation_id: str) -> EscalationRow | None:
        """One escalation, or None (unknown, or deleted with its user's history)."""
        rows = self.db.execute(f"SELECT {COLUMNS} FROM escalations WHERE id = ?", (escalation_id,))
        return _row(rows[0]) if rows else None

    def find(self, status: str | None = None) -> list[EscalationRow]:
        """Escalations with `status` (None: all), oldest first."""
        if status is None:
            rows = self.db.execute(f"SELECT {COLUMNS} FROM escalations ORDER BY created_at, id")
        else:
            rows = self.db.execute(f"SELECT {COLUMNS} FROM escalations WHERE status = ? ORDER BY created_at, id",
                                      (status,))
        return [_row(row) for row in rows]

    @staticmethod
    def decision_sql(escalation_id: str, decided_by: str, outcome: EscalationStatus, note: str,
                     now: float) -> list[tuple[str, Sequence[Any]]]:
        return [("UPDATE escalations SET status = ? WHERE id = ?", (outcome, escalation_id)),
                ("INSERT INTO escalation_decisions VALUES (?, ?, ?, ?, ?)",
                 (escalation_id, decided_by, outcome, note, now))]


def _row(row: Sequence[Any]) -> EscalationRow:
    escalation_id, decision_id, conversation_id, user_id, category, summary, status, created_at = row
    return EscalationRow(escalation_id, decision_id, conversation_id, user_id, category, summary,
                         EscalationStatus(status), created_at)
