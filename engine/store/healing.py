"""The healing ledger: telemetry samples, signals, alerts and remediations, from signal to rule to action to
verification, and the stored state every safety decision reads (`SafetyView`).

Every remediation, whoever asked for it, is one row of `remediations`, so cooldowns, the rate limit, the
concurrency cap and the circuit breaker read one table. Hand-offs to engineering go to `handoffs`, beside the
chat's. The shapes it stores are defined here (`Attempt`, `SafetyView`, `RemediationRow`, `AlertRecord`); those it
reads from other rooms (a signal, the safety limits, a verdict) are protocols, so the store imports no other
part of the engine.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from core.errors import ConflictError
from engine.store.database import DuckDBStore, Statement

COLUMNS = ("id, signal_id, rule, action, target, params, adapter, status, detail, started_at, finished_at, "
           "verify_service, verify_metric, verify_by, rollback, requester, subject")


class RemediationStatus(StrEnum):
    """Where a remediation stands in `remediations.status`."""

    RUNNING = "running"  # the adapter is executing it
    VERIFYING = "verifying"  # executed; waiting for its metric to come back
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"  # refused by the safety gate (cooldown, rate, concurrency, breaker)
    DRY_RUN = "dry_run"  # planned and recorded, not run
    JOINED = "joined"  # the same action on the same target was under way: this request waits for its result


S = RemediationStatus
EXECUTED = (S.RUNNING, S.VERIFYING, S.SUCCEEDED, S.FAILED, S.TIMED_OUT)
UNDER_WAY = (S.RUNNING, S.VERIFYING)
FINISHED = (S.SUCCEEDED, S.FAILED, S.TIMED_OUT)
FAILURES = (S.FAILED, S.TIMED_OUT)
MONITOR_USER = "monitor"


class SignalLike(Protocol):
    """What the ledger stores of a detected signal (engine.healing.detection.Signal); `kind` and `state` are
    string enums."""

    @property
    def at(self) -> float: ...

    @property
    def service(self) -> str: ...

    @property
    def metric(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def value(self) -> float: ...

    @property
    def limit(self) -> float: ...

    @property
    def eta_s(self) -> float | None: ...

    @property
    def score(self) -> float | None: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def detail(self) -> str: ...

    @property
    def reason(self) -> str: ...

    def describe(self) -> str: ...


class SafetyLimits(Protocol):
    """The windows the stored state is read over (engine.actions.safety.SafetyPolicy), in seconds."""

    @property
    def cooldown_s(self) -> float: ...

    @property
    def rate_window_s(self) -> float: ...

    @property
    def breaker_failures(self) -> int: ...

    @property
    def action_timeout_s(self) -> float: ...

    @property
    def verify_timeout_s(self) -> float: ...


class VerdictLike(Protocol):
    """A safety decision as the ledger records it (engine.actions.safety.Verdict)."""

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def joined(self) -> str | None: ...

    @property
    def allowed(self) -> bool: ...


V = TypeVar("V", bound=VerdictLike)


@dataclass(frozen=True)
class SafetyView:
    """What the ledger says that matters for one request, read in one go."""

    last_started_at: float | None  # the same action on the same target (and subject), whoever asked
    started_in_window: int  # actions run, all targets, in the rate window
    running: int  # actions executing now
    in_flight: int  # actions executing or waiting for verification
    trailing_failures: int  # failed or timed-out actions since the last success
    last_failure_at: float | None
    under_way: str | None = None  # id of the same action on the same target still running or being verified
    last_requester: str = ""  # who asked for the last run of the same action on the same target


@dataclass(frozen=True)
class Attempt:
    """One remediation as it enters the ledger, with who asked for it.

    `requester` is `conversation:<id>`, `alert:<fingerprint>` or `monitor`. `subject` is the user a per-user
    action acts for ("" for an action on a whole service): per-user actions cool down, join and count towards the
    rate limit per subject, so one user's fix never holds back another's, and one user cannot use up the
    service-wide allowance."""

    id: str
    signal_id: str | None
    rule: str | None
    action: str
    target: str
    params: dict
    adapter: str
    verify: tuple[str, str] | None
    requester: str = "monitor"
    subject: str = ""


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
    received_at: float = 0.0  # epoch s, when Firstline stored it (set on reading it back)
    resolved: bool = False  # a resolved notification for the same alert has arrived since


@dataclass(frozen=True)
class RemediationRow:
    id: str
    signal_id: str | None
    rule: str | None
    action: str
    target: str
    adapter: str
    status: RemediationStatus
    detail: str
    started_at: float
    finished_at: float | None
    verify: tuple[str, str] | None
    verify_by: float | None
    rollback: str | None
    requester: str = "monitor"
    subject: str = ""


RECURRING = "keeps_coming_back"  # the diagnostics key ({"service", "metric"}) of a recurring problem's hand-off


@dataclass(frozen=True)
class Recurrence:
    """A remediation verified as having fixed its problem, after which the problem came back (so it failed)."""

    remediation_id: str
    action: str
    target: str
    rule: str | None
    requester: str
    service: str
    metric: str
    started_at: float
    verified_at: float
    recurred_at: float
    detail: str  # what the action did, how it was verified, and that the problem came back
    signal_id: str | None  # the signal the problem came back as


NOT_FINITE = "not_finite"  # engine.infra.samples.ProblemReason.NOT_FINITE, the reason a sample's own NaN is dropped


def _value_text(value: float, reason: str) -> str | None:
    """A dropped sample's value as Prometheus writes it; None when there was no number (the signal's NaN then
    stands for "none", so only a `not_finite` NaN is the sample's own)."""
    if math.isnan(value):
        return "NaN" if reason == NOT_FINITE else None
    return ("+Inf" if value > 0 else "-Inf") if math.isinf(value) else repr(value)


