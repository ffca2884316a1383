"""When an action may run, whoever asked for it (a conversation, an alert, the monitor): dry-run, joining an
action already under way, cooldown, rate limit, concurrency cap and circuit breaker.

A decision is a pure function of stored state and the request (`decide`): the state is read from a `Ledger`
(the DuckDB one is in `engine/ledger.py`; a Redis or PostgreSQL one only has to answer the same questions),
so a restart, or a second process sharing the ledger, sees the same cooldowns, rates and breaker.

The circuit breaker needs no state of its own: it is *open* when the last `breaker_failures` finished actions
all failed and the last of them is younger than `breaker_cooloff_s`; *half-open* after that cool-off, letting
exactly one trial through; a trial that succeeds closes it (the run of failures ends), one that fails opens it
again (a newer failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from core.settings import Settings


class Breaker(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class SafetyPolicy:
    """The limits unattended remediation runs under (see README, *Safety*)."""

    dry_run: bool = False
    cooldown_s: float = 120.0
    rate_limit: int = 10
    rate_window_s: float = 3600.0
    max_concurrent: int = 2
    breaker_failures: int = 3
    breaker_cooloff_s: float = 900.0
    action_timeout_s: float = 60.0
    verify_timeout_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SafetyPolicy:
        return cls(dry_run=settings.dry_run, cooldown_s=settings.remediation_cooldown_s,
                   rate_limit=settings.rate_limit, rate_window_s=settings.rate_window_s,
                   max_concurrent=settings.max_concurrent_actions, breaker_failures=settings.breaker_failures,
                   breaker_cooloff_s=settings.breaker_cooloff_s, action_timeout_s=settings.remediation_timeout_s,
                   verify_timeout_s=settings.verify_timeout_s)


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


JOINED = "joined"

@dataclass(frozen=True)
class Verdict:
    status: str  # allowed | skipped | dry_run | joined
    reason: str
    breaker: Breaker
    joined: str | None = None  # the attempt this request joins instead of starting another
    by: str = ""  # who asked for the action a cooldown or a join refers to

    @property
    def allowed(self) -> bool:
        return self.status == "allowed"


def breaker_state(policy: SafetyPolicy, view: SafetyView, now: float) -> Breaker:
    if view.trailing_failures < policy.breaker_failures or view.last_failure_at is None:
        return Breaker.CLOSED
    if now - view.last_failure_at < policy.breaker_cooloff_s:
        return Breaker.OPEN
    return Breaker.HALF_OPEN


def decide(policy: SafetyPolicy, view: SafetyView, now: float) -> Verdict:
    """May the action run now? The same action on the same target still under way is joined, never started
    twice: joining runs nothing, so it comes before every other check. The checks run even in dry-run, so a dry
    run reports what would be refused."""
    breaker = breaker_state(policy, view, now)
    if view.under_way is not None and not policy.dry_run:
        return Verdict(JOINED, "the same action on the same target is already under way", breaker,
                       view.under_way, view.last_requester)
    refusal = _refusal(policy, view, now, breaker)
    if refusal:
        return Verdict("skipped", refusal, breaker, by=view.last_requester if refusal.startswith("cooling") else "")
    if policy.dry_run:
        return Verdict("dry_run", "dry run: planned and recorded, not run", breaker)
    return Verdict("allowed", "trial action while the breaker is half-open" if breaker is Breaker.HALF_OPEN
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

    def try_begin(self, attempt: Attempt, policy: SafetyPolicy, now: float) -> Verdict:
        """Decide and record atomically: two callers can never both take the last slot."""
        ...

    def finish(self, attempt_id: str, status: str, detail: str, now: float, verify_by: float | None = None) -> None:
        ...


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
