"""The dialogue reads replies as people write them: only a clear "it works" teaches the index or counts as a
success; non-answers keep the question open; a second problem named beside an answer is taken up; choices by
ordinal, ratings in words, a declined rating, and an off-topic question while a person decides; a request passed
to a person by mistake is taken back by a correction, and by nothing else."""

import pytest

from core.errors import ConflictError
from engine.chat.dialogue import Stage
from engine.chat.understanding import Question, Reading, ReplyReader
from engine.desk.desk import Decider
from engine.desk.handoffs import Engineer
from tests.conftest import build_parts, make_settings
from tests.engine.test_dialogue import talk

SLOW = "The dashboard is loading really slowly"


@pytest.fixture
def chat(tmp_path, knowledge):
    parts = build_parts(make_settings(tmp_path), knowledge=knowledge)
    yield parts
    parts.close()


class RecordingReader(ReplyReader):
    """The dialogue's own reader, noting the question each message is read as."""

    def __init__(self, reader: ReplyReader) -> None:
        super().__init__(reader.lexicon, reader.embedder)
        self.questions: list[Question] = []

    def read(self, text: str, question: Question, **kwargs) -> Reading:
        self.questions.append(question)
        return super().read(text, question, **kwargs)


def questions_read(chat) -> list[Question]:
    """From now on, the questions the dialogue reads messages as (the list grows as it does)."""
    chat.dialogue.reader = RecordingReader(chat.dialogue.reader)
    return chat.dialogue.reader.questions


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


# -- corrections act on what the user says it is, never on what they refused -----------------------------------


def answered_playbooks(chat, conversation):
    return [p for (p,) in chat.store.execute(
        "SELECT playbook FROM decisions WHERE conversation_id = ? AND decision = 'resolve' ORDER BY created_at",
        (conversation,))]


@pytest.mark.parametrize(("problem", "guessed", "correction", "meant"), [
    ("cover letter attachment", "attachment_preview_error", "no, it's the calendar sync",
     "calendar_interviews_not_syncing"),
    ("in a note", "notes_editor_broken", "no, I meant my reminder emails", "reminders_not_sent"),
])
def test_a_correction_to_a_guess_never_acts_on_the_guess(chat, problem, guessed, correction, meant):
    asked, corrected = talk(chat, "hal", problem, correction)
    assert asked.stage is Stage.CONFIRMING and asked.answer.offered == (guessed,)
    assert corrected.understood == "correction" and corrected.answer.playbook == meant
    assert guessed not in answered_playbooks(chat, corrected.conversation_id)


@pytest.mark.parametrize(("correction", "meant"), [
    ("no, I meant the zapier zap", "zapier_zap_not_triggering"),
    ("that's not it, the problem is my slack notifications", "slack_notifications_missing"),
    ("no I meant my reminder emails", "reminders_not_sent"),
])
def test_a_correction_after_a_fix_is_not_a_failure_of_the_fix(chat, correction, meant):
    fixed, corrected = talk(chat, "ida", SLOW, correction)
    assert fixed.stage is Stage.VERIFYING and fixed.answer.playbook == "dashboard_slow"
    assert corrected.understood == "correction" and corrected.answer.playbook == meant
    assert verdicts(chat) == ["wrong_problem"]  # no "not_fixed": the remedy was never tried on their problem
    assert chat.store.execute("SELECT count(*) FROM remedy_outcomes") == [(0,)]
    assert chat.store.execute("SELECT count(*) FROM fix_verdicts") == [(0,)]


@pytest.mark.parametrize("reply", ["no, it's the dashboard", "it's rather slow still", "no, same as before"])
def test_pointing_at_the_same_problem_is_still_a_no(chat, reply):
    _, still = talk(chat, "jon", SLOW, reply)
    assert still.understood == "no" and verdicts(chat) == ["not_fixed"]


@pytest.mark.parametrize(("request_text", "correction", "meant"), [
    ("attachments", "no, it's the calendar sync", "calendar"),
    ("I need more storage", "no, I meant the file upload fails", "file_upload_fails"),
])
def test_a_request_passed_to_a_person_by_mistake_can_be_taken_back(chat, request_text, correction, meant):
    questions = questions_read(chat)
    raised, corrected = talk(chat, "kim", request_text, correction)
    assert raised.stage is Stage.AWAITING_DECISION
    assert questions == [Question.WAITING]  # nothing was asked: read only for taking the request back
    (status,) = chat.store.execute("SELECT status FROM escalations")
    assert status == ("withdrawn",)
    assert corrected.understood == "correction" and "taken back" in corrected.replies[0]
    offered = (corrected.answer.playbook, *corrected.answer.offered)
    assert any(meant in p for p in offered), offered
    kinds = [k for (k,) in chat.store.execute("SELECT kind FROM escalation_events ORDER BY at_s, rowid")]
    assert kinds[-1] == "withdrawn"
    with pytest.raises(ConflictError, match="took this request back"):
        chat.desk.decide(chat.store.execute("SELECT id FROM escalations")[0][0], Decider("dana"), "approved", "ok")


