"""Decisions: conversations, messages and everything one answered message decided (matches, facts, rules
fired, actions, escalations, hand-offs, trace), as the chat writes and the rules read them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.taxonomy import Decision
from engine.store.database import DuckDBStore, Guard, Statement
from engine.store.escalations import EscalationRow, Escalations, EscalationStatus, EventKind, EventRow


@dataclass(frozen=True)
class EscalationRequest:
    """A request a person decides: its business category and a one-line summary of what the user asked."""

    category: str
    summary: str
    playbook: str | None = None  # a request named aside: its own playbook (the main one's is the decision's)
    text: str = ""  # a request named aside: its own words in the message


@dataclass(frozen=True)
class HandOff:
    """A problem handed to a team (engineering) with what was tried and seen, for them to pick up."""

    team: str
    summary: str
    diagnostics: dict[str, Any]


@dataclass(frozen=True)
class ActionRow:
    seq: int
    name: str
    target: str
    params: dict[str, Any]
    rule: str | None
    status: str
    detail: str
    started_at: float
    finished_at: float


@dataclass(frozen=True)
class DecisionRecord:
    """One answered message, as written in one transaction."""

    id: str
    message_id: str
    conversation_id: str
    user_id: str
    decision: Decision
    category: str
    playbook: str | None
    band: str
    confidence: float
    ruleset_version: str
    dry_run: bool
    reply: str
    latency_ms: float
    created_at: float
    candidates: Sequence[tuple[str, str, float]] = ()
    facts: Sequence[tuple[str, str, dict[str, Any]]] = ()  # (type, origin, payload)
    rules_fired: Sequence[tuple[str, dict[str, Any]]] = ()
    actions: Sequence[ActionRow] = ()
    escalation: EscalationRequest | None = None
    also_escalated: Sequence[EscalationRequest] = ()  # other requests of the message a person decides
    handoff: HandOff | None = None
    errors: Sequence[str] = field(default_factory=tuple)
    trace: dict[str, Any] | None = None
    escalation_id: str = ""  # the id of `escalation`, when the caller needs it before the row is committed


@dataclass(frozen=True)
class PastAction:
    """A remediation run earlier for a user, as the rules see it."""

    name: str
    target: str
    status: str
    rule: str
    finished_at: float
    conversation_id: str


@dataclass(frozen=True)
class Account:
    """A user's account as the host app recorded it (`firstline account set`): the rules see plan, seats and
    role; the escalation desk also shows the organisation, the tenure (`since`, epoch seconds) and what the
    account pays a month (`monthly_price`, in the tenant's currency; None when not recorded)."""

    plan: str
    seats: int
    role: str
    organisation: str = ""
    since: float | None = None
    monthly_price: float | None = None


@dataclass(frozen=True)
class DecisionSummary:
    """What a reply decided, as the chat shows it under the reply: the decision, the problem, the actions
    (name, target, status) in the order they ran and the rules that fired."""

    decision_id: str
    decision: str
    category: str
    playbook: str | None
    confidence: float
    actions: tuple[tuple[str, str, str], ...]
    rules_fired: tuple[str, ...]


@dataclass(frozen=True)
class TranscriptLine:
    """One message of a conversation as the user reads it back; `decision` when it is the reply that stated a
    decision."""

    role: str
    text: str
    at: float
    decision: DecisionSummary | None


TRANSCRIPT_SQL = (
    "SELECT m.role, m.text, m.created_at, d.id, d.decision, d.category, d.playbook, d.confidence "
    "FROM messages m LEFT JOIN decision_replies r ON r.message_id = m.id "
    "LEFT JOIN decisions d ON d.id = r.decision_id AND d.user_id = m.user_id "
    "WHERE m.conversation_id = ? AND m.user_id = ? ORDER BY m.created_at, m.rowid")  # insertion order in an instant


class EventStore(Protocol):
    """What the chat needs from storage: `Decisions` on DuckDB; a PostgreSQL one answers the same calls."""

    def start_conversation(self, conversation_id: str, user_id: str, channel: str) -> None: ...

    def add_message(self, message_id: str, conversation_id: str, user_id: str, role: str, text: str) -> None: ...

    def conversation_owner(self, conversation_id: str) -> str | None: ...

    def decision_statements(self, record: DecisionRecord,
                            new_id: Callable[[], str]) -> list[Statement]: ...

    def transaction(self, statements: list[Statement],
                    guard: Guard | None = None) -> None: ...

    def user_turns(self, conversation_id: str) -> int: ...

    def past_actions(self, user_id: str, since: float, limit: int) -> list[PastAction]: ...

    def account(self, user_id: str) -> Account | None: ...

    def trace(self, decision_id: str) -> dict[str, Any] | None: ...

    def messages(self, conversation_id: str, user_id: str) -> list[tuple[str, str, float]]: ...

    def transcript(self, conversation_id: str, user_id: str) -> list[TranscriptLine]: ...


class Decisions:
    """The decisions repository on the DuckDB database."""

    def __init__(self, db: DuckDBStore, deadlines_s: Mapping[str, float] | None = None) -> None:
        """`deadlines_s`: each business category's time to answer, in seconds, given to every request raised
        (Settings.deadlines_s); a category without one gets no deadline."""
        self.db = db
        self.clock = db.clock
        self.deadlines_s = dict(deadlines_s or {})

    def transaction(self, statements: list[Statement], guard: Guard | None = None) -> None:
        self.db.transaction(statements, guard)

    def start_conversation(self, conversation_id: str, user_id: str, channel: str) -> None:
        self.db.transaction([("INSERT INTO conversations VALUES (?, ?, ?, ?)",
                      (conversation_id, user_id, channel, self.clock()))])

    def add_message(self, message_id: str, conversation_id: str, user_id: str, role: str, text: str) -> None:
        self.db.transaction([("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                      (message_id, conversation_id, user_id, role, text, self.clock()))])

    def conversation_owner(self, conversation_id: str) -> str | None:
        rows = self.db.execute("SELECT user_id FROM conversations WHERE id = ?", (conversation_id,))
        return rows[0][0] if rows else None

    def decision_statements(self, record: DecisionRecord,
                            new_id: Callable[[], str]) -> list[Statement]:
        """The statements that store a decision with everything about it, for a caller that commits them in
        one transaction with more (the dialogue: with the conversation's new state)."""
        r = record
        statements: list[Statement] = [
            ("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (r.id, r.message_id, r.conversation_id, r.user_id, r.decision, r.category, r.playbook, r.band,
              r.confidence, r.ruleset_version, r.dry_run, r.reply, json.dumps(list(r.errors)), r.latency_ms,
              r.created_at)),
        ]
        statements += [("INSERT INTO candidates VALUES (?, ?, ?, ?, ?)", (r.id, rank, pid, category, score))
                       for rank, (pid, category, score) in enumerate(r.candidates, 1)]
        statements += [("INSERT INTO facts VALUES (?, ?, ?, ?, ?)", (r.id, seq, kind, origin, json.dumps(payload)))
                       for seq, (kind, origin, payload) in enumerate(r.facts, 1)]
        statements += [("INSERT INTO rules_fired VALUES (?, ?, ?, ?)", (r.id, seq, rule, json.dumps(bindings)))
                       for seq, (rule, bindings) in enumerate(r.rules_fired, 1)]
        statements += [
            ("INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (new_id(), r.id, r.user_id, a.seq, a.name, a.target, json.dumps(a.params), a.rule, a.status, a.detail,
              a.started_at, a.finished_at))
            for a in r.actions
        ]
        # The decision's own escalation first: readers take a decision's escalations in insertion order.
        escalations = [(r.escalation_id or new_id(), r.escalation)] if r.escalation else []
        escalations += [(new_id(), also) for also in r.also_escalated]
        for index, (escalation_id, request) in enumerate(escalations):
            window = self.deadlines_s.get(request.category)
            statements.append(Escalations.insert_sql(EscalationRow(
                escalation_id, r.id, r.conversation_id, r.user_id, request.category, request.summary,
                EscalationStatus.OPEN, r.created_at, None if window is None else r.created_at + window, window)))
            statements.append(Escalations.event_sql(EventRow(
                new_id(), escalation_id, r.created_at, "assistant", EventKind.CREATED,
                # A request named aside in the same message is not the decision's playbook (it has its own summary).
                detail={"playbook": r.playbook if index == 0 else request.playbook, "aside": index > 0,
                        "summary": request.summary, "request": request.text or None,
                        "rules": [x for x, _ in r.rules_fired]})))
        if r.handoff:
            statements.append(("INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (new_id(), r.id, r.conversation_id, r.user_id, r.handoff.team, r.handoff.summary,
                                json.dumps(r.handoff.diagnostics), "open", r.created_at)))
        if r.trace is not None:
            statements.append(("INSERT INTO traces VALUES (?, ?, ?)",
                               (r.id, r.ruleset_version, json.dumps(r.trace, default=str))))
        reply_id = new_id()
        statements.append(("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                           (reply_id, r.conversation_id, r.user_id, "assistant", r.reply, r.created_at)))
        statements.append(("INSERT INTO decision_replies VALUES (?, ?)", (r.id, reply_id)))
        return statements

    def trace(self, decision_id: str) -> dict[str, Any] | None:
        """The stored trace of a decision, with the ids that place it."""
        rows = self.db.execute(
            "SELECT t.trace, d.conversation_id, d.user_id FROM traces t JOIN decisions d ON d.id = t.decision_id "
            "WHERE t.decision_id = ?", (decision_id,))
        if not rows:
            return None
        trace, conversation_id, user_id = rows[0]
        return {**json.loads(trace), "decision_id": decision_id, "conversation_id": conversation_id,
                "user_id": user_id}

    def past_actions(self, user_id: str, since: float, limit: int) -> list[PastAction]:
        """The user's remediations that finished after `since`, newest first. A remedy the user said did not fix
        their problem appears again as failed at the moment they said so (rule `user_says_not_fixed`)."""
        rows = self.db.execute(
            "SELECT name, target, status, rule, finished_at, conversation_id FROM ("
            "SELECT a.name, a.target, a.status, coalesce(a.rule, '') AS rule, a.finished_at, d.conversation_id "
            "FROM actions a JOIN decisions d ON d.id = a.decision_id "
            "WHERE a.user_id = ? AND a.finished_at >= ? AND a.name NOT IN ('handoff', 'escalate') "
            "UNION ALL SELECT v.action, v.target, 'failed', 'user_says_not_fixed', v.said_at, v.conversation_id "
            "FROM fix_verdicts v WHERE v.user_id = ? AND v.said_at >= ? AND v.verdict = 'not_fixed') "
            "ORDER BY finished_at DESC LIMIT ?", (user_id, since, user_id, since, limit))
        return [PastAction(*row) for row in rows]

    def account(self, user_id: str) -> Account | None:
        rows = self.db.execute("SELECT plan, seats, role, coalesce(organisation, ''), since, monthly_price "
                               "FROM accounts WHERE user_id = ?", (user_id,))
        return Account(*rows[0]) if rows else None

    def set_account(self, user_id: str, account: Account) -> None:
        self.db.transaction([("INSERT OR REPLACE INTO accounts (user_id, plan, seats, role, organisation, since, "
                              "monthly_price) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (user_id, account.plan, account.seats, account.role, account.organisation,
                               account.since, account.monthly_price))])

    def user_turns(self, conversation_id: str) -> int:
        """How many messages the user has sent in this conversation, the current one included."""
        rows = self.db.execute("SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'user'",
                            (conversation_id,))
        return int(rows[0][0])

    def messages(self, conversation_id: str, user_id: str) -> list[tuple[str, str, float]]:
        """(role, text, created_at) of one of the user's conversations, oldest first."""
        return [tuple(row) for row in self.db.execute(
            "SELECT role, text, created_at FROM messages WHERE conversation_id = ? AND user_id = ? "
            "ORDER BY created_at, rowid",  # insertion order within one instant
            (conversation_id, user_id),
        )]

    def transcript(self, conversation_id: str, user_id: str) -> list[TranscriptLine]:
        """One of the user's conversations, oldest first, each reply that stated a decision with what it decided
        (the chat page's technical detail, rebuilt after a reload)."""
        rows = self.db.execute(TRANSCRIPT_SQL, (conversation_id, user_id))
        decided = [str(row[3]) for row in rows if row[3] is not None]
        actions: dict[str, list[tuple[str, str, str]]] = {d: [] for d in decided}
        rules: dict[str, list[str]] = {d: [] for d in decided}
        if decided:
            marks = ", ".join("?" for _ in decided)
            for decision_id, name, target, status in self.db.execute(
                    f"SELECT decision_id, name, target, status FROM actions WHERE decision_id IN ({marks}) "
                    "ORDER BY decision_id, seq", decided):
                actions[decision_id].append((name, target, status))
            for decision_id, rule in self.db.execute(
                    f"SELECT decision_id, rule FROM rules_fired WHERE decision_id IN ({marks}) "
                    "ORDER BY decision_id, seq", decided):
                rules[decision_id].append(rule)
        return [TranscriptLine(role, text, at, None if decision_id is None else DecisionSummary(
                    decision_id, decision, category, playbook, confidence, tuple(actions[decision_id]),
                    tuple(rules[decision_id])))
                for role, text, at, decision_id, decision, category, playbook, confidence in rows]

