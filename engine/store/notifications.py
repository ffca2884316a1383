"""The outbox of "a person answered you" notices (`notifications`), how to reach a user (`user_contacts`: the
e-mail address the host app vouched for) and when they last had a conversation on screen (`user_presence`).

A notice is written by `notice_sql` in the same transaction as what causes it (a decision, a decider's question,
an expiry, a hand-off closed), so a notice exists exactly when its cause was committed. The sender
(engine/notify/sender.py) then moves each one once, behind a guard on its status:

    pending ──claim──► sending ──► sent
       │                  └──────► pending again (a transient failure, retried later) or failed
       └──► seen (the user read it in the chat) · skipped (no address, or e-mail is off)

A row is claimed (pending -> sending) before anything is sent, so two senders never send the same notice; a row
left `sending` by a sender that stopped mid-send is marked failed, never sent again (it may have arrived).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.store.database import DuckDBStore, Statement


class NoticeKind(StrEnum):
    """What a person did that the user should hear about."""

    APPROVED = "approved"  # a decider approved their business request
    REJECTED = "rejected"  # ... rejected it
    ASKED = "asked"  # a decider asked them a question (the request waits for their answer)
    EXPIRED = "expired"  # nobody decided in time: closed without approval
    EXPIRED_UNANSWERED = "expired_unanswered"  # the decider's question went unanswered: closed
    HANDOFF_CLOSED = "handoff_closed"  # engineering closed the problem handed to them, with a note


class NoticeStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SEEN = "seen"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Notice:
    """A notice as its cause writes it: `text` is what the user was told in their conversation (for a question,
    the decider's question)."""

    id: str
    user_id: str
    conversation_id: str
    kind: NoticeKind
    source_id: str  # the escalation or hand-off it is about
    text: str
    created_at: float


@dataclass(frozen=True)
class NoticeRow:
    """A notice with where it stands."""

    notice: Notice
    status: NoticeStatus
    attempts: int
    next_at: float
    sent_at: float | None
    last_error: str | None
    updated_at: float

    @property
    def id(self) -> str:
        return self.notice.id


COLUMNS = ("id, user_id, conversation_id, kind, source_id, text, created_at, status, attempts, next_at, sent_at, "
           "last_error, updated_at")


def _row(row: Sequence[Any]) -> NoticeRow:
    (notice_id, user_id, conversation_id, kind, source_id, text, created_at, status, attempts, next_at, sent_at,
     last_error, updated_at) = row
    return NoticeRow(Notice(notice_id, user_id, conversation_id, NoticeKind(kind), source_id, text, created_at),
                     NoticeStatus(status), int(attempts), next_at, sent_at, last_error, updated_at)


class Notifications:
    """The outbox, the addresses and the presence on the DuckDB database."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    # -- writing a notice (inside its cause's transaction) -------------------------------------------

    @staticmethod
    def notice_sql(notice: Notice) -> Statement:
        """The statement that queues `notice` (pending, due at once); for the caller's transaction."""
        n = notice
        return ("INSERT INTO notifications (id, user_id, conversation_id, kind, source_id, text, created_at, status, "
                "attempts, next_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (n.id, n.user_id, n.conversation_id, n.kind.value, n.source_id, n.text, n.created_at,
                 NoticeStatus.PENDING.value, 0, n.created_at, n.created_at))

    # -- the sender's moves -------------------------------------------------------------------------

    def due(self, now: float, limit: int) -> list[NoticeRow]:
        """Pending notices whose time has come, oldest first."""
        rows = self.db.execute(f"SELECT {COLUMNS} FROM notifications WHERE status = ? AND next_at <= ? "
                               "ORDER BY created_at, id LIMIT ?", (NoticeStatus.PENDING.value, now, limit))
        return [_row(row) for row in rows]

    def get(self, notice_id: str) -> NoticeRow | None:
        rows = self.db.execute(f"SELECT {COLUMNS} FROM notifications WHERE id = ?", (notice_id,))
        return _row(rows[0]) if rows else None

    def claim(self, notice_id: str, claimer: str, now: float) -> bool:
        """pending -> sending for `claimer`, counting the attempt; False if another sender (or the user's history
        being deleted) got there first. Only the claimer may then record how the attempt went."""
        return self._move("status = ?, attempts = attempts + 1, claimed_by = ?, claimed_at = ?",
                          (NoticeStatus.SENDING.value, claimer, now), notice_id, NoticeStatus.PENDING, now)

    def sent(self, notice_id: str, claimer: str, now: float) -> bool:
        return self._move("status = ?, sent_at = ?, last_error = NULL", (NoticeStatus.SENT.value, now), notice_id,
                          NoticeStatus.SENDING, now, claimer)

    def attempt_failed(self, notice_id: str, claimer: str, now: float, error: str, retry_at: float | None) -> bool:
        """The attempt failed with `error`: pending again from `retry_at`, or failed for good when None."""
        if retry_at is None:
            return self._move("status = ?, last_error = ?", (NoticeStatus.FAILED.value, error), notice_id,
                              NoticeStatus.SENDING, now, claimer)
        return self._move("status = ?, next_at = ?, last_error = ?", (NoticeStatus.PENDING.value, retry_at, error),
                          notice_id, NoticeStatus.SENDING, now, claimer)

    def settle(self, notice_id: str, status: NoticeStatus, now: float, reason: str | None = None) -> bool:
        """A pending notice that needs no e-mail: `seen` (the user read it in the chat) or `skipped` (why in
        `reason`)."""
        return self._move("status = ?, last_error = ?", (status.value, reason), notice_id, NoticeStatus.PENDING, now)

    def postpone(self, notice_id: str, until: float, now: float) -> bool:
        """A pending notice checked again at `until` (the user is still on the page)."""
        return self._move("next_at = ?", (until,), notice_id, NoticeStatus.PENDING, now)

    def abandon_stale(self, claimed_before: float, now: float, error: str) -> list[str]:
        """Notices left `sending` by a sender that stopped (claimed before `claimed_before`): failed, with `error`,
        and never sent again, since the e-mail may have gone. Their ids."""
        rows = self.db.transaction([(
            "UPDATE notifications SET status = ?, last_error = ?, updated_at = ? WHERE status = ? AND claimed_at < ? "
            "RETURNING id", (NoticeStatus.FAILED.value, error, now, NoticeStatus.SENDING.value, claimed_before))])
        return [str(row[0]) for row in rows[0]]

    def requeue_failed(self, now: float, notice_id: str | None = None) -> list[str]:
        """Failed notices (or the one named) pending again from now, their attempts counted afresh. Their ids."""
        where, params = "status = ?", [NoticeStatus.FAILED.value]
        if notice_id is not None:
            where, params = where + " AND id = ?", [*params, notice_id]
        rows = self.db.transaction([(
            f"UPDATE notifications SET status = ?, attempts = 0, next_at = ?, updated_at = ? WHERE {where} "
            "RETURNING id", (NoticeStatus.PENDING.value, now, now, *params))])
        return [str(row[0]) for row in rows[0]]

    def _move(self, assignments: str, values: Sequence[Any], notice_id: str, expected: NoticeStatus, now: float,
              claimer: str | None = None) -> bool:
        where, params = "id = ? AND status = ?", [notice_id, expected.value]
        if claimer is not None:
            where, params = where + " AND claimed_by = ?", [*params, claimer]
        rows = self.db.transaction([(f"UPDATE notifications SET {assignments}, updated_at = ? WHERE {where} "
                                     "RETURNING id", (*values, now, *params))])
        return bool(rows[0])

    # -- reading the outbox -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Notices per status (every status named, 0 when none)."""
        found = dict(self.db.execute("SELECT status, count(*) FROM notifications GROUP BY status"))
        return {status.value: int(found.get(status.value, 0)) for status in NoticeStatus}

    def listing(self, statuses: Sequence[NoticeStatus] | None = None, limit: int = 50) -> list[NoticeRow]:
        """The latest notices (with one of `statuses`, or any), newest first."""
        where, params = "", []
        if statuses is not None:
            where = "WHERE status IN (SELECT unnest(?))"
            params.append([s.value for s in statuses])
        rows = self.db.execute(f"SELECT {COLUMNS} FROM notifications {where} ORDER BY updated_at DESC, id LIMIT ?",
                               (*params, limit))
        return [_row(row) for row in rows]

    # -- addresses ----------------------------------------------------------------------------------

    def set_email(self, user_id: str, email: str, now: float) -> None:
        """The address the host app vouched for `user_id` (replacing an earlier one)."""
        self.db.transaction([("INSERT OR REPLACE INTO user_contacts (user_id, email, verified_at) VALUES (?, ?, ?)",
                              (user_id, email, now))])

    def email(self, user_id: str) -> str | None:
        rows = self.db.execute("SELECT email FROM user_contacts WHERE user_id = ?", (user_id,))
        return str(rows[0][0]) if rows else None

    # -- presence -----------------------------------------------------------------------------------

    def mark_seen(self, user_id: str, conversation_id: str, now: float) -> None:
        """The user's page read `conversation_id` ('' for their list of conversations) at `now`."""
        self.db.transaction([("INSERT INTO user_presence (user_id, conversation_id, seen_at) VALUES (?, ?, ?) "
                              "ON CONFLICT (user_id, conversation_id) DO UPDATE SET seen_at = "
                              "greatest(user_presence.seen_at, excluded.seen_at)", (user_id, conversation_id, now))])

    def last_active(self, user_id: str) -> float | None:
        """When the user was last on the chat: their latest read of any conversation or of their list, or their
        latest message; None if never."""
        (found,), = self.db.execute(
            "SELECT greatest(coalesce((SELECT max(seen_at) FROM user_presence WHERE user_id = ?), -1), "
            "coalesce((SELECT max(created_at) FROM messages WHERE user_id = ? AND role = 'user'), -1))",
            (user_id, user_id))
        return None if found is None or found < 0 else float(found)

    def seen_since(self, user_id: str, conversation_id: str, since: float) -> bool:
        """Whether the user read `conversation_id`, or wrote in it, after `since`."""
        (found,), = self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM user_presence WHERE user_id = ? AND conversation_id = ? AND seen_at > ?) "
            "OR EXISTS (SELECT 1 FROM messages WHERE user_id = ? AND conversation_id = ? AND role = 'user' "
            "AND created_at > ?)", (user_id, conversation_id, since, user_id, conversation_id, since))
        return bool(found)

    def unseen(self, user_id: str) -> dict[str, float]:
        """The user's conversations holding a person's answer they have not read since (neither opened the
        conversation nor written in it afterwards): {conversation id: when the latest such answer came}."""
        rows = self.db.execute(
            "SELECT n.conversation_id, max(n.created_at) FROM notifications n WHERE n.user_id = ? "
            "AND n.conversation_id <> '' "
            "AND n.created_at >= coalesce((SELECT max(p.seen_at) FROM user_presence p WHERE p.user_id = n.user_id "
            "AND p.conversation_id = n.conversation_id), -1) "
            "AND n.created_at >= coalesce((SELECT max(m.created_at) FROM messages m WHERE m.user_id = n.user_id "
            "AND m.conversation_id = n.conversation_id AND m.role = 'user'), -1) "
            "GROUP BY n.conversation_id", (user_id,))
        return {str(conversation): float(at) for conversation, at in rows}
