"""Business escalations waiting for a person, the decisions people recorded on them, and the append-only record
of everything that happened to each (created, viewed, recommended, asked, answered, approved, decided,
overruled, expired), which analysts read as the `escalation_events` table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.store.database import DuckDBStore, Guard, Statement

# An escalation with the user's message that raised it and the playbook it was matched to (through its decision).
# A request named aside in the same message has its own playbook and words, which its `created` event keeps
# (asides recorded before that have no playbook).
SELECT = ("SELECT e.id, e.decision_id, e.conversation_id, e.user_id, e.category, e.summary, e.status, e.created_at, "
          "e.due_at, e.window_s, e.remaining_s, "
          "CASE WHEN coalesce(CAST(json_extract(c.detail, '$.aside') AS BOOLEAN), false) "
          "THEN coalesce(json_extract_string(c.detail, '$.playbook'), '') ELSE coalesce(d.playbook, '') END, "
          "coalesce(json_extract_string(c.detail, '$.request'), m.text, '') FROM escalations e "
          "LEFT JOIN decisions d ON d.id = e.decision_id LEFT JOIN messages m ON m.id = d.message_id "
          "LEFT JOIN escalation_events c ON c.escalation_id = e.id AND c.kind = 'created'")


class EscalationStatus(StrEnum):
    OPEN = "open"  # waiting for a person
    ASKED = "asked"  # a person asked the user for more information; waiting for their answer
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # nobody decided in time: closed, never approved (deny by default)
    WITHDRAWN = "withdrawn"  # the user said it was not what they asked ("no, it's the calendar sync")


UNDECIDED = (EscalationStatus.OPEN, EscalationStatus.ASKED)
DECIDED = (EscalationStatus.APPROVED, EscalationStatus.REJECTED)
# What a status filter may name: a group, or one status; "declined" is the word the first API used for rejected.
STATUS_FILTERS: dict[str, tuple[EscalationStatus, ...]] = {
    "open": UNDECIDED, "decided": DECIDED, "expired": (EscalationStatus.EXPIRED,), "all": tuple(EscalationStatus),
    "asked": (EscalationStatus.ASKED,), "approved": (EscalationStatus.APPROVED,),
    "rejected": (EscalationStatus.REJECTED,), "declined": (EscalationStatus.REJECTED,),
    "withdrawn": (EscalationStatus.WITHDRAWN,),
}


class EventKind(StrEnum):
    CREATED = "created"
    VIEWED = "viewed"
    RECOMMENDED = "recommended"
    ASKED = "asked"  # a decider's question posted to the user
    ANSWERED = "answered"  # the user's answer to it
    APPROVAL = "approval"  # one decider's approval, counted toward the approvers required
    DECIDED = "decided"  # the request closed as approved or rejected
    OVERRULED = "overruled"  # decided against the recommendation or the precedent majority, with the reason
    EXPIRED = "expired"
    USER_REPLY = "user_reply"  # whether the user said the answer settled their request
    WITHDRAWN = "withdrawn"  # the user took the request back, with their words
    NOT_BUSINESS = "not_business"  # the decider says it was no business decision (a false escalation, docs/metrics.md)


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
    due_at: float | None = None  # when it expires if nobody decides (epoch s); None for requests raised before
    window_s: float | None = None  # the time to answer it was given when raised, in seconds
    remaining_s: float | None = None  # while asked: the decider's time left when they asked (their clock paused)
    playbook: str = ""  # the business playbook the request was matched to
    request: str = ""  # the user's message that raised it, in their words


@dataclass(frozen=True)
class EventRow:
    id: str
    escalation_id: str
    at_s: float
    actor: str
    kind: EventKind
    outcome: str = ""
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Precedent:
    """A past decided request of a category, for the desk's "similar cases"."""

    id: str
    request: str
    playbook: str
    outcome: str
    reason: str
    decided_by: str
    decided_at: float


@dataclass(frozen=True)
class AccountPrice:
    user_id: str
    plan: str
    seats: int
    monthly_price: float


