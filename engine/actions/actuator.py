"""One gate for every remediation, whoever asks for it: a conversation, an Alertmanager alert or the monitor.

Each request passes the same checks on the same stored state (`engine/actions/safety.py` decides, the ledger
records): dry-run, joining the same action already under way on the same target, cooldown per (action, target),
rate limit, concurrency cap and circuit breaker. An allowed action runs on its adapter under a time limit and is
then verified: at once when a person is waiting for the answer (`settle_now`), else on the monitor's later ticks
(`Healer.verify`, which settles it here). An action that fails verification is rolled back where it can be and,
unless the requester's own rules decide what comes next (a conversation), handed to engineering. Every step is a
row of one table, `remediations`, with who asked.

A second request for an action still under way joins it: it waits for that action's result and reports it, so
four users reporting the same slow search at once get one `analyze_tables`, and each is told the truth about it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from core.errors import RemediationError
from engine.actions.catalogue import ACTIONS, param_problems, refusal_of_params
from engine.actions.safety import JOINED, Attempt, SafetyPolicy, begin
from engine.infra.topology import Topology
from engine.store.healing import HealingLedger, RemediationRow, RemediationStatus

ENGINEERING = "engineering"
MONITOR = "monitor"
# The outcome of an action on an account refused because nobody vouched for who is asking. Its `remediations` row
# is `skipped` like every refusal of the gate; the outcome says why, so the conversation's rules and reply can
# tell "not allowed for this asker" (the user can act themselves) from "held back for now" or "failed".
UNVERIFIED = "unverified"
log = logging.getLogger("firstline.actuator")


def conversation_requester(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def alert_requester(fingerprint: str) -> str:
    return f"alert:{fingerprint}"


class Executor(Protocol):
    """Runs and undoes actions on the infrastructure (the adapter router)."""

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str: ...

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None: ...

    def adapter_name(self, action: str) -> str: ...


@dataclass(frozen=True)
class ActionRequest:
    """A remediation someone asks for. `requester` is `conversation:<id>`, `alert:<fingerprint>` or `monitor`;
    `subject` the user a per-user action acts for; `verified` that the host app vouched for `subject` being who
    is asking (a signed user id), without which an action on an account is refused (`safety.decide`); `verify`
    the (service, metric) that must be within its limit afterwards (every metric of the target when None)."""

    action: str
    target: str
    requester: str
    explain: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    verify: tuple[str, str] | None = None
    rule: str | None = None
    signal_id: str | None = None
    subject: str = ""
    settle_now: bool = False  # a person waits for the answer: verify at once rather than on later monitor ticks
    hand_off_on_failure: bool = True  # False where the requester's own rules decide what follows a failure
    verified: bool = False  # the host app vouched for `subject`; alerts and the monitor never do


@dataclass(frozen=True)
class ActionOutcome:
    """What became of a request. `status`: succeeded, failed, timed_out, verifying (ran; its metric is watched
    on the monitor's ticks), skipped (refused by the gate; `detail` says why), unverified (an action on an account
    refused because nobody vouched for the asker; `UNVERIFIED`) or dry_run. `joined` is True when
    the request joined an action already under way; `by` names who asked for the action a join or a cooldown
    refers to."""

    request: ActionRequest
    attempt_id: str | None
    status: str  # a RemediationStatus, the refusal's VerdictStatus, or UNVERIFIED
    detail: str
    started_at: float
    finished_at: float
    joined: bool = False
    by: str = ""

    @property
    def by_someone_else(self) -> bool:
        """The action this outcome reports was asked for by another requester (another user, an alert)."""
        return bool(self.by) and self.by != self.request.requester


@dataclass(frozen=True)
class Event:
    """One step of the timeline, for `firstline heal` and the benchmark."""

    at: float
    kind: str  # detected | acted | verified | verification_failed | rolled_back | handoff
    summary: str
    action: str | None = None
    target: str | None = None
    status: str | None = None


class Actuator:
    """The one way an action reaches the infrastructure."""

    def __init__(
        self,
        executor: Executor,
        ledger: HealingLedger,
        topology: Topology,
        policy: SafetyPolicy,
        observe: Callable[[], dict[str, dict[str, float]] | None],  # None: the telemetry cannot be read now
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.executor = executor
        self.ledger = ledger
        self.topology = topology
        self.policy = policy
        self.observe = observe
        self.clock = clock
        self.new_id = new_id
        self.on_event = on_event
        self._finished = threading.Condition()  # wakes requests that joined an action when it finishes

    def run(self, request: ActionRequest, dry_run: bool | None = None) -> ActionOutcome:
        """Pass the gate, then run, verify and record. Never raises for an action that fails: that is an
        outcome. `dry_run` overrides the policy's for this request (a `--dry-run` ask)."""
        started = self.clock()
        spec = ACTIONS.get(request.action)
        if spec is None:
            return ActionOutcome(request, None, RemediationStatus.FAILED, f"unknown action {request.action!r}", started,
                                 started)
        problems = param_problems(request.action, request.target, request.params, self.topology)
        if problems:
            # A rule filled a parameter from a fact (`replicas: "{metric.value}"`) with something no adapter should
            # run: refused before the gate, so it spends no cooldown or rate allowance and nothing odd is stored.
            reason = refusal_of_params(problems)
            log.warning("%s on %s (rule %s): %s", request.action, request.target, request.rule, reason)
            self._emit(Event(started, "acted", f"{request.action} on {request.target}: refused ({reason})",
                             request.action, request.target, RemediationStatus.FAILED))
            return ActionOutcome(request, None, RemediationStatus.FAILED, reason, started, started)
        if spec.per_user and not request.subject:
            request = replace(request, subject=request.requester)  # never one user's fix held back by another's
        policy = self.policy if dry_run is None else replace(self.policy, dry_run=dry_run)
        attempt = Attempt(self.new_id(), request.signal_id, request.rule, request.action, request.target,
                          dict(request.params), self.executor.adapter_name(request.action), request.verify,
                          request.requester, request.subject)
        verdict = begin(self.ledger, attempt, policy, started, verified=request.verified)
        if verdict.status == JOINED and verdict.joined is not None:
            return self._join(request, verdict.joined, verdict.by, started)
        if not verdict.allowed:
            # A refusal the monitor repeats every tick is recorded once: say nothing of the repeats.
            recorded = self.ledger.remediation(attempt.id) is not None
            if recorded:
                self._emit(Event(started, "acted", f"{request.action} on {request.target}: {verdict.status} "
                                 f"({verdict.reason})", request.action, request.target, verdict.status))
            status = UNVERIFIED if verdict.unverified else verdict.status
            return ActionOutcome(request, attempt.id if recorded else None, status, verdict.reason,
                                 started, self.clock(), by=verdict.by)
        try:
            status, detail = self._execute(attempt)
            return self._after(request, attempt, status, detail, started)
        finally:
            with self._finished:
                self._finished.notify_all()

    def settle(self, row: RemediationRow, verified: bool, detail: str, problem: str = "") -> str | None:
        """Finish an action that was waiting for verification: succeeded, or failed (`problem` says what is still
        wrong, for the engineers), rolled back where it can be and handed to engineering. Returns the rollback
        outcome of a failure (None when verified)."""
        now = self.clock()
        if verified:
            self.ledger.finish(row.id, RemediationStatus.SUCCEEDED, detail, now)
            return None
        rollback = self._undo(row.id, row.action, row.target, detail, now)
        self.hand_off(row.id, f"{row.action} on {row.target} {problem or 'failed verification'}; rollback: {rollback}",
                      {"action": row.action, "target": row.target, "verify": row.verify, "detail": detail,
                       "rollback": rollback, "requester": row.requester}, now)
        return rollback

    # -- running ------------------------------------------------------------------------------------

    def _after(self, request: ActionRequest, attempt: Attempt, status: RemediationStatus, detail: str,
               started: float) -> ActionOutcome:
        finished = self.clock()
        if status != RemediationStatus.SUCCEEDED:
            self.ledger.finish(attempt.id, status, detail, finished)
            if request.hand_off_on_failure:
                self.hand_off(attempt.id, f"{request.action} on {request.target} {status.replace('_', ' ')}: "
                              f"{detail}", {"action": request.action, "target": request.target, "status": status,
                                            "detail": detail, "requester": request.requester}, finished)
        elif not request.settle_now:
            status = RemediationStatus.VERIFYING
            self.ledger.finish(attempt.id, status, detail, finished, finished + self.policy.verify_timeout_s)
        else:
            telemetry = self.observe()
            problem = None if telemetry is None else self._verification_problem(request, telemetry)
            if telemetry is None and request.verify is not None:
                # Its metric cannot be read now: the monitor's next readings settle it, as for its own actions.
                status, detail = RemediationStatus.VERIFYING, f"{detail}; not verified yet: telemetry unreadable"
                self.ledger.finish(attempt.id, status, detail, finished, finished + self.policy.verify_timeout_s)
            elif problem is None:
                checked = "verified" if telemetry is not None else "not verified: telemetry unreadable"
                detail = f"{detail}; {checked}"
                self.ledger.finish(attempt.id, status, detail, finished)
            else:
                status, detail = RemediationStatus.FAILED, f"{detail}; verification failed: {problem}"
                rollback = self._undo(attempt.id, request.action, request.target, detail, finished)
                if request.hand_off_on_failure:
                    self.hand_off(attempt.id, f"{request.action} on {request.target}: {detail}; rollback: "
                                  f"{rollback}", {"action": request.action, "target": request.target,
                                                  "detail": detail, "rollback": rollback}, finished)
        self._emit(Event(finished, "acted", f"{request.action} on {request.target}: {status} "
                         f"(rule {request.rule}): {detail}", request.action, request.target, status))
        return ActionOutcome(request, attempt.id, status, detail, started, self.clock())

    def _execute(self, attempt: Attempt) -> tuple[RemediationStatus, str]:
        """Run on the adapter under the action timeout; a hang is recorded as timed_out, never waited for."""
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["detail"] = self.executor.execute(attempt.action, attempt.target, attempt.params)
            except RemediationError as error:
                result["error"] = str(error)
            except Exception as error:  # noqa: BLE001 - an adapter failure is a failed action, never a crash
                result["error"] = f"{type(error).__name__}: {error}"

        worker = threading.Thread(target=run, name=f"remedy-{attempt.action}", daemon=True)
        worker.start()
        worker.join(self.policy.action_timeout_s)
        if worker.is_alive():
            limit = self.policy.action_timeout_s
            return RemediationStatus.TIMED_OUT, f"no answer from the {attempt.adapter} adapter in {limit:g} s"
        if "error" in result:
            return RemediationStatus.FAILED, result["error"]
        return RemediationStatus.SUCCEEDED, str(result.get("detail", ""))

    def _join(self, request: ActionRequest, attempt_id: str, by: str, started: float) -> ActionOutcome:
        """Wait for the action under way to finish running (bounded by its own time limit), then report it."""
        deadline = time.monotonic() + self.policy.action_timeout_s + 1.0
        row = self.ledger.remediation(attempt_id)
        while row is not None and row.status == RemediationStatus.RUNNING and time.monotonic() < deadline:
            with self._finished:
                self._finished.wait(0.05)  # woken at once in this process; polls a ledger shared with another
            row = self.ledger.remediation(attempt_id)
        if row is None:
            return ActionOutcome(request, attempt_id, RemediationStatus.FAILED, "the action joined was not found",
                                 started, self.clock(), joined=True, by=by)
        status = row.status if row.status != RemediationStatus.RUNNING else RemediationStatus.TIMED_OUT
        ago = max(0.0, started - row.started_at)
        detail = f"joined {row.action} on {row.target} asked for {ago:.0f} s earlier by {row.requester}: {row.detail}"
        return ActionOutcome(request, attempt_id, status, detail, started, self.clock(), joined=True, by=by)

    def _verification_problem(self, request: ActionRequest, telemetry: Mapping[str, Mapping[str, float]]
                              ) -> str | None:
        everything = [(request.target, metric) for metric in telemetry.get(request.target, {})]
        checks = [request.verify] if request.verify else everything
        for service, metric in checks:
            value = telemetry.get(service, {}).get(metric)
            if value is not None and self.topology.is_unhealthy(service, metric, value):
                limit = self.topology.services[service].limits[metric]
                return f"{service} {metric} is {value:g} (limit {limit:g})"
        return None

    def _undo(self, attempt_id: str, action: str, target: str, detail: str, now: float) -> str:
        """Record a ran-but-did-not-work action as failed, take it back where it can be, and record how that went;
        returns the rollback outcome."""
        self.ledger.finish(attempt_id, RemediationStatus.FAILED, detail, now)
        rollback = self._rollback(action, target)
        self.ledger.set_rollback(attempt_id, rollback)
        return rollback

    def _rollback(self, action: str, target: str) -> str:
        try:
            undone = self.executor.undo(action, target, {})
        except RemediationError as error:
            outcome = f"rollback_failed: {error}"
        except Exception as error:  # noqa: BLE001 - a failed undo is reported, never a crash
            outcome = f"rollback_failed: {type(error).__name__}: {error}"
        else:
            outcome = "rolled_back" if undone else "not_reversible"
        self._emit(Event(self.clock(), "rolled_back", f"{action} on {target}: {outcome}", action, target,
                         outcome.split(":")[0]))
        return outcome

    def hand_off(self, source_id: str, summary: str, diagnostics: dict[str, Any], now: float) -> None:
        """A problem for engineering, recorded with what was found and told to the timeline."""
        self.ledger.record_handoff(source_id, summary, diagnostics, now)
        self._emit(Event(now, "handoff", f"handed to {ENGINEERING}: {summary}", status="created"))

    def _emit(self, event: Event) -> None:
        log.info("%s: %s", event.kind, event.summary)
        if self.on_event is not None:
            self.on_event(event)
