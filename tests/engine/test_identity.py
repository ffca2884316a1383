"""Remedies that change a user's account run only for a user the host app vouches for; an unverified user is told
what they can do themselves, nothing is handed to engineering for it, and everything else works for anyone."""

import pytest

from engine.actions.safety import IDENTITY_NOT_VERIFIED
from engine.chat.dialogue import Stage
from engine.chat.voice import Voice
from tests.conftest import build_parts, make_settings
from tests.engine.test_assistant import rules_folder

LOCKOUT = "account_locked_after_attempts"
# Written for this test, not taken from the playbook's examples.
LOCKED_OUT = (
    "my login is blocked after a bunch of failed password tries",
    "it won't let me sign in any more, says the account is locked because of too many wrong passwords",
    "I fat-fingered my password a few times and now the account is locked, can you lift it?",
)


def operations(parts, action: str) -> list:
    """The simulated infrastructure's log of what the adapter really ran."""
    return [op for op in parts.infrastructure.operations() if op[1] == action]


def self_service(parts, playbook: str, action: str) -> str:
    remedy = next(r for r in parts.assistant.knowledge.playbooks[playbook].remedies if r.action == action)
    assert remedy.self_service, f"{playbook}: the {action} remedy has no self_service text"
    return remedy.self_service.format_map({"product": parts.assistant.voice.product})


def handoffs(parts) -> int:
    return parts.store.execute("SELECT count(*) FROM handoffs")[0][0]


def lockouts_also(tmp_path, knowledge, action: str, target: str, why: str):
    """Parts whose rules also run `action` on `target` for a lockout (a rule file written for the test)."""
    extra = f"""
rules:
  - name: lockouts_also_{action}
    description: For this test, a lockout also gets {why}.
    salience: 200
    when:
      all:
        - match: {{playbook: {LOCKOUT}, band: answer}}
    then:
      - remediate: {{name: {action}, target: {target}}}
"""
    return build_parts(make_settings(tmp_path, rules_dir=rules_folder(tmp_path, extra)), knowledge=knowledge)


@pytest.mark.parametrize("text", LOCKED_OUT)
def test_an_unverified_user_is_told_what_to_do_and_nothing_is_unlocked(parts, text):
    answer = parts.assistant.answer(text, "anon", channel="web")
    assert (answer.decision, answer.playbook) == ("resolve", LOCKOUT)
    assert [(a.name, a.status) for a in answer.actions] == [("unlock_account", "unverified")]
    assert operations(parts, "unlock_account") == []  # the adapter was never called
    (row,) = parts.store.execute("SELECT action, status, detail, subject, requester FROM remediations")
    assert row[:2] == ("unlock_account", "skipped") and row[2].startswith(f"{IDENTITY_NOT_VERIFIED}:")
    assert row[3] == "anon" and row[4] == f"conversation:{answer.conversation_id}"
    assert parts.store.execute("SELECT name, status FROM actions") == [("unlock_account", "unverified")]
    # Said truthfully: what they can do themselves, and never that it was done.
    assert self_service(parts, LOCKOUT, "unlock_account") in answer.reply
    assert "can't confirm" in answer.reply
    assert "I lifted" not in answer.reply and "Done" not in answer.reply  # the playbook's "I {done}", "Done: I {done}"
    assert "engineer" not in answer.reply
    assert handoffs(parts) == 0 and not any(a.name == "handoff" for a in answer.actions)


def test_a_verified_user_gets_their_account_unlocked(parts):
    answer = parts.assistant.answer(LOCKED_OUT[0], "vera", channel="web", verified=True)
    assert [(a.name, a.status) for a in answer.actions] == [("unlock_account", "succeeded")]
    assert len(operations(parts, "unlock_account")) == 1
    (row,) = parts.store.execute("SELECT status, subject FROM remediations")
    assert row == ("succeeded", "vera")
    assert "lifted the sign-in lock" in answer.reply
    assert self_service(parts, LOCKOUT, "unlock_account") not in answer.reply


def test_an_unverified_refusal_does_not_hold_back_the_owner_once_verified(parts):
    parts.assistant.answer(LOCKED_OUT[1], "sam")
    verified = parts.assistant.answer(LOCKED_OUT[1], "sam", verified=True)
    assert [(a.name, a.status) for a in verified.actions] == [("unlock_account", "succeeded")]


