"""The event store: every conversation, message, match, rule firing, action and reply, in DuckDB.

DuckDB admits one writing process, so the store opens the file once per process and hands each thread its
own cursor; writes of one decision go in one transaction. The interface is small so that PostgreSQL can
stand behind it when Firstline runs as several processes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb

from core.errors import ConflictError, StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, channel VARCHAR NOT NULL, started_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id VARCHAR PRIMARY KEY, conversation_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL, text VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id VARCHAR PRIMARY KEY, message_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, decision VARCHAR NOT NULL, category VARCHAR NOT NULL, playbook VARCHAR,
    band VARCHAR NOT NULL, confidence DOUBLE NOT NULL, ruleset_version VARCHAR NOT NULL, dry_run BOOLEAN NOT NULL,
    reply VARCHAR NOT NULL, errors VARCHAR NOT NULL, latency_ms DOUBLE NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    decision_id VARCHAR NOT NULL, rank INTEGER NOT NULL, playbook VARCHAR NOT NULL, category VARCHAR NOT NULL,
    score DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    decision_id VARCHAR NOT NULL, seq INTEGER NOT NULL, type VARCHAR NOT NULL, origin VARCHAR NOT NULL,
    payload JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS rules_fired (
    decision_id VARCHAR NOT NULL, seq INTEGER NOT NULL, rule VARCHAR NOT NULL, bindings JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, seq INTEGER NOT NULL,
    name VARCHAR NOT NULL, target VARCHAR NOT NULL, params JSON NOT NULL, rule VARCHAR, status VARCHAR NOT NULL,
    detail VARCHAR NOT NULL, started_at DOUBLE NOT NULL, finished_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS fix_verdicts (
    id VARCHAR PRIMARY KEY, conversation_id VARCHAR NOT NULL, decision_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL,
    action VARCHAR NOT NULL, target VARCHAR NOT NULL, verdict VARCHAR NOT NULL, said_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS handoffs (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, team VARCHAR NOT NULL, summary VARCHAR NOT NULL, diagnostics JSON NOT NULL,
    status VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    decision_id VARCHAR PRIMARY KEY, ruleset_version VARCHAR NOT NULL, trace JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    user_id VARCHAR PRIMARY KEY, plan VARCHAR NOT NULL, seats INTEGER NOT NULL, role VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS resolutions (
    name VARCHAR PRIMARY KEY, playbook VARCHAR NOT NULL, service VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    action VARCHAR NOT NULL, target VARCHAR NOT NULL, successes INTEGER NOT NULL, failures INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS escalations (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, category VARCHAR NOT NULL, summary VARCHAR NOT NULL, status VARCHAR NOT NULL,
    created_at DOUBLE NOT NULL
);
"""


# Rows of one table written as one INSERT: DuckDB's executemany costs about 0.4 ms a row (a decision's 60 facts
# took 24 ms), one statement with many VALUES about 0.07 ms a row.
ROWS_PER_INSERT = 200


def _multi_row(sql: str, rows: list[Sequence[Any]]) -> tuple[str, list[Any]]:
    """`INSERT ... VALUES (?, ?)` for one row -> the same statement for all `rows`, and their parameters."""
    if len(rows) == 1:
        return sql, list(rows[0])
    head, _, values = sql.rpartition("VALUES ")
    return head + "VALUES " + ", ".join([values] * len(rows)), [value for row in rows for value in row]


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
    decision: str
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
    escalation: tuple[str, str] | None = None  # (category, summary)
    also_escalated: Sequence[tuple[str, str]] = ()  # other requests of the message a person decides, same shape
    handoff: tuple[str, str, dict[str, Any]] | None = None  # (team, summary, diagnostics)
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
    plan: str
    seats: int
    role: str


@dataclass(frozen=True)
class ResolutionRow:
    """A learned resolution: for `playbook`, when `service`'s `metric` was unhealthy, `action` on `target` fixed it."""

    name: str
    playbook: str
    service: str
    metric: str
    action: str
    target: str
    successes: int = 1
    failures: int = 0


