"""Each safety practice on its own: decisions are a function of stored state and the request."""

from pathlib import Path

import pytest

from engine.actions.catalogue import ACTIONS
from engine.actions.safety import (
    IDENTITY_NOT_VERIFIED,
    Attempt,
    Breaker,
    SafetyPolicy,
    SafetyView,
    begin,
    breaker_state,
    decide,
)
from engine.store import DuckDBStore
from engine.store.healing import HealingLedger
from tests.conftest import ManualClock

NOW = 10_000.0
POLICY = SafetyPolicy(cooldown_s=120, rate_limit=3, rate_window_s=600, max_concurrent=1, breaker_failures=2,
                      breaker_cooloff_s=300, action_timeout_s=60, verify_timeout_s=300)
QUIET = SafetyView(last_started_at=None, started_in_window=0, running=0, in_flight=0, trailing_failures=0,
                   last_failure_at=None)


def view(**changes) -> SafetyView:
    return SafetyView(**{**QUIET.__dict__, **changes})


def test_nothing_stored_means_allowed():
    assert decide(POLICY, QUIET, NOW).allowed


def test_dry_run_plans_but_does_not_run():
    verdict = decide(SafetyPolicy(dry_run=True), QUIET, NOW)
    assert verdict.status == "dry_run" and not verdict.allowed


def test_cooldown_per_action_and_target():
    assert decide(POLICY, view(last_started_at=NOW - 60), NOW).reason.startswith("cooling down")
    assert decide(POLICY, view(last_started_at=NOW - 121), NOW).allowed


def test_rate_limit_per_window():
    verdict = decide(POLICY, view(started_in_window=3), NOW)
    assert verdict.status == "skipped" and verdict.reason.startswith("rate limit")


def test_cap_on_concurrent_actions():
    assert decide(POLICY, view(running=1), NOW).reason.startswith("concurrency cap")


@pytest.mark.parametrize(("failures", "ago", "state"), [
    (1, 10, Breaker.CLOSED), (2, 10, Breaker.OPEN), (2, 299, Breaker.OPEN), (2, 300, Breaker.HALF_OPEN),
])
def test_circuit_breaker_states(failures, ago, state):
    assert breaker_state(POLICY, view(trailing_failures=failures, last_failure_at=NOW - ago), NOW) is state


def test_open_breaker_refuses_and_half_open_lets_one_trial_through():
    open_view = view(trailing_failures=2, last_failure_at=NOW - 10)
    assert decide(POLICY, open_view, NOW).reason.startswith("circuit breaker open")
    half_open = view(trailing_failures=2, last_failure_at=NOW - 400)
    assert decide(POLICY, half_open, NOW).allowed
    trial_running = view(trailing_failures=2, last_failure_at=NOW - 400, in_flight=1)
    assert decide(POLICY, trial_running, NOW).reason.startswith("circuit breaker half-open")


ACCOUNT_ACTIONS = ("unlock_account", "resend_email", "revoke_sessions", "reconnect_integration", "reset_user_settings")


def test_the_actions_on_an_account_are_the_five_that_change_it_and_all_act_for_one_user():
    assert {name for name, spec in ACTIONS.items() if spec.account} == set(ACCOUNT_ACTIONS)
    assert all(ACTIONS[name].per_user for name in ACCOUNT_ACTIONS)


@pytest.mark.parametrize("action", ACCOUNT_ACTIONS)
def test_an_action_on_an_account_runs_only_for_a_verified_identity(action):
    refused = decide(POLICY, QUIET, NOW, action=action)
    assert refused.status == "skipped" and refused.unverified
    assert refused.reason.startswith(f"{IDENTITY_NOT_VERIFIED}: {action}")
    assert decide(POLICY, QUIET, NOW, action=action, verified=True).allowed


@pytest.mark.parametrize("action", ["clear_user_cache", "resync_account", "restart_service", "kill_slow_queries"])
def test_actions_that_change_no_account_need_no_identity(action):
    verdict = decide(POLICY, QUIET, NOW, action=action)
    assert verdict.allowed and not verdict.unverified


def test_identity_is_checked_before_joining_and_in_dry_run_too():
    under_way = view(under_way="a1", last_requester="conversation:other")
    joined = decide(POLICY, under_way, NOW, action="unlock_account", verified=True)
    assert joined.status == "joined"
    refused = decide(POLICY, under_way, NOW, action="unlock_account")
    assert refused.unverified and refused.joined is None  # an unproven asker never hears another's result
    planned = decide(SafetyPolicy(dry_run=True), QUIET, NOW, action="reset_user_settings")
    assert planned.unverified
    assert decide(SafetyPolicy(dry_run=True), QUIET, NOW, action="reset_user_settings", verified=True).status == \
        "dry_run"
    # Other refusals are said as they are, not as identity ones.
    cooling = decide(POLICY, view(last_started_at=NOW - 60), NOW, action="unlock_account", verified=True)
    assert cooling.status == "skipped" and not cooling.unverified


# -- the same decisions on stored state ------------------------------------------------------------


def attempt(n: int, action: str = "restart_service", target: str = "api") -> Attempt:
    return Attempt(f"a{n}", None, "rule", action, target, {}, "simulated", ("api", "memory_pct"))


def ledger_at(path: Path, clock: ManualClock) -> tuple[DuckDBStore, HealingLedger]:
    store = DuckDBStore(path, clock)
    return store, HealingLedger(store)


