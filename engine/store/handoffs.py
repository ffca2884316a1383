"""Problems handed to engineering (`handoffs`), as engineers list and close them. The chat's decisions and the
actuator write them (engine/store/decisions.py, healing.py); an engineer closes one with a note for the user
(engine/desk/handoffs.py): its status moves behind a guard, so it is closed once, and `handoff_closures` keeps who,
when and the note."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.store.database import DuckDBStore, Guard, Statement

OPEN = "open"
CLOSED_PREFIX = "closed by "  # a closed hand-off's status is "closed by NAME", as `firstline handoff close` writes

SELECT = ("SELECT h.id, h.decision_id, h.conversation_id, h.user_id, h.team, h.summary, h.diagnostics, h.status, "
          "h.created_at, x.closed_at, x.note, d.playbook FROM handoffs h LEFT JOIN decisions d ON d.id = h.decision_id "
          "LEFT JOIN handoff_closures x ON x.handoff_id = h.id")


@dataclass(frozen=True)
class HandoffRow:
    id: str
    decision_id: str
    conversation_id: str  # empty for the actuator's (no conversation)
    user_id: str  # the chat user, or `monitor`
    team: str
    summary: str
    diagnostics: dict[str, Any]
    status: str  # `open`, or `closed by NAME`
    created_at: float
    closed_at: float | None
    note: str | None  # what the engineer told the user when closing it
    playbook: str | None  # the playbook of the conversation's problem; None for the actuator's

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


def _row(row: Sequence[Any]) -> HandoffRow:
    (handoff_id, decision_id, conversation_id, user_id, team, summary, diagnostics, status, created_at, closed_at,
     note, playbook) = row
    return HandoffRow(handoff_id, decision_id, conversation_id, user_id, team, summary,
                      json.loads(diagnostics or "{}"), status, created_at, closed_at, note, playbook)


class Handoffs:
    """The hand-offs repository on the DuckDB database."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    def get(self, handoff_id: str) -> HandoffRow | None:
        rows = self.db.execute(f"{SELECT} WHERE h.id = ?", (handoff_id,))
        return _row(rows[0]) if rows else None

    def find(self, closed: bool | None = False, limit: int = 500) -> list[HandoffRow]:
        """Open hand-offs (closed=False) oldest first, closed ones (True) newest first, or all (None) oldest first."""
        if closed is None:
            rows = self.db.execute(f"{SELECT} ORDER BY h.created_at, h.id LIMIT ?", (limit,))
        elif closed:
            rows = self.db.execute(f"{SELECT} WHERE h.status <> ? ORDER BY coalesce(x.closed_at, h.created_at) DESC, "
                                   "h.id LIMIT ?", (OPEN, limit))
        else:
            rows = self.db.execute(f"{SELECT} WHERE h.status = ? ORDER BY h.created_at, h.id LIMIT ?", (OPEN, limit))
        return [_row(row) for row in rows]

    @staticmethod
    def close_guard(handoff_id: str, engineer: str, message: str) -> Guard:
        """Close the hand-off as `engineer`, only if it is still open: of two engineers closing it at once, the
        second is refused whole with `message`."""
        return ("UPDATE handoffs SET status = ? WHERE id = ? AND status = ? RETURNING id",
                (CLOSED_PREFIX + engineer, handoff_id, OPEN), message)

    @staticmethod
    def closure_sql(row: HandoffRow, engineer: str, note: str, now: float) -> Statement:
        """Who closed the hand-off, when, and the note its user was told; for the closing transaction."""
        return ("INSERT INTO handoff_closures (handoff_id, user_id, closed_by, note, closed_at) VALUES (?, ?, ?, ?, ?)",
                (row.id, row.user_id, engineer, note, now))
