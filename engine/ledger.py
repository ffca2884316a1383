"""The healing ledger in DuckDB: samples, signals, alerts and remediations, from signal to rule to action to
verification, and the stored state every safety decision reads.

It shares the event store's DuckDB file (one writer per process) and writes through its transactions; its
tables are its own. Hand-offs to engineering go to the store's `handoffs` table, beside the chat's.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.detection import Signal
from engine.safety import Attempt, SafetyPolicy, SafetyView, Verdict, decide
from engine.store import DuckDBStore
from engine.telemetry import Snapshot

SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry (
    observed_at DOUBLE NOT NULL, source VARCHAR NOT NULL, service VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS signals (
    id VARCHAR PRIMARY KEY, observed_at DOUBLE NOT NULL, service VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, state VARCHAR NOT NULL, value DOUBLE NOT NULL, limit_value DOUBLE NOT NULL,
    eta_s DOUBLE, score DOUBLE, root_cause VARCHAR, fingerprint VARCHAR, detail VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint VARCHAR NOT NULL, starts_at VARCHAR NOT NULL, status VARCHAR NOT NULL, received_at DOUBLE NOT NULL,
    alertname VARCHAR NOT NULL, service VARCHAR, metric VARCHAR, labels JSON NOT NULL, annotations JSON NOT NULL,
    handled_at DOUBLE, PRIMARY KEY (fingerprint, starts_at, status)
);
CREATE TABLE IF NOT EXISTS remediations (
    id VARCHAR PRIMARY KEY, signal_id VARCHAR, rule VARCHAR, action VARCHAR NOT NULL, target VARCHAR NOT NULL,
    params JSON NOT NULL, adapter VARCHAR NOT NULL, status VARCHAR NOT NULL, detail VARCHAR NOT NULL,
    started_at DOUBLE NOT NULL, finished_at DOUBLE, verify_service VARCHAR, verify_metric VARCHAR,
    verify_by DOUBLE, rollback VARCHAR
);
"""
EXECUTED = ("running", "verifying", "succeeded", "failed", "timed_out")
FINISHED = ("succeeded", "failed", "timed_out")
FAILURES = ("failed", "timed_out")
MONITOR_USER = "monitor"


@dataclass(frozen=True)
class AlertRecord:
    """One notification of one alert, as received from Alertmanager."""

    fingerprint: str
    starts_at: str
    status: str  # firing | resolved
    alertname: str
    service: str | None
    metric: str | None
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class RemediationRow:
    id: str
    signal_id: str | None
    rule: str | None
    action: str
    target: str
    adapter: str
    status: str
    detail: str
    started_at: float
    finished_at: float | None
    verify: tuple[str, str] | None
    verify_by: float | None
    rollback: str | None


