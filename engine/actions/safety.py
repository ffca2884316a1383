"""When an action may run, whoever asked for it (a conversation, an alert, the monitor): identity for actions on
an account, dry-run, joining an action already under way, cooldown, rate limit, concurrency cap and circuit
breaker.

A decision is a pure function of stored state and the request (`decide`): the state is read from a
`SafetyLedger` (the DuckDB one is `engine.store.healing.HealingLedger`; a Redis or PostgreSQL one only has to
answer the same questions), so a restart, or a second process sharing the ledger, sees the same cooldowns,
rates and breaker.

The circuit breaker needs no state of its own: it is *open* when the last `breaker_failures` finished actions
all failed and the last of them is younger than `breaker_cooloff_s`; *half-open* after that cool-off, letting
exactly one trial through; a trial that succeeds closes it (the run of failures ends), one that fails opens it
again (a newer failure).

A problem that comes back after a remedy was verified as having fixed it (the same service and metric, within
`recurrence_window_s` of the verification) makes that remedy a failure after all: the ledger marks it `failed`
(`HealingLedger.record_recurrence`), so the breaker and the healing rules' `failed_recently` count it like any
other. After `recurrence_limit` returns in a row the problem `keeps_coming_back`: its remedies stop and one
hand-off takes it to a person until it is closed (engine/healing/healer.py, rules/builtin/healing.yaml).

An action that changes the asking user's account (`ActionSpec.account`: unlocking it, resending its e-mail,
signing it out, reconnecting its integrations, resetting its settings) runs only when the host app vouched for
who is asking (`verified`); anyone can type "unlock my account" into a chat. That refusal comes before every
other check, dry-run included, and its reason starts with `IDENTITY_NOT_VERIFIED`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from core.settings import Settings
from engine.actions.catalogue import ACTIONS
from engine.store.healing import Attempt, RemediationStatus, SafetyView

IDENTITY_NOT_VERIFIED = "identity not verified"  # how the reason of an identity refusal begins (then ": why")


class Breaker(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class SafetyPolicy:
    """The limits unattended remediation runs under (see docs/self-healing.md, *Safety*)."""

    dry_run: bool = False
    cooldown_s: float = 120.0
    rate_limit: int = 10
    rate_window_s: float = 3600.0
    max_concurrent: int = 2
    breaker_failures: int = 3
    breaker_cooloff_s: float = 900.0
    action_timeout_s: float = 60.0
    verify_timeout_s: float = 300.0
    recurrence_window_s: float = 3600.0
    recurrence_limit: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> SafetyPolicy:
        return cls(dry_run=settings.dry_run, cooldown_s=settings.remediation_cooldown_s,
                   rate_limit=settings.rate_limit, rate_window_s=settings.rate_window_s,
                   max_concurrent=settings.max_concurrent_actions, breaker_failures=settings.breaker_failures,
                   breaker_cooloff_s=settings.breaker_cooloff_s, action_timeout_s=settings.remediation_timeout_s,
                   verify_timeout_s=settings.verify_timeout_s, recurrence_window_s=settings.recurrence_window_s,
                   recurrence_limit=settings.recurrence_limit)


class VerdictStatus(StrEnum):
    ALLOWED = "allowed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    JOINED = "joined"


JOINED = VerdictStatus.JOINED


@dataclass(frozen=True)
class Verdict:
    status: VerdictStatus
    reason: str
    breaker: Breaker
    joined: str | None = None  # the attempt this request joins instead of starting another
    by: str = ""  # who asked for the action a cooldown or a join refers to

    @property
    def allowed(self) -> bool:
        return self.status is VerdictStatus.ALLOWED

    @property
    def unverified(self) -> bool:
        """Refused because the action changes an account and nobody vouched for who is asking."""
        return self.status is VerdictStatus.SKIPPED and self.reason.startswith(IDENTITY_NOT_VERIFIED)


def breaker_state(policy: SafetyPolicy, view: SafetyView, now: float) -> Breaker:
    if view.trailing_failures < policy.breaker_failures or view.last_failure_at is None:
        return Breaker.CLOSED
    if now - view.last_failure_at < policy.breaker_cooloff_s:
        return Breaker.OPEN
    return Breaker.HALF_OPEN


def keeps_coming_back(policy: SafetyPolicy, recurrences: int, handed_off: bool) -> bool:
    """Has a problem come back after remediation too often for another remedy: `recurrences` times in a row (each
    within `recurrence_window_s` of a verified fix) reaching `recurrence_limit`, or is it with a person already
    (`handed_off`: its "keeps coming back" hand-off is still open)?"""
    return handed_off or recurrences >= policy.recurrence_limit


def decide(policy: SafetyPolicy, view: SafetyView, now: float, *, action: str = "",
           verified: bool = False) -> Verdict:
    """May `action` run now? An action on an account runs only when the host app `verified` who is asking: that
    is checked first, so an unverified asker neither joins nor plans such an action. The same action on the same
    target still under way is joined, never started twice: joining runs nothing, so it comes before the other
    checks. The checks run even in dry-run, so a dry run reports what would be refused."""
    breaker = breaker_state(policy, view, now)
    spec = ACTIONS.get(action)
    if spec is not None and spec.account and not verified:
        return Verdict(VerdictStatus.SKIPPED, f"{IDENTITY_NOT_VERIFIED}: {action} changes the asking user's "
                       "account, and the host app did not vouch for who is asking", breaker)
    if view.under_way is not None and not policy.dry_run:
        return Verdict(JOINED, "the same action on the same target is already under way", breaker,
                       view.under_way, view.last_requester)
    refusal = _refusal(policy, view, now, breaker)
    if refusal:
        by = view.last_requester if refusal.startswith("cooling") else ""
        return Verdict(VerdictStatus.SKIPPED, refusal, breaker, by=by)
    if policy.dry_run:
        return Verdict(VerdictStatus.DRY_RUN, "dry run: planned and recorded, not run", breaker)
    return Verdict(VerdictStatus.ALLOWED, "trial action while the breaker is half-open" if breaker is Breaker.HALF_OPEN
                   else "allowed", breaker)


def _refusal(policy: SafetyPolicy, view: SafetyView, now: float, breaker: Breaker) -> str | None:
    if breaker is Breaker.OPEN:
        wait = policy.breaker_cooloff_s - (now - (view.last_failure_at or now))
        return (f"circuit breaker open: {view.trailing_failures} actions failed in a row; one trial in "
                f"{wait:.0f} s")
    if breaker is Breaker.HALF_OPEN and view.in_flight:
        return "circuit breaker half-open: a trial action is still running or being verified"
    if view.last_started_at is not None and now - view.last_started_at < policy.cooldown_s:
        ago = now - view.last_started_at
        return f"cooling down: ran {ago:.0f} s ago, may run again in {policy.cooldown_s - ago:.0f} s"
    if view.started_in_window >= policy.rate_limit:
        return f"rate limit: {view.started_in_window} actions in the last {policy.rate_window_s:.0f} s"
    if view.running >= policy.max_concurrent:
        return f"concurrency cap: {view.running} actions already running (cap {policy.max_concurrent})"
    return None


class SafetyLedger(Protocol):
    """The stored state safety decisions read, and the attempts they write."""

    def view(self, attempt: Attempt, now: float, policy: SafetyPolicy) -> SafetyView: ...

    def try_begin(self, attempt: Attempt, policy: SafetyPolicy, now: float,
                  decide: Callable[[SafetyView], Verdict]) -> Verdict:
        """Read the state, `decide` and record atomically: two callers can never both take the last slot."""
        ...

    def finish(self, attempt_id: str, status: RemediationStatus, detail: str, now: float,
               verify_by: float | None = None) -> None:
        ...


def begin(ledger: SafetyLedger, attempt: Attempt, policy: SafetyPolicy, now: float, verified: bool = False) -> Verdict:
    """Decide on `attempt` against the ledger's stored state and record it, in one step (see `decide`; `verified`:
    the host app vouched for the user the attempt acts for)."""
    return ledger.try_begin(attempt, policy, now,
                            lambda view: decide(policy, view, now, action=attempt.action, verified=verified))
