"""One gate for every remediation: the chat, alerts and the monitor share cooldowns, the breaker and what is under
way; requests that arrive together run one action, and every requester is told the truth about it."""

import threading
import time

from engine.actions.actuator import ActionRequest, conversation_requester
from engine.actions.safety import Attempt, begin
from engine.store.healing import AlertRecord, RemediationStatus

SLOW = "The dashboard is loading really slowly"


class HeldExecutor:
    """The real adapters, except that every action waits until the test lets it finish: requests that arrive
    while it runs are the ones that must join it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.calls: list[tuple[str, str]] = []

    def execute(self, action, target, params):
        self.calls.append((action, target))
        assert self.release.wait(20), "the test never let the action finish"
        return self.inner.execute(action, target, params)

    def undo(self, action, target, params):
        return self.inner.undo(action, target, params)

    def adapter_name(self, action):
        return self.inner.adapter_name(action)


def held(parts) -> HeldExecutor:
    executor = HeldExecutor(parts.healing.router)
    parts.healing.actuator.executor = executor  # the chat's and the monitor's actuator: one object
    assert parts.assistant.actuator is parts.healing.actuator
    return executor


def wait_for(condition, what: str, limit_s: float = 20.0) -> None:
    """Wait for a state another thread reaches (not for a length of time)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def remediations(parts, status=None):
    return parts.healing.ledger.remediations(status)


def in_threads(*calls):
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def run(i, call):
        try:
            results[i] = call()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, results, errors


def joined_count(parts) -> int:
    return len(remediations(parts, RemediationStatus.JOINED))


def test_four_users_reporting_the_same_problem_at_once_get_one_action_and_the_truth(chat):
    executor = held(chat)
    threads, answers, errors = in_threads(*[lambda u=u: chat.assistant.answer(SLOW, u) for u in "abcd"])
    wait_for(lambda: len(executor.calls) == 1 and joined_count(chat) == 3, "one action running, three joined")
    executor.release.set()
    for thread in threads:
        thread.join()
    assert not errors
    assert executor.calls == [("kill_slow_queries", "database")]
    ran = [r for r in remediations(chat) if r.status != "joined"]
    assert [(r.action, r.target, r.status) for r in ran] == [("kill_slow_queries", "database", "succeeded")]
    first = next(a for a in answers.values() if not a.reply.startswith("Someone else"))
    for answer in answers.values():
        assert [(a.name, a.status) for a in answer.actions] == [("kill_slow_queries", "succeeded")]
        assert "already took care" not in answer.reply
    others = [a for a in answers.values() if a is not first]
    assert len(others) == 3 and all(a.reply.startswith("Someone else reported") for a in others)
    assert {r.requester for r in remediations(chat)} == {conversation_requester(a.conversation_id)
                                                         for a in answers.values()}


def test_the_same_message_three_times_in_one_conversation_runs_one_action(chat):
    executor = held(chat)
    chat.assistant.store.start_conversation("c1", "ann", "web")
    threads, answers, errors = in_threads(*[lambda: chat.assistant.answer(SLOW, "ann", "c1")] * 3)
    wait_for(lambda: len(executor.calls) == 1 and joined_count(chat) == 2, "one action running, two joined")
    executor.release.set()
    for thread in threads:
        thread.join()
    assert not errors and executor.calls == [("kill_slow_queries", "database")]
    replies = sorted(a.reply for a in answers.values())
    assert sum(r.startswith("I was already on this one") for r in replies) == 2  # never "someone else"
    assert not any("Someone else" in r for r in replies)


