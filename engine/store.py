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

from core.errors import StoreError

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
CREATE TABLE IF NOT EXISTS handoffs (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, team VARCHAR NOT NULL, summary VARCHAR NOT NULL, diagnostics JSON NOT NULL,
    status VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS escalations (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, category VARCHAR NOT NULL, summary VARCHAR NOT NULL, status VARCHAR NOT NULL,
    created_at DOUBLE NOT NULL
);
"""


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
    handoff: tuple[str, str, dict[str, Any]] | None = None  # (team, summary, diagnostics)
    errors: Sequence[str] = field(default_factory=tuple)


class EventStore(Protocol):
    """What the engine needs from storage."""

    def start_conversation(self, conversation_id: str, user_id: str, channel: str) -> None: ...

    def add_message(self, message_id: str, conversation_id: str, user_id: str, role: str, text: str) -> None: ...

    def conversation_owner(self, conversation_id: str) -> str | None: ...

    def record_decision(self, record: DecisionRecord, new_id: Callable[[], str]) -> None: ...

    def last_action_at(self, name: str, target: str, statuses: Sequence[str]) -> float | None: ...

    def failed_recently(self, user_id: str, name: str, target: str, since: float) -> bool: ...

    def user_turns(self, conversation_id: str) -> int: ...

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

    def _write(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        """Run statements in one transaction; consecutive inserts into one table go as one batch."""
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
                for sql, rows in batches:
                    if len(rows) == 1:
                        cursor.execute(sql, rows[0])
                    else:
                        cursor.executemany(sql, rows)
                cursor.execute("COMMIT")
            except duckdb.Error as error:
                cursor.execute("ROLLBACK")
                raise StoreError(f"could not write to {self.path}: {error}") from None

    def write(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        """Run statements in one transaction, for modules that own tables of their own (the healing ledger)."""
        self._write(statements)

    def start_conversation(self, conversation_id: str, user_id: str, channel: str) -> None:
        self._write([("INSERT INTO conversations VALUES (?, ?, ?, ?)",
                      (conversation_id, user_id, channel, self.clock()))])

    def add_message(self, message_id: str, conversation_id: str, user_id: str, role: str, text: str) -> None:
        self._write([("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                      (message_id, conversation_id, user_id, role, text, self.clock()))])

    def conversation_owner(self, conversation_id: str) -> str | None:
        rows = self.execute("SELECT user_id FROM conversations WHERE id = ?", (conversation_id,))
        return rows[0][0] if rows else None

    def record_decision(self, record: DecisionRecord, new_id: Callable[[], str]) -> None:
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
        if r.escalation:
            category, summary = r.escalation
            statements.append(("INSERT INTO escalations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (new_id(), r.id, r.conversation_id, r.user_id, category, summary, "open",
                                r.created_at)))
        if r.handoff:
            team, summary, diagnostics = r.handoff
            statements.append(("INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (new_id(), r.id, r.conversation_id, r.user_id, team, summary,
                                json.dumps(diagnostics), "open", r.created_at)))
        statements.append(("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                           (new_id(), r.conversation_id, r.user_id, "assistant", r.reply, r.created_at)))
        self._write(statements)

    def last_action_at(self, name: str, target: str, statuses: Sequence[str]) -> float | None:
        marks = ", ".join("?" for _ in statuses)
        rows = self.execute(
            f"SELECT max(finished_at) FROM actions WHERE name = ? AND target = ? AND status IN ({marks})",
            (name, target, *statuses),
        )
        return rows[0][0] if rows and rows[0][0] is not None else None

    def failed_recently(self, user_id: str, name: str, target: str, since: float) -> bool:
        rows = self.execute(
            "SELECT count(*) FROM actions WHERE user_id = ? AND name = ? AND target = ? AND status = 'failed' "
            "AND finished_at >= ?",
            (user_id, name, target, since),
        )
        return bool(rows[0][0])

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