def test_the_dialogue_carries_the_identity_into_the_turn(parts):
    (anonymous,) = parts.dialogue.turn(LOCKED_OUT[2], "dee").answer.actions
    assert (anonymous.name, anonymous.status) == ("unlock_account", "unverified")
    (vouched,) = parts.dialogue.turn(LOCKED_OUT[2], "eli", verified=True).answer.actions
    assert (vouched.name, vouched.status) == ("unlock_account", "succeeded")
    assert len(operations(parts, "unlock_account")) == 1


def test_service_remedies_still_run_for_an_unverified_user(tmp_path, knowledge):
    parts = build_parts(make_settings(tmp_path, simulation_faults=["slow_queries"]), knowledge=knowledge)
    try:
        answer = parts.assistant.answer("The dashboard is loading really slowly", "anon")
        assert [(a.name, a.status) for a in answer.actions] == [("kill_slow_queries", "succeeded")]
        assert parts.infrastructure.faults() == []
    finally:
        parts.close()


def test_refreshing_a_users_own_derived_data_needs_no_identity(parts):
    answer = parts.assistant.answer("every page of my dashboard takes ages to show up", "anon")
    assert [(a.name, a.status) for a in answer.actions] == [("clear_user_cache", "succeeded")]


def test_when_one_remedy_ran_and_another_needed_an_identity_the_reply_says_both(tmp_path, knowledge):
    parts = lockouts_also(tmp_path, knowledge, "restart_service", "auth", "a remedy on a whole service")
    try:
        answer = parts.assistant.answer(LOCKED_OUT[0], "anon")
        statuses = {(a.name, a.status) for a in answer.actions}
        assert statuses == {("restart_service", "succeeded"), ("unlock_account", "unverified")}
        assert operations(parts, "restart_service") and not operations(parts, "unlock_account")
        assert "restarted the sign-in service" in answer.reply  # what ran is reported, in plain words
        assert self_service(parts, LOCKOUT, "unlock_account") in answer.reply
        assert "I lifted" not in answer.reply  # never claimed as done
        assert handoffs(parts) == 0
    finally:
        parts.close()


def test_still_locked_after_the_advice_goes_round_again_without_a_false_hand_off(parts):
    first = parts.dialogue.turn(LOCKED_OUT[0], "fay")
    assert first.stage is Stage.VERIFYING and first.answer.actions[0].status == "unverified"
    second = parts.dialogue.turn("no, it's still locked", "fay", first.conversation_id)
    assert second.understood == "no"
    assert not any(a.name == "handoff" for a in second.answer.actions)
    assert handoffs(parts) == 0
    assert operations(parts, "unlock_account") == []
    # The user's "not fixed" is no failure of a remedy that never ran.
    assert parts.store.execute("SELECT count(*) FROM fix_verdicts")[0][0] == 0
    assert self_service(parts, LOCKOUT, "unlock_account") in " ".join(second.replies)


def test_an_account_remedy_without_self_service_words_says_to_open_the_chat_signed_in(tmp_path, knowledge):
    parts = lockouts_also(tmp_path, knowledge, "resend_email", "mail",
                          "a remedy on the account that the playbook has no words for")
    try:
        answer = parts.assistant.answer(LOCKED_OUT[2], "anon")
        statuses = {(a.name, a.status) for a in answer.actions}
        assert statuses == {("resend_email", "unverified"), ("unlock_account", "unverified")}
        assert not operations(parts, "resend_email") and not operations(parts, "unlock_account")
        assert self_service(parts, LOCKOUT, "unlock_account") in answer.reply
        assert parts.assistant.voice.say("sign_in_first", answer.conversation_id) in answer.reply
        assert handoffs(parts) == 0
    finally:
        parts.close()


def test_a_replies_file_without_the_identity_words_still_tells_the_truth():
    voice = Voice({"resolved": ["I {done}."]}, "Acme Notes")
    said = voice.say("unverified", "seed", done="lifted the lock", self_service="Use Forgot password.")
    assert "can't confirm who you are" in said and said.endswith("Use Forgot password.")
    assert voice.say("unverified_also", "seed", done="x", self_service="y") == voice.say(
        "unverified", "seed", done="x", self_service="y")
    assert "Acme Notes" in voice.say("sign_in_first", "seed")


def test_every_account_remedy_of_the_default_pack_says_what_the_user_can_do(knowledge):
    from engine.actions.catalogue import ACTIONS

    missing = [f"{p.id}: {r.action}" for p in knowledge.playbooks.values() for r in p.remedies
               if ACTIONS[r.action].account and not r.self_service]
    assert not missing, missing