class HealingLedger:
    """The healing ledger on the DuckDB database."""

    def __init__(self, store: DuckDBStore, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.store = store
        self.new_id = new_id
        self._lock = threading.Lock()  # read-decide-write of one attempt happens as one step

    # -- telemetry and signals ----------------------------------------------------------------------

    def record_samples(self, at: float, metrics: Mapping[str, Mapping[str, float]], source: str) -> None:
        """One snapshot of `metrics` (service -> metric -> value) read from `source` at `at` (epoch s)."""
        rows = [(service, metric, value) for service, values in metrics.items() for metric, value in values.items()]
        if not rows:
            return
        # One vectorised insert per snapshot: row-by-row inserts would dominate a simulated hour.
        self.store.transaction([("INSERT INTO telemetry SELECT ?, ?, unnest(?), unnest(?), unnest(?)",
                           (at, source, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))])

    def record_telemetry_problems(self, source: str, seen: Sequence[SignalLike], now: float) -> None:
        """The problems of one read of `source` (epoch s `now`): each in `seen` opens a row, or brings its open row
        up to date (`last_seen`, and the value and detail as last read: a problem that lasts may change its
        figures); an open row of `source` not seen now is over (a restart in between closes it too). The value is
        kept as text as Prometheus writes it ("+Inf", "NaN"; NULL when there was none)."""
        statements: list[Statement] = []
        for problem in seen:
            key, value = problem.fingerprint, _value_text(problem.value, problem.reason)
            statements += [
                ("UPDATE telemetry_problems SET last_seen = ?, value = ?, detail = ? WHERE problem_key = ? "
                 "AND source = ? AND ended_at IS NULL", (now, value, problem.detail, key, source)),
                ("INSERT INTO telemetry_problems SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL WHERE NOT EXISTS "
                 "(SELECT 1 FROM telemetry_problems WHERE problem_key = ? AND source = ? AND ended_at IS NULL)",
                 (key, source, problem.service, problem.metric, value, problem.reason,
                  problem.detail, now, now, key, source)),
            ]
        statements.append(("UPDATE telemetry_problems SET ended_at = ? WHERE source = ? AND ended_at IS NULL AND "
                           "NOT list_contains(?::VARCHAR[], problem_key)",
                           (now, source, [p.fingerprint for p in seen])))
        self.store.transaction(statements)

    def telemetry_problems(self, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """The latest telemetry problems, newest first: key, source, service, metric, value (text), reason,
        detail, first_seen, last_seen, ended_at (None while it lasts)."""
        where = "WHERE ended_at IS NULL " if open_only else ""
        rows = self.store.execute(
            "SELECT problem_key, source, service, metric, value, reason, detail, first_seen, last_seen, ended_at "
            f"FROM telemetry_problems {where}ORDER BY last_seen DESC LIMIT ?", (limit,))
        names = ("key", "source", "service", "metric", "value", "reason", "detail", "first_seen", "last_seen",
                 "ended_at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def snapshots(self, source: str, since: float, limit: int = 240) -> list[tuple[float, dict[str, dict[str, float]]]]:
        """The snapshots read from `source` since `since` (epoch s), oldest first, each as (epoch s, service ->
        metric -> value); at most the latest `limit` (an hour of readings every 15 s is 240)."""
        rows = self.store.execute(
            "SELECT observed_at, service, metric, value FROM telemetry WHERE source = ? AND observed_at IN "
            "(SELECT DISTINCT observed_at FROM telemetry WHERE source = ? AND observed_at >= ? "
            "ORDER BY observed_at DESC LIMIT ?) ORDER BY observed_at",
            (source, source, since, limit))
        readings: dict[float, dict[str, dict[str, float]]] = {}
        for at, service, metric, value in rows:
            readings.setdefault(float(at), {}).setdefault(service, {})[metric] = float(value)
        return list(readings.items())

    def series(self, service: str, metric: str, since: float, limit: int = 5000) -> list[tuple[float, float]]:
        """[(epoch s, value)] of one metric of one service from `since`, oldest first; at most the latest
        `limit` samples (a month of one-a-minute samples is 43,200: a trend needs far fewer)."""
        rows = self.store.execute(
            "SELECT observed_at, value FROM (SELECT observed_at, value FROM telemetry WHERE service = ? AND metric = ? "
            "AND observed_at >= ? ORDER BY observed_at DESC LIMIT ?) ORDER BY observed_at",
            (service, metric, since, limit))
        return [(float(t), float(v)) for t, v in rows]

    def record_signal(self, signal: SignalLike, root_cause: str | None) -> str:
        signal_id = self.new_id()
        self.store.transaction([("INSERT INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (signal_id, signal.at, signal.service, signal.metric, str(signal.kind),
                            str(signal.state), signal.value, signal.limit, signal.eta_s, signal.score, root_cause,
                            signal.fingerprint or None, signal.detail or signal.describe()))])
        return signal_id

    # -- alerts -------------------------------------------------------------------------------------

    def record_alerts(self, alerts: Sequence[AlertRecord], now: float,
                      also: Callable[[int], tuple[str, Sequence[Any]]] | None = None) -> list[AlertRecord]:
        """Store every notification not seen before (fingerprint + startsAt + status); return the new ones.
        `also(new)`, given how many are new, is one more statement for the same transaction (the notification's
        figures, engine/store/alert_intake.py).

        Alertmanager retries on 5xx and repeats notifications, so a repeat must change nothing.
        """
        with self._lock:
            new = [a for a in alerts if not self.store.execute(
                "SELECT 1 FROM alerts WHERE fingerprint = ? AND starts_at = ? AND status = ?",
                (a.fingerprint, a.starts_at, a.status))]
            unique = list({(a.fingerprint, a.starts_at, a.status): a for a in new}.values())
            # Only firing alerts are ever acted on; a resolved one is stored as already handled.
            statements: list[tuple[str, Sequence[Any]]] = [
                ("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (a.fingerprint, a.starts_at, a.status, now, a.alertname, a.service, a.metric,
                  json.dumps(a.labels), json.dumps(a.annotations), None if a.status == "firing" else now))
                for a in unique]
            self.store.transaction(statements + ([also(len(unique))] if also is not None else []))
        return unique

    def pending_alerts(self) -> list[AlertRecord]:
        """Firing alerts not yet handled, oldest first; one whose resolution has arrived meanwhile is left out
        (it is marked handled by `alerts_handled` like the rest)."""
        rows = self.store.execute(
            "SELECT a.fingerprint, a.starts_at, a.status, a.alertname, a.service, a.metric, a.labels, a.annotations, "
            "a.received_at, EXISTS (SELECT 1 FROM alerts r WHERE r.fingerprint = a.fingerprint "
            "AND r.starts_at = a.starts_at AND r.status = 'resolved') FROM alerts a "
            "WHERE a.status = 'firing' AND a.handled_at IS NULL ORDER BY a.received_at")
        return [AlertRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]), r[8],
                            resolved=bool(r[9])) for r in rows]

    def alerts_handled(self, alerts: Sequence[AlertRecord], now: float) -> None:
        """Mark `alerts` handled at `now` (epoch s), all in one statement: a storm's thousand alerts are one
        commit, not a thousand."""
        if not alerts:
            return
        self.store.transaction([
            ("UPDATE alerts SET handled_at = ? FROM (SELECT unnest(?::VARCHAR[]) AS fingerprint, "
             "unnest(?::VARCHAR[]) AS starts_at, unnest(?::VARCHAR[]) AS status) AS done "
             "WHERE alerts.fingerprint = done.fingerprint AND alerts.starts_at = done.starts_at "
             "AND alerts.status = done.status",
             (now, [a.fingerprint for a in alerts], [a.starts_at for a in alerts], [a.status for a in alerts]))])

    # -- safety state and attempts -----------------------------------------------------------------

    def view(self, attempt: Attempt, now: float, policy: SafetyLimits) -> SafetyView:
        """The stored state one request is decided on. The same action on the same target (and subject) gives
        the cooldown and what is under way; the rate limit, the concurrency cap and the breaker count actions on
        whole services together, and per-user actions per user (the breaker per action and target)."""
        executed = ", ".join(f"'{s}'" for s in EXECUTED)
        same = "action = ? AND target = ? AND subject = ?"
        key = (attempt.action, attempt.target, attempt.subject)
        last = self.store.execute(
            f"SELECT id, status, started_at, requester FROM remediations WHERE {same} AND status IN ({executed}) "
            "ORDER BY started_at DESC LIMIT 1", key)
        # A row left running or verifying by a crash stops counting once its time limits are past.
        stale_running, stale_verifying = now - policy.action_timeout_s, now - policy.action_timeout_s - \
            policy.verify_timeout_s
        under_way = None
        if last and ((last[0][1] == S.RUNNING and last[0][2] >= stale_running)
                     or (last[0][1] == S.VERIFYING and last[0][2] >= stale_verifying)):
            under_way = str(last[0][0])
        scope, scope_params = ("subject = ?", (attempt.subject,)) if attempt.subject else ("subject = ''", ())
        window, running, in_flight = self.store.execute(
            f"SELECT count(*) FILTER (WHERE started_at >= ? AND status IN ({executed})), "
            "count(*) FILTER (WHERE status = 'running' AND started_at >= ?), "
            "count(*) FILTER (WHERE status IN ('running', 'verifying') AND started_at >= ?) "
            f"FROM remediations WHERE {scope}",
            (now - policy.rate_window_s, stale_running, stale_verifying, *scope_params))[0]
        breaker_scope, breaker_params = (("action = ? AND target = ? AND subject <> ''",
                                          (attempt.action, attempt.target)) if attempt.subject
                                         else ("subject = ''", ()))
        finished = ", ".join(f"'{s}'" for s in FINISHED)
        recent = self.store.execute(
            f"SELECT status, finished_at FROM remediations WHERE status IN ({finished}) AND {breaker_scope} "
            "ORDER BY finished_at DESC LIMIT ?", (*breaker_params, policy.breaker_failures))
        trailing = 0
        for status, _ in recent:
            if status not in FAILURES:
                break
            trailing += 1
        last_failure = next((at for status, at in recent if status in FAILURES), None)
        return SafetyView(last[0][2] if last else None, int(window), int(running), int(in_flight), trailing,
                          last_failure, under_way, str(last[0][3]) if last else "")

    def try_begin(self, attempt: Attempt, policy: SafetyLimits, now: float,
                  decide: Callable[[SafetyView], V]) -> V:
        """Read the stored state, `decide` on it and record the attempt in one step: two callers can never both
        take the last slot, nor both start the same action on the same target. A refusal the monitor repeats
        every tick is recorded once per cooldown."""
        with self._lock:
            verdict = decide(self.view(attempt, now, policy))
            unattended = not attempt.requester.startswith("conversation:")
            if not verdict.allowed and unattended and self._repeats(attempt, verdict, now, policy):
                return verdict  # the same refusal a moment ago is already in the trail
            status = S.RUNNING if verdict.allowed else verdict.status
            finished = None if verdict.allowed else now
            detail = f"joined {verdict.joined}" if verdict.joined else verdict.reason
            verify = attempt.verify or (None, None)
            self.store.transaction([(f"INSERT INTO remediations ({COLUMNS}) VALUES "
                               "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (attempt.id, attempt.signal_id, attempt.rule, attempt.action, attempt.target,
                                # Checked finite by the actuator; never `Infinity`, which is no JSON.
                                json.dumps(attempt.params, allow_nan=False), attempt.adapter, status, detail, now,
                                finished,
                                verify[0], verify[1], None, None, attempt.requester, attempt.subject))])
        return verdict

    def _repeats(self, attempt: Attempt, verdict: VerdictLike, now: float, policy: SafetyLimits) -> bool:
        rows = self.store.execute(
            "SELECT status, detail, started_at FROM remediations WHERE action = ? AND target = ? AND subject = ? "
            "ORDER BY started_at DESC LIMIT 1", (attempt.action, attempt.target, attempt.subject))
        if not rows:
            return False
        status, detail, at = rows[0]
        same = status == verdict.status and detail.split(":")[0] == verdict.reason.split(":")[0]
        return same and now - at < policy.cooldown_s

    def finish(self, attempt_id: str, status: RemediationStatus, detail: str, now: float,
               verify_by: float | None = None) -> None:
        finished = None if status == S.VERIFYING else now
        self.store.transaction([("UPDATE remediations SET status = ?, detail = ?, finished_at = ?, verify_by = ? "
                           "WHERE id = ?", (status, detail, finished, verify_by, attempt_id))])

    def set_rollback(self, attempt_id: str, rollback: str) -> None:
        self.store.transaction([("UPDATE remediations SET rollback = ? WHERE id = ?", (rollback, attempt_id))])

    def verifying(self) -> list[RemediationRow]:
        """Actions waiting for their metric to come back; stored, so a restart goes on verifying them."""
        return self.remediations(S.VERIFYING)

    def failed_since(self, action: str, target: str, since: float) -> bool:
        """Did `action` on `target` fail or time out after `since` (epoch s)?"""
        return bool(self._rows("action = ? AND target = ? AND status IN (?, ?) AND finished_at >= ?",
                               (action, target, *FAILURES, since)))

    def remediations(self, status: RemediationStatus | None = None) -> list[RemediationRow]:
        """Every remediation (or those with `status`), oldest first."""
        return self._rows("status = ?", (status,)) if status is not None else self._rows("TRUE")

    def _rows(self, where: str, params: Sequence[Any] = ()) -> list[RemediationRow]:
        rows = self.store.execute(
            "SELECT id, signal_id, rule, action, target, adapter, status, detail, started_at, finished_at, "
            f"verify_service, verify_metric, verify_by, rollback, requester, subject FROM remediations WHERE {where} "
            "ORDER BY started_at, id", params)
        return [RemediationRow(r[0], r[1], r[2], r[3], r[4], r[5], S(r[6]), r[7], r[8], r[9],
                               (r[10], r[11]) if r[10] else None, r[12], r[13], r[14] or "monitor", r[15] or "")
                for r in rows]

    def remediations_since(self, since: float) -> list[RemediationRow]:
        """The remediations started at or after `since` (epoch s), oldest first."""
        return self._rows("started_at >= ?", (since,))

    def remediation(self, attempt_id: str) -> RemediationRow | None:
        rows = self._rows("id = ?", (attempt_id,))
        return rows[0] if rows else None

    def record_handoff(self, source_id: str, summary: str, diagnostics: dict[str, Any], now: float) -> None:
        self.store.transaction([("INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (self.new_id(), source_id, "", MONITOR_USER, "engineering", summary,
                            json.dumps(diagnostics, default=str), "open", now))])

    # -- problems that come back after remediation ---------------------------------------------------

    def record_recurrence(self, service: str, metric: str, at: float, window_s: float,
                          signal_id: str | None, deployed_at: float | None = None) -> Recurrence | None:
        """The problem on (service, metric) is seen again at `at` (epoch s): if the last remediation run for a
        signal of it (the monitor's or an alert's; a chat's answers a user, not a detected problem) was verified as
        fixing it at most `window_s` before, it failed after all. Its row turns `failed` (finished at `at`, the
        detail saying why, so the breaker and `failed_since` count it) and the recurrence is kept, once however
        many signals report the return. Not if the service ran a new version after the fix was verified
        (`deployed_at`, epoch s): a second bad release after a rollback is a new fault, and the rollback worked.
        Returns it, or None when nothing verified came undone."""
        executed = ", ".join(f"'{s}'" for s in EXECUTED)
        rows = self.store.execute(
            "SELECT id, status, finished_at FROM remediations WHERE verify_service = ? AND verify_metric = ? "
            f"AND signal_id IS NOT NULL AND status IN ({executed}) ORDER BY started_at DESC, id DESC LIMIT 1",
            (service, metric))
        if not rows or rows[0][1] != S.SUCCEEDED or rows[0][2] is None:
            return None
        remediation_id, _, verified_at = rows[0]
        if not verified_at <= at <= verified_at + window_s:
            return None
        if deployed_at is not None and verified_at < deployed_at <= at:
            return None
        note = f"; came back {at - verified_at:.0f} s after it was verified: counted as a failure"
        try:
            self.store.transaction(
                [("INSERT INTO recurrences VALUES (?, ?, ?, ?, ?, ?)",
                  (remediation_id, service, metric, verified_at, at, signal_id))],
                guard=("UPDATE remediations SET status = ?, finished_at = ?, detail = detail || ? "
                       "WHERE id = ? AND status = ? RETURNING id",
                       (S.FAILED, at, note, remediation_id, S.SUCCEEDED), "already counted as come back"))
        except ConflictError:
            return None  # another signal of the same return counted it a moment ago
        return self._recurrences("x.remediation_id = ?", (remediation_id,))[0]

    def recurrence_streak(self, service: str, metric: str, since: float = 0.0) -> list[Recurrence]:
        """How the problem on (service, metric) came back in a row, oldest first: the remediations run for its
        signals that started after `since`, from the newest back to the last one that held (verified and not come
        back) or failed outright (that one already went to a person)."""
        finished = ", ".join(f"'{s}'" for s in FINISHED)
        rows = self.store.execute(
            "SELECT r.id, x.remediation_id IS NOT NULL FROM remediations r "
            "LEFT JOIN recurrences x ON x.remediation_id = r.id WHERE r.verify_service = ? AND r.verify_metric = ? "
            f"AND r.signal_id IS NOT NULL AND r.status IN ({finished}) AND r.started_at > ? "
            "ORDER BY r.started_at DESC, r.id DESC LIMIT 200",
            (service, metric, since))
        streak = []
        for remediation_id, recurred in rows:
            if not recurred:
                break
            streak.append(remediation_id)
        if not streak:
            return []
        marks = ", ".join("?" * len(streak))
        return self._recurrences(f"x.remediation_id IN ({marks})", streak)

    def recurring_handoff(self, service: str, metric: str) -> tuple[str | None, float]:
        """The "keeps coming back" hand-off of the problem on (service, metric): the id of the open one (None if
        none is open), and when the latest closed one was made (0 if none): returns before it are not counted
        again."""
        rows = self.store.execute(
            "SELECT arg_max(id, created_at) FILTER (WHERE status = 'open'), "
            "coalesce(max(created_at) FILTER (WHERE status <> 'open'), 0) FROM handoffs "
            f"WHERE user_id = ? AND json_extract_string(diagnostics, '$.{RECURRING}.service') = ? "
            f"AND json_extract_string(diagnostics, '$.{RECURRING}.metric') = ?", (MONITOR_USER, service, metric))
        return (rows[0][0], float(rows[0][1])) if rows else (None, 0.0)

    def record_recurring_handoff(self, service: str, metric: str, source_id: str, summary: str,
                                 diagnostics: dict[str, Any], now: float) -> str | None:
        """Hand the problem on (service, metric) that keeps coming back to engineering, unless its hand-off is
        still open: one per problem however often it returns, checked and written in one statement. Returns the
        new hand-off's id, or None when one is open already."""
        handoff_id = self.new_id()
        body = json.dumps({RECURRING: {"service": service, "metric": metric}, **diagnostics}, default=str)
        with self._lock:
            written = self.store.transaction([(
                "INSERT INTO handoffs (id, decision_id, conversation_id, user_id, team, summary, diagnostics, status, "
                "created_at) SELECT ?, ?, '', ?, 'engineering', ?, ?, 'open', ? WHERE NOT EXISTS (SELECT 1 FROM "
                f"handoffs WHERE status = 'open' AND user_id = ? AND json_extract_string(diagnostics, "
                f"'$.{RECURRING}.service') = ? AND json_extract_string(diagnostics, '$.{RECURRING}.metric') = ?) "
                "RETURNING id",
                (handoff_id, source_id, MONITOR_USER, summary, body, now, MONITOR_USER, service, metric))])
        return handoff_id if written and written[0] else None

    def _recurrences(self, where: str, params: Sequence[Any]) -> list[Recurrence]:
        rows = self.store.execute(
            "SELECT x.remediation_id, r.action, r.target, r.rule, r.requester, x.service, x.metric, r.started_at, "
            "x.verified_at, x.recurred_at, r.detail, x.signal_id FROM recurrences x "
            f"JOIN remediations r ON r.id = x.remediation_id WHERE {where} ORDER BY r.started_at, r.id", params)
        return [Recurrence(r[0], r[1], r[2], r[3], r[4] or MONITOR_USER, r[5], r[6], r[7], r[8], r[9], r[10], r[11])
                for r in rows]