def test_a_chat_remedy_beside_an_alert_for_the_same_target_runs_once(chat):
    executor = held(chat)
    healing = chat.healing
    alert = AlertRecord("fp1", "2026-11-29T00:00:00Z", "firing", "SlowQueries", "database", "slow_queries",
                        {"alertname": "SlowQueries", "service": "database", "metric": "slow_queries"}, {})
    healing.ledger.record_alerts([alert], time.time())
    threads, _, errors = in_threads(healing.monitor.tick)
    wait_for(lambda: len(executor.calls) == 1, "the alert's action running")
    answer_box = {}
    chat_thread = threading.Thread(target=lambda: answer_box.setdefault("a", chat.assistant.answer(SLOW, "bo")))
    chat_thread.start()
    wait_for(lambda: joined_count(chat) == 1, "the chat joining the alert's action")
    executor.release.set()
    for thread in [*threads, chat_thread]:
        thread.join()
    assert not errors and executor.calls == [("kill_slow_queries", "database")]
    (ran,) = [r for r in remediations(chat) if r.status != "joined"]
    assert ran.requester == "alert:fp1" and ran.status == "verifying"  # the monitor verifies on later ticks
    answer = answer_box["a"]
    assert [(a.name, a.status) for a in answer.actions] == [("kill_slow_queries", "verifying")]
    assert answer.reply.startswith("This is already being fixed")


def test_a_breaker_opened_by_the_monitor_refuses_a_chat_remediation(chat):
    ledger, policy = chat.healing.ledger, chat.healing.actuator.policy
    now = time.time()
    for n in range(policy.breaker_failures):
        attempt = Attempt(f"m{n}", None, "rule", "restart_service", f"service-{n}", {}, "simulated", None)
        assert begin(ledger, attempt, policy, now).allowed
        ledger.finish(f"m{n}", "failed", "pool did not come back", now)
    answer = chat.assistant.answer(SLOW, "cy")
    assert (answer.actions[0].name, answer.actions[0].status) == ("kill_slow_queries", "skipped")
    assert answer.actions[0].detail.startswith("circuit breaker open")
    assert chat.infrastructure.faults()  # nothing ran
    assert "paused for safety" in answer.reply


def test_a_chat_remedy_cools_the_monitor_down_and_the_other_way_round(chat):
    answer = chat.assistant.answer(SLOW, "di")
    assert [(a.name, a.status) for a in answer.actions] == [("kill_slow_queries", "succeeded")]
    monitor_request = ActionRequest("kill_slow_queries", "database", "monitor")
    refused = chat.healing.actuator.run(monitor_request)
    assert refused.status == "skipped" and refused.detail.startswith("cooling down")
    assert refused.by == conversation_requester(answer.conversation_id) and refused.by_someone_else


def test_a_fix_another_user_just_had_is_not_called_mine(chat):
    first = chat.assistant.answer(SLOW, "ed")
    chat.infrastructure.inject("slow_queries")  # back at once: the cooldown holds the next request back
    second = chat.assistant.answer(SLOW, "flo")
    assert (second.actions[0].name, second.actions[0].status) == ("kill_slow_queries", "skipped")
    assert "already took care" not in second.reply and second.reply.startswith("Someone else reported this")
    mine = chat.assistant.answer(SLOW, "ed", first.conversation_id)
    assert mine.reply.startswith("I already took care of this")


def test_parameters_a_rule_filled_badly_are_refused_before_the_gate_and_never_stored(chat):
    # A rule may fill a parameter from a fact (`replicas: "{metric.value}"`): an infinite, fractional, negative or
    # unknown one is refused without running, without spending the target's cooldown, and nothing is written.
    actuator = chat.healing.actuator
    for params in ({"replicas": float("inf")}, {"replicas": 2.5}, {"replicas": -1}, {"replicas": float("nan")},
                   {"force": True}):
        refused = actuator.run(ActionRequest("scale_out", "api", "monitor", params=params, rule="made_up"))
        assert refused.status == RemediationStatus.FAILED and refused.attempt_id is None
        assert refused.detail.startswith("refusing the parameters:"), refused.detail
    assert remediations(chat) == []
    ran = actuator.run(ActionRequest("scale_out", "api", "monitor", params={"replicas": 3}))
    assert ran.status != "skipped"  # the refusals above held nothing back
