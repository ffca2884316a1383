"""The conversation around decisions, on real parts: confirm, choose, fix, verify, retry, hand off, decide, rate,
and forgetting a user everywhere."""

import pytest

from core.errors import ConflictError, InputError
from engine.chat.dialogue import Dialogue, Stage
from engine.desk.desk import Decider
from engine.store.privacy import BY_DECISION, BY_USER, LEARNING_BY_USER
from tests.conftest import build_parts, make_settings


def talk(parts, user, *texts, conversation=None, verified=False):
    exchanges = []
    for text in texts:
        exchange = parts.dialogue.turn(text, user, conversation, verified=verified)
        conversation = exchange.conversation_id
        exchanges.append(exchange)
    return exchanges


def test_a_fix_is_checked_with_the_user_then_rated_and_learned(chat):
    fixed, works, rated = talk(chat, "ann", "The dashboard is loading really slowly", "yes it works now",
                               "5 great, thanks")
    assert fixed.stage is Stage.VERIFYING and fixed.answer.actions[0].name == "kill_slow_queries"
    assert [c.label for c in fixed.choices] == ["Yes, it works", "Partly", "No, still broken"]
    assert works.understood == "yes" and works.stage is Stage.RATING and len(works.replies) == 2
    assert rated.stage is Stage.OPEN and rated.understood == "rating:5"
    assert chat.store.execute("SELECT rating, comment FROM feedback") == [(5, "great, thanks")]
    learned = [e.text for e in chat.assistant.knowledge.examples.values()]
    assert "The dashboard is loading really slowly" in learned
    roles = [m["role"] for m in chat.assistant.history(fixed.conversation_id, "ann")]
    assert roles == ["assistant", "user", "assistant", "user", "assistant", "assistant", "user", "assistant"]


def test_still_broken_tries_the_next_remedy_then_hands_off_honestly(chat):
    _, second, third = talk(chat, "bob", "The dashboard is loading really slowly", "no, it's still slow",
                                "still broken")
    assert second.understood == "no" and second.stage is Stage.VERIFYING
    assert [a.name for a in second.answer.actions] != ["kill_slow_queries"]  # not the remedy that did not help
    assert third.stage is Stage.RATING and any(a.name == "handoff" for a in third.answer.actions)
    assert "engineers" in " ".join(third.replies)
    (diagnostics,) = chat.store.execute("SELECT diagnostics FROM handoffs WHERE user_id = 'bob'")[0]
    assert "kill_slow_queries" in diagnostics
    # The engineers fixed it and the user says so: that is not a new problem; the rating is asked again.
    (later,) = talk(chat, "bob", "yes it works now", conversation=third.conversation_id)
    assert later.stage is Stage.RATING and later.answer is None


def test_close_candidates_are_offered_and_a_choice_is_acted_on(chat):
    title = chat.dialogue.knowledge.playbooks["account_locked_after_attempts"].title
    asked, chosen = talk(chat, "cy", "something is wrong with my account", title)
    assert asked.stage is Stage.CHOOSING and asked.answer.decision == "clarify"
    assert title in [c.label for c in asked.choices]
    assert chosen.understood == "choice:account_locked_after_attempts" and chosen.stage is Stage.VERIFYING
    assert chosen.answer.playbook == "account_locked_after_attempts" and chosen.answer.decision == "resolve"


def test_a_middle_band_match_is_confirmed_and_no_asks_again(tmp_path, knowledge):
    # With no gap, an unsure match offers its best candidate alone, as a yes-or-no question.
    chat = build_parts(make_settings(tmp_path, clarify_gap=0.0), knowledge=knowledge)
    asked, denied = talk(chat, "di", "the pipeline board thing", "no, that's not it")
    chat.close()
    assert asked.stage is Stage.CONFIRMING and [c.value for c in asked.choices] == ["yes", "no"]
    assert "right" in asked.replies[0] or "it?" in asked.replies[0]
    assert denied.understood == "no" and denied.stage is Stage.OPEN and denied.answer is None