@pytest.mark.parametrize("reply", ["yes, but I meant for my whole team", "any news on my request?"])
def test_agreeing_or_asking_after_a_request_leaves_it_with_the_person(chat, reply):
    """ "Yes, but ..." reads as a correction after "is that right?", which refuses nothing; while a person has the
    request it takes nothing back, and neither does asking how it is getting on."""
    questions = questions_read(chat)
    raised, said = talk(chat, "lin", "Can we get a non-profit discount?", reply)
    assert raised.stage is Stage.AWAITING_DECISION and questions == [Question.WAITING]
    assert said.stage is Stage.AWAITING_DECISION and said.understood is None
    assert chat.store.execute("SELECT status FROM escalations") == [("open",)]
    assert "still with our team" in " ".join(said.replies)


@pytest.mark.parametrize("reply", ["my password reset email never came", "I have another problem, the csv export "
                                             "fails"])
def test_another_problem_while_a_person_has_the_request_is_taken_up_and_the_request_kept(chat, reply):
    """Naming another problem is no refusal of the request ("no, it's ..." is): both go on."""
    raised, said = talk(chat, "max", "Can we get a non-profit discount?", reply)
    assert raised.stage is Stage.AWAITING_DECISION
    assert said.understood != "correction" and said.answer is not None and said.answer.playbook
    assert chat.store.execute("SELECT status FROM escalations") == [("open",)]
    assert not any("taken back" in r for r in said.replies)


# -- questions beside or instead of an answer -------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "fixed", "next_playbook"), [
    ("works 👌 how do i turn on 2fa", True, "two_factor"),
    ("it works now, where is the export button?", True, "export"),
    ("Is there a dark mode?", False, "theme"),
])
def test_a_question_about_something_else_is_taken_up_not_dropped(chat, reply, fixed, next_playbook):
    _, answer = talk(chat, "lou", SLOW, reply)
    assert answer.answer is not None, answer.replies
    offered = (answer.answer.playbook, *answer.answer.offered)
    assert any(next_playbook in p for p in offered), offered
    assert verdicts(chat) == (["fixed"] if fixed else [])


@pytest.mark.parametrize("reply", ["how do I check?", "what did you change?", "do i need to refresh the page?",
                                   "where do I look?"])
def test_a_question_about_the_step_keeps_the_question_open(chat, reply):
    _, answer = talk(chat, "max", SLOW, reply)
    assert answer.stage is Stage.VERIFYING and answer.answer is None and verdicts(chat) == []


# -- after a hand-off ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", ["no, still broken", "nope, same problem", "it's still not working"])
def test_still_broken_after_a_handoff_is_acknowledged_not_taken_as_a_declined_rating(chat, reply):
    _, handed, still = talk(chat, "ned", SLOW, "no", reply)
    assert handed.stage is Stage.RATING and "engineers" in " ".join(handed.replies)
    assert still.understood == "no" and still.stage is Stage.RATING
    assert "engineers have it" in " ".join(still.replies)
    assert chat.store.execute("SELECT count(*) FROM feedback") == [(0,)]
    assert verdicts(chat) == ["not_fixed"]  # said once, for the fix; the hand-off is not judged again


def test_when_engineering_closes_the_handoff_the_user_is_asked_if_it_works(chat):
    _, handed = talk(chat, "oli", SLOW, "no")
    (row,) = chat.outreach.handoffs.listing()
    outcomes = chat.store.execute("SELECT count(*) FROM remedy_outcomes")
    chat.outreach.handoffs.close(row["id"], Engineer("sam"), "We found a slow report query and fixed it")
    history = chat.assistant.history(handed.conversation_id, "oli")
    assert [m["role"] for m in history[-2:]] == ["team", "assistant"]
    assert "working" in history[-1]["text"]
    stage, choices = chat.dialogue.status(handed.conversation_id, "oli")
    assert stage is Stage.VERIFYING and [c.label for c in choices] == ["Yes, it works", "Partly", "No, still broken"]
    (works,) = talk(chat, "oli", "yes, all good now", conversation=handed.conversation_id)
    assert works.understood == "yes" and works.stage is Stage.RATING
    assert verdicts(chat) == ["not_fixed", "fixed"]
    # engineering fixed it, not the remedy: the remedy's record is not credited with a success
    assert chat.store.execute("SELECT count(*) FROM remedy_outcomes") == outcomes


def test_a_user_who_moved_on_is_not_asked_when_the_handoff_closes(chat):
    _, handed = talk(chat, "pam", SLOW, "no")
    talk(chat, "pam", "four stars", conversation=handed.conversation_id)  # rated: the conversation moved on
    (row,) = chat.outreach.handoffs.listing()
    chat.outreach.handoffs.close(row["id"], Engineer("sam"), "Fixed the slow query")
    assert chat.assistant.history(handed.conversation_id, "pam")[-1]["role"] == "team"
    assert chat.dialogue.status(handed.conversation_id, "pam")[0] is Stage.OPEN