def test_the_breaker_survives_a_restart(tmp_path):
    clock = ManualClock(NOW)
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)
    for n, target in enumerate(["api", "web"]):
        assert begin(ledger, attempt(n, target=target), POLICY, clock.now).allowed
        ledger.finish(f"a{n}", "failed", "boom", clock.now)
        clock.now += 1
    store.close()
    # A new process reads the same file: the breaker is open there too.
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)
    verdict = begin(ledger, attempt(9, target="cache", action="rebuild_cache"), POLICY, clock.now)
    assert verdict.breaker is Breaker.OPEN and verdict.status == "skipped"
    clock.now += 400
    trial = begin(ledger, attempt(10, target="cache", action="rebuild_cache"), POLICY, clock.now)
    assert trial.allowed and trial.breaker is Breaker.HALF_OPEN
    ledger.finish("a10", "succeeded", "ok", clock.now)
    assert begin(ledger, attempt(11, target="queue"), POLICY, clock.now).breaker is Breaker.CLOSED
    store.close()


def test_stored_cooldown_rate_and_concurrency(tmp_path):
    clock = ManualClock(NOW)
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)
    assert begin(ledger, attempt(1), POLICY, clock.now).allowed  # now running
    assert begin(ledger, attempt(2, target="web"), POLICY, clock.now).reason.startswith("concurrency cap")
    ledger.finish("a1", "succeeded", "ok", clock.now)
    assert begin(ledger, attempt(3), POLICY, clock.now).reason.startswith("cooling down")
    for n, target in enumerate(["web", "auth"], start=4):
        assert begin(ledger, attempt(n, target=target), POLICY, clock.now).allowed
        ledger.finish(f"a{n}", "succeeded", "ok", clock.now)
    assert begin(ledger, attempt(6, target="cache"), POLICY, clock.now).reason.startswith("rate limit")
    clock.now += 601
    assert begin(ledger, attempt(7, target="cache"), POLICY, clock.now).allowed
    store.close()


def test_a_request_from_anyone_cools_the_same_action_down_for_everyone(tmp_path):
    clock = ManualClock(NOW)
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)
    chat = Attempt("c1", None, "rule", "restart_service", "api", {}, "simulated", None, "conversation:x")
    assert begin(ledger, chat, POLICY, clock.now).allowed
    ledger.finish("c1", "succeeded", "ok", clock.now)
    verdict = begin(ledger, attempt(1), POLICY, clock.now + 5)
    assert verdict.reason.startswith("cooling down") and verdict.by == "conversation:x"
    store.close()


def test_the_same_action_under_way_is_joined_not_started_again(tmp_path):
    clock = ManualClock(NOW)
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)
    assert begin(ledger, attempt(1), POLICY, clock.now).allowed  # running
    second = begin(ledger, attempt(2), POLICY, clock.now)
    assert (second.status, second.joined) == ("joined", "a1")
    ledger.finish("a1", "verifying", "restarted", clock.now, clock.now + 300)
    assert begin(ledger, attempt(3), POLICY, clock.now + 200).joined == "a1"  # still being verified
    store.close()


def test_per_user_actions_are_gated_per_user(tmp_path):
    clock = ManualClock(NOW)
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)

    def unlock(n: int, user: str) -> Attempt:
        return Attempt(f"u{n}", None, "rule", "unlock_account", "auth", {}, "simulated", None,
                       f"conversation:{user}", user)

    # Identified users (the host app vouched for them): unlocking an account is theirs to ask for.
    assert begin(ledger, unlock(1, "ann"), POLICY, clock.now, verified=True).allowed
    ledger.finish("u1", "succeeded", "ok", clock.now)
    assert begin(ledger, unlock(2, "bob"), POLICY, clock.now, verified=True).allowed  # another user: not held back
    ledger.finish("u2", "succeeded", "ok", clock.now)
    assert begin(ledger, unlock(3, "ann"), POLICY, clock.now, verified=True).reason.startswith("cooling down")
    # Per-user actions do not use up the allowance of actions on whole services.
    assert begin(ledger, attempt(4), POLICY, clock.now).allowed
    store.close()


def test_an_unverified_account_action_is_refused_and_recorded(tmp_path):
    clock = ManualClock(NOW)
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)
    unlock = Attempt("u1", None, "rule", "unlock_account", "auth", {}, "simulated", None, "conversation:c1", "zoe")
    assert begin(ledger, unlock, POLICY, clock.now).unverified
    (row,) = ledger.remediations()
    assert (row.action, row.status, row.subject) == ("unlock_account", "skipped", "zoe")
    assert row.detail.startswith(IDENTITY_NOT_VERIFIED)
    # The refusal is no attempt: it neither cools the action down nor counts for the verified owner.
    assert begin(ledger, Attempt("u2", None, "rule", "unlock_account", "auth", {}, "simulated", None,
                                 "conversation:c2", "zoe"), POLICY, clock.now, verified=True).allowed
    store.close()


def test_a_repeated_refusal_is_recorded_once(tmp_path):
    clock = ManualClock(NOW)
    store, ledger = ledger_at(tmp_path / "f.duckdb", clock)
    begin(ledger, attempt(1), SafetyPolicy(dry_run=True), clock.now)
    clock.now += 15
    begin(ledger, attempt(2), SafetyPolicy(dry_run=True), clock.now)
    assert [r.status for r in ledger.remediations()] == ["dry_run"]
    store.close()