def test_a_business_request_waits_for_a_person_whose_decision_is_posted(chat):
    asked, waiting = talk(chat, "eve", "Can we get a non-profit discount?", "any news?")
    assert asked.stage is Stage.AWAITING_DECISION and waiting.stage is Stage.AWAITING_DECISION
    (escalation,) = chat.dialogue.escalations.find(["open"])
    decided = chat.desk.decide(escalation.id, Decider("dana"), "approved", "50% off from next month.")
    assert decided["status"] == "approved"
    messages = chat.assistant.history(asked.conversation_id, "eve")
    assert messages[-2]["role"] == "team" and "50% off from next month." in messages[-2]["text"]
    assert chat.dialogue.status(asked.conversation_id, "eve")[0] is Stage.CHECKING_ANSWER
    (settled,) = talk(chat, "eve", "yes, that answers it", conversation=asked.conversation_id)
    assert settled.stage is Stage.RATING
    with pytest.raises(ConflictError, match="already approved"):
        chat.desk.decide(escalation.id, Decider("dana"), "rejected", "changed my mind")


def test_the_state_lives_in_the_store_not_in_the_dialogue(chat):
    (asked,) = talk(chat, "fay", "something is wrong with my account")
    assert asked.stage is Stage.CHOOSING
    d = chat.dialogue
    again = Dialogue(chat.assistant, d.reader, d.learning, conversations=d.chats, escalations=d.escalations,
                     privacy=d.privacy)
    chosen = again.turn(asked.choices[0].value, "fay", asked.conversation_id)
    assert chosen.understood == f"choice:{chosen.answer.playbook}"
    assert chat.dialogue.knowledge.playbooks[chosen.answer.playbook].title == asked.choices[0].label


def test_deleting_history_leaves_nothing_of_the_user(chat):
    def learned():
        return [e.text for e in chat.assistant.knowledge.examples.values()].count(texts[0])

    texts = ["The dashboard is loading really slowly", "yes it works now", "4"]
    before = learned()
    talk(chat, "ivy", *texts)
    (escalated,) = talk(chat, "ivy", "Can we get a non-profit discount?")
    (escalation,) = chat.dialogue.escalations.find(["open"])
    chat.desk.decide(escalation.id, Decider("dana"), "rejected", "Not for companies of this size.")
    talk(chat, "ivy", "The dashboard is loading really slowly", "no, it's still slow", "still broken")
    talk(chat, "jon", "The dashboard is loading really slowly", "yes it works now")
    ids = [row[0] for row in chat.store.execute("SELECT id FROM decisions WHERE user_id = 'ivy'")]
    assert ids and chat.store.execute("SELECT count(*) FROM handoffs WHERE user_id = 'ivy'")[0][0] == 1

    counts = chat.dialogue.forget("ivy")
    assert counts["messages"] > 0 and counts["learned_examples"] == 1 and counts["index_examples"] == 1

    tables = [row[0] for row in chat.store.execute("SELECT table_name FROM information_schema.tables")]
    assert set(BY_USER) | set(BY_DECISION) | set(LEARNING_BY_USER) <= set(tables)
    for table in tables:
        # Any column of any table: the user's id, their decisions' ids, and what they typed.
        text = chat.store.execute(f"SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), ' ') FROM {table}")
        blob = " ".join(str(v) for row in text for v in row if v is not None)
        assert "ivy" not in blob.split(), table
        assert not any(decision in blob for decision in ids), table
        assert "non-profit discount" not in blob and escalated.conversation_id not in blob, table
    assert chat.dialogue.conversations("ivy") == []
    assert learned() == before + 1  # jon's confirmation is still learned; ivy's is gone
    assert chat.dialogue.conversations("jon")


def test_someone_elses_conversation_does_not_exist(chat):
    (mine,) = talk(chat, "kim", "The dashboard is loading really slowly")
    with pytest.raises(InputError, match="no such conversation"):
        chat.dialogue.turn("yes", "lee", mine.conversation_id)
