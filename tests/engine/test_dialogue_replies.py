"""The dialogue reads replies as people write them: only a clear "it works" teaches the index or counts as a
success; non-answers keep the question open; a second problem named beside an answer is taken up; choices by
ordinal, ratings in words, a declined rating, and an off-topic question while a person decides."""

import pytest

from engine.chat.dialogue import Stage
from tests.conftest import build_parts, make_settings
from tests.engine.test_dialogue import talk

SLOW = "The dashboard is loading really slowly"


@pytest.fixture
def chat(tmp_path, knowledge):
    parts = build_parts(make_settings(tmp_path), knowledge=knowledge)
    yield parts
    parts.close()


def learned(chat, text):
    return [e.text for e in chat.assistant.knowledge.examples.values()].count(text)


def verdicts(chat):
    return [v for (v,) in chat.store.execute("SELECT verdict FROM user_verdicts ORDER BY said_at")]


def test_a_natural_yes_confirms_the_fix_and_teaches_the_index(chat):
    before = learned(chat, SLOW)
    fixed, works = talk(chat, "ann", SLOW, "yes it's faster now")
    assert fixed.stage is Stage.VERIFYING
    assert works.understood == "yes" and works.stage is Stage.RATING
    assert learned(chat, SLOW) == before + 1 and verdicts(chat) == ["fixed"]


@pytest.mark.parametrize("reply", ["ok", "hmm", "let me try", "what?", "I'll check tomorrow", "hi"])
def test_a_non_answer_keeps_the_question_open_and_teaches_nothing(chat, reply):
    before = learned(chat, SLOW)
    _, answer = talk(chat, "bea", SLOW, reply)
    assert answer.stage is Stage.VERIFYING and answer.understood is None and answer.answer is None
    assert learned(chat, SLOW) == before and verdicts(chat) == []
    assert [c.label for c in answer.choices] == ["Yes, it works", "Partly", "No, still broken"]
    assert "working" in " ".join(answer.replies) or "works" in " ".join(answer.replies)


def test_better_is_not_a_failure_and_partly_is_not_a_success(chat):
    before = learned(chat, SLOW)
    _, better = talk(chat, "cal", SLOW, "much better, thanks")
    assert better.understood == "yes" and verdicts(chat) == ["fixed"]
    _, partly = talk(chat, "cal", SLOW, "better, but the charts still take ages")
    assert partly.understood == "partly" and verdicts(chat) == ["fixed", "partly"]
    assert learned(chat, SLOW) == before + 1  # the partly fixed one taught nothing


def test_a_yes_with_another_problem_confirms_the_fix_then_takes_the_other_up(chat):
    before = learned(chat, SLOW)
    _, both = talk(chat, "dee", SLOW, "yes it works now, but also my password reset email never arrives")
    assert verdicts(chat) == ["fixed"] and learned(chat, SLOW) == before + 1
    assert both.understood == "yes_and_new" and both.answer is not None
    assert both.answer.playbook == "password_reset_email_missing"
    assert not any("rate" in r.lower() for r in both.replies)  # the next problem first, no rating yet


def test_a_choice_by_ordinal_picks_that_option(chat):
    asked, chosen = talk(chat, "eli", "something is wrong with my account", "the first one")
    assert asked.stage is Stage.CHOOSING
    first = chat.dialogue.knowledge.playbooks
    options = [c.label for c in asked.choices]
    assert chosen.answer is not None and first[chosen.answer.playbook].title == options[0]
    assert chosen.understood == f"choice:{chosen.answer.playbook}"


def test_a_rating_in_words_is_stored_and_a_declined_one_is_not_asked_again(chat):
    *_, rated = talk(chat, "fay", SLOW, "works now", "four stars, quick help")
    assert rated.understood == "rating:4" and rated.stage is Stage.OPEN
    assert chat.store.execute("SELECT rating FROM feedback") == [(4,)]
    *_, declined = talk(chat, "gus", SLOW, "works now", "no thanks")
    assert declined.understood == "decline" and declined.stage is Stage.OPEN
    assert chat.store.execute("SELECT count(*) FROM feedback") == [(1,)]


def test_an_off_topic_question_while_a_person_decides_is_not_told_the_request_is_waiting(chat):
    asked, peru, news = talk(chat, "hal", "Can we get a non-profit discount?", "what's the capital of Peru",
                             "any news on my request?")
    assert asked.stage is Stage.AWAITING_DECISION
    assert peru.stage is Stage.AWAITING_DECISION and peru.answer is not None
    assert peru.answer.decision == "decline" and "team" not in " ".join(peru.replies).lower()
    assert news.stage is Stage.AWAITING_DECISION and "team" in " ".join(news.replies).lower()