class Escalations:
    """The escalations repository on the DuckDB database."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    # -- escalations --------------------------------------------------------------------------------

    def get(self, escalation_id: str) -> EscalationRow | None:
        """One escalation, or None (unknown, or deleted with its user's history)."""
        rows = self.db.execute(f"{SELECT} WHERE e.id = ?", (escalation_id,))
        return _row(rows[0]) if rows else None

    def find(self, statuses: Sequence[str] | None = None, categories: Sequence[str] | None = None
             ) -> list[EscalationRow]:
        """Escalations with one of `statuses` in one of `categories` (None: any), oldest first."""
        where, params = [], []
        for column, values in (("e.status", statuses), ("e.category", categories)):
            if values is not None:
                where.append(f"{column} IN (SELECT unnest(?))")
                params.append([str(v) for v in values])
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.execute(f"{SELECT}{clause} ORDER BY e.created_at, e.id", params)
        return [_row(row) for row in rows]

    def precedents(self, category: str, exclude: str, limit: int) -> list[Precedent]:
        """The latest `limit` decided requests of `category` (not `exclude`), newest first, with who decided,
        when and why."""
        rows = self.db.execute(
            "SELECT e.id, coalesce(m.text, e.summary), coalesce(d.playbook, ''), x.outcome, x.note, x.decided_by, "
            "x.created_at FROM escalations e JOIN escalation_decisions x ON x.escalation_id = e.id "
            "LEFT JOIN decisions d ON d.id = e.decision_id LEFT JOIN messages m ON m.id = d.message_id "
            "WHERE e.category = ? AND e.id <> ? AND e.status IN ('approved', 'rejected') "
            "ORDER BY x.created_at DESC LIMIT ?", (category, exclude, limit))
        return [Precedent(*row) for row in rows]

    def priced_accounts(self, exclude_user: str) -> list[AccountPrice]:
        """Every other account whose monthly price is recorded (for "what similar accounts pay")."""
        rows = self.db.execute("SELECT user_id, plan, seats, monthly_price FROM accounts "
                               "WHERE monthly_price IS NOT NULL AND user_id <> ?", (exclude_user,))
        return [AccountPrice(*row) for row in rows]

    def total_seats(self) -> int:
        """Seats over every recorded account: the load the platform serves, in seats."""
        return int(self.db.execute("SELECT coalesce(sum(seats), 0) FROM accounts")[0][0])

    # -- the record ---------------------------------------------------------------------------------

    def events(self, escalation_id: str) -> list[EventRow]:
        """The escalation's record, oldest first."""
        rows = self.db.execute("SELECT id, escalation_id, at_s, actor, kind, outcome, reason, detail "
                               "FROM escalation_events WHERE escalation_id = ? ORDER BY at_s, rowid", (escalation_id,))
        return [EventRow(row[0], row[1], row[2], row[3], EventKind(row[4]), row[5], row[6], json.loads(row[7] or "{}"))
                for row in rows]

    @staticmethod
    def event_sql(event: EventRow) -> Statement:
        return ("INSERT INTO escalation_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event.id, event.escalation_id, event.at_s, event.actor, event.kind.value, event.outcome,
                 event.reason, json.dumps(event.detail, default=str)))

    def record(self, events: Sequence[EventRow]) -> None:
        """Append events on their own (a view, a recommendation), in one transaction."""
        if events:
            self.db.transaction([self.event_sql(e) for e in events])

    # -- changes ------------------------------------------------------------------------------------

    @staticmethod
    def status_guard(escalation_id: str, expected: Sequence[EscalationStatus], status: EscalationStatus,
                     message: str) -> Guard:
        """Move the escalation to `status` only if it is still in one of `expected`: of two deciders (or a
        decider and the expiry) acting at once, the second is refused whole with `message`."""
        marks = ", ".join("?" for _ in expected)
        return (f"UPDATE escalations SET status = ? WHERE id = ? AND status IN ({marks}) RETURNING id",
                (status.value, escalation_id, *(s.value for s in expected)), message)

    @staticmethod
    def approvals_guard(escalation_id: str, expected: Sequence[EscalationStatus], status: EscalationStatus,
                        approvals: int, message: str) -> Guard:
        """`status_guard`, and only if the request still has the `approvals` distinct approvers the decider saw:
        of two approvals at the same moment, the second is refused rather than both counting as "1 of 2"."""
        marks = ", ".join("?" for _ in expected)
        return (f"UPDATE escalations SET status = ? WHERE id = ? AND status IN ({marks}) AND (SELECT count(DISTINCT "
                "lower(actor)) FROM escalation_events WHERE escalation_id = ? AND kind = 'approval') = ? RETURNING id",
                (status.value, escalation_id, *(s.value for s in expected), escalation_id, approvals), message)

    @staticmethod
    def insert_sql(row: EscalationRow) -> Statement:
        """A new request (status open), with its own deadline."""
        return ("INSERT INTO escalations (id, decision_id, conversation_id, user_id, category, summary, status, "
                "created_at, due_at, window_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.id, row.decision_id, row.conversation_id, row.user_id, row.category, row.summary,
                 row.status.value, row.created_at, row.due_at, row.window_s))

    @staticmethod
    def pause_sql(escalation_id: str, remaining_s: float, answer_by: float) -> Statement:
        """A decider asked the user: the decider's time left is kept, and the request now waits until
        `answer_by` (epoch s) for the user's answer."""
        return ("UPDATE escalations SET remaining_s = ?, due_at = ? WHERE id = ?",
                (max(0.0, remaining_s), answer_by, escalation_id))

    @staticmethod
    def reopen_sql(escalation_id: str, now: float) -> Statement:
        """The user answered a decider's question: the request is back in the open queue (if still asked), with
        the time the decider had left when they asked."""
        return ("UPDATE escalations SET status = ?, due_at = ? + coalesce(remaining_s, 0), remaining_s = NULL "
                "WHERE id = ? AND status = ?",
                (EscalationStatus.OPEN.value, now, escalation_id, EscalationStatus.ASKED.value))

    @staticmethod
    def withdraw_sql(escalation_id: str) -> Statement:
        """The user took the request back: it leaves the deciders' queue, if nobody decided it meanwhile."""
        marks = ", ".join("?" for _ in UNDECIDED)
        return (f"UPDATE escalations SET status = ? WHERE id = ? AND status IN ({marks})",
                (EscalationStatus.WITHDRAWN.value, escalation_id, *(s.value for s in UNDECIDED)))

    def asked_in(self, conversation_id: str) -> EscalationRow | None:
        """The conversation's request whose decider waits for the user's answer, if any (the latest)."""
        rows = self.db.execute(f"{SELECT} WHERE e.conversation_id = ? AND e.status = ? ORDER BY e.created_at DESC "
                               "LIMIT 1", (conversation_id, EscalationStatus.ASKED.value))
        return _row(rows[0]) if rows else None

    @staticmethod
    def decision_sql(escalation_id: str, decided_by: str, outcome: EscalationStatus, note: str,
                     now: float) -> Statement:
        """The final decision's row (the status itself moves through `status_guard`)."""
        return ("INSERT INTO escalation_decisions VALUES (?, ?, ?, ?, ?)",
                (escalation_id, decided_by, outcome.value, note, now))

    def apply(self, statements: list[Statement], guard: Guard | None = None) -> None:
        """Write a desk action's statements (events, messages, state) in one transaction behind `guard`."""
        self.db.transaction(statements, guard)


def _row(row: Sequence[Any]) -> EscalationRow:
    (escalation_id, decision_id, conversation_id, user_id, category, summary, status, created_at, due_at, window_s,
     remaining_s, playbook, text) = row
    return EscalationRow(escalation_id, decision_id, conversation_id, user_id, category, summary,
                         EscalationStatus("rejected" if status == "declined" else status), created_at, due_at,
                         window_s, remaining_s, playbook, text)