class DuckDBLedger:
    """The ledger on the event store's DuckDB file."""

    def __init__(self, store: DuckDBStore, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.store = store
        self.new_id = new_id
        self._lock = threading.Lock()  # read-decide-write of one attempt happens as one step
        for statement in SCHEMA.split(";"):
            if statement.strip():
                store.execute(statement)

    # -- telemetry and signals ----------------------------------------------------------------------

    def record_samples(self, snapshot: Snapshot, source: str) -> None:
        rows = [(service, metric, value) for service, values in snapshot.metrics.items()
                for metric, value in values.items()]
        if not rows:
            return
        # One vectorised insert per snapshot: row-by-row inserts would dominate a simulated hour.
        self.store.write([("INSERT INTO telemetry SELECT ?, ?, unnest(?), unnest(?), unnest(?)",
                           (snapshot.at, source, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))])

    def record_signal(self, signal: Signal, root_cause: str | None) -> str:
        signal_id = self.new_id()
        self.store.write([("INSERT INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (signal_id, signal.at, signal.service, signal.metric, signal.kind.value,
                            signal.state.value, signal.value, signal.limit, signal.eta_s, signal.score, root_cause,
                            signal.fingerprint or None, signal.detail or signal.describe()))])
        return signal_id

    # -- alerts -------------------------------------------------------------------------------------

    def record_alerts(self, alerts: Sequence[AlertRecord], now: float) -> list[AlertRecord]:
        """Store every notification not seen before (fingerprint + startsAt + status); return the new ones.

        Alertmanager retries on 5xx and repeats notifications, so a repeat must change nothing.
        """
        with self._lock:
            new = [a for a in alerts if not self.store.execute(
                "SELECT 1 FROM alerts WHERE fingerprint = ? AND starts_at = ? AND status = ?",
                (a.fingerprint, a.starts_at, a.status))]
            unique = list({(a.fingerprint, a.starts_at, a.status): a for a in new}.values())
            # Only firing alerts are ever acted on; a resolved one is stored as already handled.
            self.store.write([("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (a.fingerprint, a.starts_at, a.status, now, a.alertname, a.service, a.metric,
                                json.dumps(a.labels), json.dumps(a.annotations),
                                None if a.status == "firing" else now)) for a in unique])
        return unique

    def pending_alerts(self) -> list[AlertRecord]:
        rows = self.store.execute(
            "SELECT fingerprint, starts_at, status, alertname, service, metric, labels, annotations FROM alerts "
            "WHERE status = 'firing' AND handled_at IS NULL ORDER BY received_at")
        return [AlertRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7])) for r in rows]

    def alert_handled(self, alert: AlertRecord, now: float) -> None:
        self.store.write([("UPDATE alerts SET handled_at = ? WHERE fingerprint = ? AND starts_at = ? AND status = ?",
                           (now, alert.fingerprint, alert.starts_at, alert.status))])

    # -- safety state and attempts -----------------------------------------------------------------

    def view(self, action: str, target: str, now: float, policy: SafetyPolicy) -> SafetyView:
        executed = ", ".join(f"'{s}'" for s in EXECUTED)
        last = self.store.execute(
            f"SELECT max(started_at) FROM remediations WHERE action = ? AND target = ? AND status IN ({executed})",
            (action, target))[0][0]
        chat = self.store.execute(  # the chat's remedies cool the same (action, target) down
            "SELECT max(started_at) FROM actions WHERE name = ? AND target = ? AND status IN ('succeeded', 'failed')",
            (action, target))[0][0]
        window, running, in_flight = self.store.execute(
            f"SELECT count(*) FILTER (WHERE started_at >= ? AND status IN ({executed})), "
            "count(*) FILTER (WHERE status = 'running' AND started_at >= ?), "
            "count(*) FILTER (WHERE status IN ('running', 'verifying') AND started_at >= ?) FROM remediations",
            # A row left 'running' by a crash stops counting once it is older than the action timeout.
            (now - policy.rate_window_s, now - policy.action_timeout_s,
             now - policy.action_timeout_s - policy.verify_timeout_s))[0]
        finished = ", ".join(f"'{s}'" for s in FINISHED)
        recent = self.store.execute(
            f"SELECT status, finished_at FROM remediations WHERE status IN ({finished}) "
            "ORDER BY finished_at DESC LIMIT ?", (policy.breaker_failures,))
        trailing = 0
        for status, _ in recent:
            if status not in FAILURES:
                break
            trailing += 1
        last_failure = next((at for status, at in recent if status in FAILURES), None)
        starts = [t for t in (last, chat) if t is not None]
        return SafetyView(max(starts) if starts else None, int(window), int(running), int(in_flight), trailing,
                          last_failure)

    def try_begin(self, attempt: Attempt, policy: SafetyPolicy, now: float) -> Verdict:
        with self._lock:
            verdict = decide(policy, self.view(attempt.action, attempt.target, now, policy), now)
            if not verdict.allowed and self._repeats(attempt, verdict, now, policy):
                return verdict  # the same refusal a moment ago is already in the trail
            status = "running" if verdict.allowed else verdict.status
            finished = None if verdict.allowed else now
            verify = attempt.verify or (None, None)
            self.store.write([("INSERT INTO remediations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (attempt.id, attempt.signal_id, attempt.rule, attempt.action, attempt.target,
                                json.dumps(attempt.params), attempt.adapter, status, verdict.reason, now, finished,
                                verify[0], verify[1], None, None))])
        return verdict

    def _repeats(self, attempt: Attempt, verdict: Verdict, now: float, policy: SafetyPolicy) -> bool:
        rows = self.store.execute(
            "SELECT status, detail, started_at FROM remediations WHERE action = ? AND target = ? "
            "ORDER BY started_at DESC LIMIT 1", (attempt.action, attempt.target))
        if not rows:
            return False
        status, detail, at = rows[0]
        same = status == verdict.status and detail.split(":")[0] == verdict.reason.split(":")[0]
        return same and now - at < policy.cooldown_s

    def finish(self, attempt_id: str, status: str, detail: str, now: float, verify_by: float | None = None) -> None:
        finished = None if status == "verifying" else now
        self.store.write([("UPDATE remediations SET status = ?, detail = ?, finished_at = ?, verify_by = ? "
                           "WHERE id = ?", (status, detail, finished, verify_by, attempt_id))])

    def set_rollback(self, attempt_id: str, rollback: str) -> None:
        self.store.write([("UPDATE remediations SET rollback = ? WHERE id = ?", (rollback, attempt_id))])

    def verifying(self) -> list[RemediationRow]:
        """Actions waiting for their metric to come back; stored, so a restart goes on verifying them."""
        return self.remediations("status = 'verifying'")

    def remediations(self, where: str = "TRUE", params: Sequence[Any] = ()) -> list[RemediationRow]:
        rows = self.store.execute(
            "SELECT id, signal_id, rule, action, target, adapter, status, detail, started_at, finished_at, "
            f"verify_service, verify_metric, verify_by, rollback FROM remediations WHERE {where} "
            "ORDER BY started_at, id", params)
        return [RemediationRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                               (r[10], r[11]) if r[10] else None, r[12], r[13]) for r in rows]

    def record_handoff(self, source_id: str, summary: str, diagnostics: dict[str, Any], now: float) -> None:
        self.store.write([("INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (self.new_id(), source_id, "", MONITOR_USER, "engineering", summary,
                            json.dumps(diagnostics, default=str), "open", now))])