class EventStore(Protocol):
    """What the engine needs from storage."""

    def start_conversation(self, conversation_id: str, user_id: str, channel: str) -> None: ...

    def add_message(self, message_id: str, conversation_id: str, user_id: str, role: str, text: str) -> None: ...

    def conversation_owner(self, conversation_id: str) -> str | None: ...

    def decision_statements(self, record: DecisionRecord,
                            new_id: Callable[[], str]) -> list[tuple[str, Sequence[Any]]]: ...

    def transaction(self, statements: list[tuple[str, Sequence[Any]]],
                    guard: tuple[str, Sequence[Any], str] | None = None) -> None: ...

    def user_turns(self, conversation_id: str) -> int: ...

    def past_actions(self, user_id: str, since: float, limit: int) -> list[PastAction]: ...

    def account(self, user_id: str) -> Account | None: ...

    def trace(self, decision_id: str) -> dict[str, Any] | None: ...

    def messages(self, conversation_id: str, user_id: str) -> list[tuple[str, str, float]]: ...

    def close(self) -> None: ...


class DuckDBStore:
    """The embedded event store: one DuckDB file, one connection per process, a cursor per thread."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # No user SQL ever runs with file or network access; exports go through Python.
            self._connection = duckdb.connect(str(path), config={"enable_external_access": False})
        except duckdb.IOException as error:
            raise StoreError(
                f"cannot open {path}: {error}. Another Firstline process (the server?) may hold it; stop it "
                "or set FIRSTLINE_DATA_DIR to another folder."
            ) from None
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursor().execute(SCHEMA)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._connection.cursor()
            self._local.cursor = cursor
            with self._write_lock:
                self._cursors.append(cursor)
        return cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run a statement on this thread's cursor; for reads by tests, analytics and the CLI."""
        try:
            return self._cursor().execute(sql, params).fetchall()
        except duckdb.Error as error:
            raise StoreError(f"query failed: {error}") from None

    def _write(self, statements: list[tuple[str, Sequence[Any]]],
               guard: tuple[str, Sequence[Any], str] | None = None) -> None:
        """Run statements in one transaction; consecutive inserts into one table go as one batch.

        `guard` is (sql, params, message): a statement run first that must return a row (an UPDATE ... WHERE
        version = ? RETURNING, say); when it returns none, or breaks a key, nothing is written and ConflictError
        says `message`."""
        batches: list[tuple[str, list[Sequence[Any]]]] = []
        for sql, params in statements:
            if batches and batches[-1][0] == sql:
                batches[-1][1].append(params)
            else:
                batches.append((sql, [params]))
        cursor = self._cursor()
        with self._write_lock:
            try:
                cursor.execute("BEGIN TRANSACTION")
                if guard is not None and not self._guard_holds(cursor, guard):
                    cursor.execute("ROLLBACK")
                    raise ConflictError(guard[2])
                for sql, rows in batches:
                    for start in range(0, len(rows), ROWS_PER_INSERT):
                        chunk = rows[start:start + ROWS_PER_INSERT]
                        cursor.execute(*_multi_row(sql, chunk))
                cursor.execute("COMMIT")
            except duckdb.Error as error:
                cursor.execute("ROLLBACK")
                raise StoreError(f"could not write to {self.path}: {error}") from None

    @staticmethod
    def _guard_holds(cursor: duckdb.DuckDBPyConnection, guard: tuple[str, Sequence[Any], str]) -> bool:
        try:
            return bool(cursor.execute(guard[0], guard[1]).fetchall())
        except duckdb.ConstraintException:
            return False

    def transaction(self, statements: list[tuple[str, Sequence[Any]]],
                    guard: tuple[str, Sequence[Any], str] | None = None) -> None:
        """Run statements in one transaction, for modules that keep tables of their own (chats, healing); see
        `_write` for `guard`."""
        self._write(statements, guard)

    write = transaction  # the healing ledger's name for it

    def start_conversation(self, conversation_id: str, user_id: str, channel: str) -> None:
        self._write([("INSERT INTO conversations VALUES (?, ?, ?, ?)",
                      (conversation_id, user_id, channel, self.clock()))])

    def add_message(self, message_id: str, conversation_id: str, user_id: str, role: str, text: str) -> None:
        self._write([("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                      (message_id, conversation_id, user_id, role, text, self.clock()))])

    def conversation_owner(self, conversation_id: str) -> str | None:
        rows = self.execute("SELECT user_id FROM conversations WHERE id = ?", (conversation_id,))
        return rows[0][0] if rows else None

    def decision_statements(self, record: DecisionRecord,
                            new_id: Callable[[], str]) -> list[tuple[str, Sequence[Any]]]:
        """The statements that store a decision with everything about it, for a caller that commits them in
        one transaction with more (the dialogue: with the conversation's new state)."""
        r = record
        statements: list[tuple[str, Sequence[Any]]] = [
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
        escalations = [(r.escalation_id or new_id(), *r.escalation)] if r.escalation else []
        escalations += [(new_id(), category, summary) for category, summary in r.also_escalated]
        for escalation_id, category, summary in escalations:
            statements.append(("INSERT INTO escalations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (escalation_id, r.id, r.conversation_id, r.user_id, category, summary, "open",
                                r.created_at)))
        if r.handoff:
            team, summary, diagnostics = r.handoff
            statements.append(("INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (new_id(), r.id, r.conversation_id, r.user_id, team, summary,
                                json.dumps(diagnostics), "open", r.created_at)))
        if r.trace is not None:
            statements.append(("INSERT INTO traces VALUES (?, ?, ?)",
                               (r.id, r.ruleset_version, json.dumps(r.trace, default=str))))
        statements.append(("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                           (new_id(), r.conversation_id, r.user_id, "assistant", r.reply, r.created_at)))
        return statements

    def trace(self, decision_id: str) -> dict[str, Any] | None:
        """The stored trace of a decision, with the ids that place it."""
        rows = self.execute(
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
        rows = self.execute(
            "SELECT name, target, status, rule, finished_at, conversation_id FROM ("
            "SELECT a.name, a.target, a.status, coalesce(a.rule, '') AS rule, a.finished_at, d.conversation_id "
            "FROM actions a JOIN decisions d ON d.id = a.decision_id "
            "WHERE a.user_id = ? AND a.finished_at >= ? AND a.name NOT IN ('handoff', 'escalate') "
            "UNION ALL SELECT v.action, v.target, 'failed', 'user_says_not_fixed', v.said_at, v.conversation_id "
            "FROM fix_verdicts v WHERE v.user_id = ? AND v.said_at >= ? AND v.verdict = 'not_fixed') "
            "ORDER BY finished_at DESC LIMIT ?", (user_id, since, user_id, since, limit))
        return [PastAction(*row) for row in rows]

    def account(self, user_id: str) -> Account | None:
        rows = self.execute("SELECT plan, seats, role FROM accounts WHERE user_id = ?", (user_id,))
        return Account(*rows[0]) if rows else None

    def set_account(self, user_id: str, account: Account) -> None:
        self._write([("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)",
                      (user_id, account.plan, account.seats, account.role))])

    def resolutions(self) -> list[ResolutionRow]:
        return [ResolutionRow(*row) for row in self.execute("SELECT * FROM resolutions ORDER BY name")]

    def add_resolutions(self, rows: Sequence[ResolutionRow]) -> None:
        self._write([("INSERT OR REPLACE INTO resolutions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (r.name, r.playbook, r.service, r.metric, r.action, r.target, r.successes, r.failures))
                     for r in rows])

    def user_turns(self, conversation_id: str) -> int:
        """How many messages the user has sent in this conversation, the current one included."""
        rows = self.execute("SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'user'",
                            (conversation_id,))
        return int(rows[0][0])

    def messages(self, conversation_id: str, user_id: str) -> list[tuple[str, str, float]]:
        """(role, text, created_at) of one of the user's conversations, oldest first."""
        return [tuple(row) for row in self.execute(
            "SELECT role, text, created_at FROM messages WHERE conversation_id = ? AND user_id = ? "
            "ORDER BY created_at, role DESC",
            (conversation_id, user_id),
        )]

    def close(self) -> None:
        with self._write_lock:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
        self._connection.close()
