"""Reading replies: each kind of answer, with phrasings of our own (none taken from an evaluation set), the
vocabulary file's checks, and the figures on sets written by people who never saw the vocabulary."""

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.replies import score_set
from core.errors import ConfigurationError
from engine.chat.lexicon import load_lexicon
from engine.chat.understanding import (
    REFUSED,
    Option,
    Question,
    ReplyIntent,
    ReplyReader,
    Topic,
    load_reply_examples,
)
from tests.conftest import ROOT, shared_file

WORDS = ROOT / "data" / "reply_words.yaml"
LEXICON = load_lexicon(WORDS)
READER = ReplyReader(LEXICON)  # the words alone; the dialogue adds the index as judge and the model for choices
YES, NO, PARTLY = ReplyIntent.YES, ReplyIntent.NO, ReplyIntent.PARTLY
RAW = yaml.safe_load(WORDS.read_text(encoding="utf-8"))
NOT_WORKING = sorted({p for kind in ("hedge", "defer", "acknowledge", "broken", "still", "partial") for p in RAW[kind]}
                     - {p for kind in ("works", "affirm", "gone", "settled") for p in RAW[kind]})


def read(text, question=Question.VERIFY, judge=None, options=()):
    return READER.read(text, question, judge=judge, options=options)


def intents(texts, question=Question.VERIFY, judge=None):
    return {t: read(t, question, judge).intent for t in texts}


# -- after a fix: is it working now? ------------------------------------------------------------------------

def test_saying_it_works_is_a_yes_in_any_words():
    texts = ["yeah it's quicker now", "loads in a second now, thanks", "yup, sorted", "works perfectly now 🙂",
             "all fine on my side", "it's back to normal", "the report downloads now", "yess that did the trick"]
    assert intents(texts) == dict.fromkeys(texts, YES)


def test_a_no_that_says_the_problem_is_gone_is_a_yes():
    texts = ["nope, it loads fine now", "no, the error is gone", "no errors anymore", "not slow anymore",
             "it doesn't freeze any more", "no longer crashing", "nah, not anymore"]
    assert intents(texts) == dict.fromkeys(texts, YES)


def test_still_broken_is_a_no_however_it_is_said():
    texts = ["still the same error", "nah, no difference", "it's worse now", "tried twice, still not loading",
             "nope", "the same thing happens", "it does not open", "didn't change anything :("]
    assert intents(texts) == dict.fromkeys(texts, NO)


def test_praise_said_ironically_is_a_no():
    texts = ["oh great, works wonderfully... not", "great fix 🙄 nothing is different"]
    assert intents(texts) == dict.fromkeys(texts, NO)


def test_better_but_not_all_the_way_is_partly():
    texts = ["faster but the charts are still slow", "it works on wifi but not on 4g", "a little better",
             "kind of, it loads half the time", "some reports open, others don't", "works, but slowly"]
    assert intents(texts) == dict.fromkeys(texts, PARTLY)


def test_non_answers_keep_the_question_open():
    texts = ["okie", "alright then", "one moment please", "gimme a sec", "I'll have a look tonight", "not sure yet",
             "uh", "how would I test it?", "where do I look?", "thx", "maybe?", "I think so?", "👀", "..."]
    assert intents(texts) == dict.fromkeys(texts, None)


def test_a_yes_with_another_problem_keeps_both():
    for text in ["yes, and also the invoice page is blank", "fixed! btw the mobile app crashes on launch",
                 "works now. Another question: how do I rename a board?", "all good, but now I can't upload files"]:
        reading = read(text)
        assert reading.intent is YES and reading.also, text
        assert reading.understood == "yes_and_new"


def test_a_complaint_the_index_places_elsewhere_is_a_new_problem_and_the_same_one_a_no():
    def judge(topic):
        return lambda _text: topic
    text = "the invoices page shows the wrong company name"
    assert read(text, judge=judge(Topic.LIKELY_OTHER)).intent is ReplyIntent.NEW_PROBLEM
    assert read(text, judge=judge(Topic.SAME)).intent is NO
    assert read("still wrong", judge=judge(Topic.OTHER)).intent is NO  # "still": the problem in hand
    # A vague question must be sure to be about something else; "how do I check?" never is.
    assert read("how do I check?", judge=judge(Topic.LIKELY_OTHER)).intent is None
    assert read("how do I close my account?", judge=judge(Topic.OTHER)).intent is ReplyIntent.NEW_PROBLEM


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(NOT_WORKING), min_size=1, max_size=5), st.sampled_from([" ", ", ", ". ", " but "]))
def test_nothing_without_a_working_word_or_a_yes_is_read_as_fixed(phrases, glue):
    """Zero false "fixed": hedges, deferrals, acknowledgements and complaints, in any order, never confirm a fix."""
    text = glue.join(phrases)
    reading = read(text)
    assert reading.intent is not YES, (text, reading)


# -- a guess: is that right? ----------------------------------------------------------------------------------

def test_a_guess_is_confirmed_denied_or_corrected():
    q = Question.CONFIRM
    assert intents(["yep that's exactly it", "correct, since yesterday", "that's the one", "si"], q) == dict.fromkeys(
        ["yep that's exactly it", "correct, since yesterday", "that's the one", "si"], YES)
    denied = ["no, calendar sync is fine", "that's not what I said", "nah", "no it isn't", "not at all, sorry"]
    assert intents(denied, q) == dict.fromkeys(denied, NO)
    corrected = ["no, it's the android app", "nope, I mean the weekly digest email", "not Google, Yahoo calendar",
                 "it isn't slow, it shows an error", "wrong one, the export is what fails"]
    assert intents(corrected, q) == dict.fromkeys(corrected, ReplyIntent.CORRECTION)
    assert intents(["hmm maybe", "what do you mean?", "let me see"], q) == dict.fromkeys(
        ["hmm maybe", "what do you mean?", "let me see"], None)


# -- which of these? -----------------------------------------------------------------------------------------

OPTIONS = (Option("the reports page being slow"), Option("exports failing"))


def picks(texts):
    return {t: (r.intent, r.choices) for t in texts for r in [read(t, Question.CHOOSE, options=OPTIONS)]}


def test_a_choice_by_number_ordinal_name_or_misspelling():
    first, second = (ReplyIntent.CHOICE, (0,)), (ReplyIntent.CHOICE, (1,))
    assert picks(["the 1st", "number one", "reports", "the report one", "1️⃣", "reprots pls"]) == dict.fromkeys(
        ["the 1st", "number one", "reports", "the report one", "1️⃣", "reprots pls"], first)
    assert picks(["#2", "second pls", "exprots", "option no. 2", "the last one", "exports, reports are fine"]) == \
        dict.fromkeys(["#2", "second pls", "exprots", "option no. 2", "the last one", "exports, reports are fine"],
                      second)
    assert picks(["both please"]) == {"both please": (ReplyIntent.CHOICE, (0, 1))}


def test_no_pick_keeps_the_question_open_and_none_of_them_says_no():
    assert picks(["either is fine", "which is which?", "yes", "ok", "no clue"]) == dict.fromkeys(
        ["either is fine", "which is which?", "yes", "ok", "no clue"], (None, ()))
    assert picks(["none of them"]) == {"none of them": (NO, ())}
    assert picks(["can you explain number 2?"]) == {"can you explain number 2?": (None, ())}


# -- rate me 1 to 5 ----------------------------------------------------------------------------------------------

def test_ratings_in_numbers_words_scales_and_stars():
    cases = {"4 out of 5": 4, "8/10": 4, "three stars": 3, "⭐⭐": 2, "I'd say a 2": 2, "6": 5, "0": 1, "FOUR!": 4,
             "a 5, quick and friendly": 5, "full marks": 5}
    got = {text: read(text, Question.RATE) for text in cases}
    assert {t: (r.intent, r.rating) for t, r in got.items()} == {t: (ReplyIntent.RATING, v) for t, v in cases.items()}


def test_a_number_that_counts_things_is_no_rating():
    assert read("3 jobs disappeared from my board", Question.RATE).intent is None
    other = read("2 invoices are missing", Question.RATE, judge=lambda _t: Topic.LIKELY_OTHER)
    assert other.intent is ReplyIntent.NEW_PROBLEM
    assert read("2, it didn't really help", Question.RATE).rating == 2  # a rating with a comment


def test_declining_to_rate_and_not_rating():
    declined = ["no, thanks", "rather not say", "maybe later", "nope"]
    assert intents(declined, Question.RATE) == dict.fromkeys(declined, ReplyIntent.DECLINE)
    assert intents(["what's a 3?", "hmm", "cool"], Question.RATE) == dict.fromkeys(["what's a 3?", "hmm", "cool"],
                                                                                   None)


# -- does that answer your question? ------------------------------------------------------------------------

def test_a_persons_answer_settles_it_or_not():
    q = Question.SETTLED
    assert intents(["that's all I needed, thanks", "fair enough", "yes, makes sense"], q) == dict.fromkeys(
        ["that's all I needed, thanks", "fair enough", "yes, makes sense"], YES)
    assert intents(["no, I still need the extra seats", "not really"], q) == dict.fromkeys(
        ["no, I still need the extra seats", "not really"], NO)
    assert intents(["ok", "hmm let me think"], q) == dict.fromkeys(["ok", "hmm let me think"], None)
    assert read("also, how do I change my billing email?", q).intent is ReplyIntent.NEW_PROBLEM


# -- while a person has the request: nothing asked -----------------------------------------------------------

def test_while_a_person_has_the_request_only_a_correction_means_anything():
    q = Question.WAITING
    taken_back = ["no, it's the calendar sync", "no, I meant the file upload fails",
                  "wrong one, the export is what fails"]
    assert intents(taken_back, q) == dict.fromkeys(taken_back, ReplyIntent.CORRECTION)
    kept = ["yes, but I meant the reminders", "any news on my request?", "how long will it take?", "yes", "no",
            "ok thanks", "what do you mean?", "I have another problem", "also my invoice pdf won't open"]
    assert {t: (r.intent, r.understood) for t in kept for r in [read(t, q)]} == dict.fromkeys(kept, (None, None))


def test_taking_a_request_back_is_refusing_the_guess_it_was_passed_on_as():
    """A request goes to a person because the assistant took the problem for a business one, a guess the user
    never confirmed: a reply takes it back exactly where, after "is that right?", it would refuse the guess with
    a no (a complaint about something else there names the problem instead; here it is another problem)."""
    examples = load_reply_examples(ROOT / "data" / "reply_examples.yaml")
    texts = [t for texts in examples.values() for t in texts] + NOT_WORKING
    for judge in (None, other):
        for text in texts:
            guess = read(text, Question.CONFIRM, judge)
            refused = guess.intent is ReplyIntent.CORRECTION and guess.cue == REFUSED
            assert (read(text, Question.WAITING, judge).intent is ReplyIntent.CORRECTION) == refused, text


def test_asking_after_a_request_is_told_from_anything_else():
    assert READER.about_progress("any news on my request?") and READER.about_progress("how long will it take")
    assert not READER.about_progress("what's the capital of Peru")


# -- the files ---------------------------------------------------------------------------------------------

def test_every_example_reply_is_read_as_labelled():
    """The examples file is the reader's regression set: each reply is read as its label after a question where
    that meaning is possible."""
    examples = load_reply_examples(ROOT / "data" / "reply_examples.yaml")
    where = {YES: (Question.VERIFY, Question.CONFIRM), NO: (Question.VERIFY, Question.CONFIRM, Question.CHOOSE),
             PARTLY: (Question.VERIFY,), ReplyIntent.CORRECTION: (Question.CONFIRM,),
             ReplyIntent.NEW_PROBLEM: (Question.VERIFY, Question.SETTLED)}
    missed = [(intent.value, text) for intent, texts in examples.items() for text in texts
              if not any(read(text, q, options=OPTIONS).intent is intent for q in where[intent])]
    assert missed == []


def test_a_broken_vocabulary_file_is_refused_clearly(tmp_path):
    path = tmp_path / "words.yaml"
    full = WORDS.read_text(encoding="utf-8")
    cases = {"deny: expected a non-empty list": yaml.safe_dump({**RAW, "deny": []}, allow_unicode=True),
             "unknown list": full + "\nnonsense: [a]\n",
             "is not a phrase": full.replace("\naffirm:\n", "\naffirm:\n  - 3\n", 1),
             "cannot read the reply words": "affirm: [\n",
             "must be a whole number": full.replace('"five": 5', '"five": 5.5', 1)}
    for message, content in cases.items():
        path.write_text(content, encoding="utf-8")
        with pytest.raises(ConfigurationError, match=message):
            load_lexicon(path)


def test_unquoted_yes_and_no_keys_are_caught(tmp_path):
    path = tmp_path / "replies.yaml"
    path.write_text("yes: [a, b, c, d, e]\nno: [a, b, c, d, e]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="unknown meaning"):
        load_reply_examples(path)
    path.write_text("".join(f'"{i}": [a, b]\n' for i in ("yes", "no", "partly", "correction", "new_problem")),
                    encoding="utf-8")
    with pytest.raises(ConfigurationError, match="at least 5"):
        load_reply_examples(path)


# -- measured on replies nobody tuned on ------------------------------------------------------------------

@pytest.fixture(scope="module")
def index_reader(fresh_knowledge):
    knowledge = fresh_knowledge()
    return ReplyReader(LEXICON, knowledge.embedder), knowledge


def check(scores, floor):
    for situation, score in scores.items():
        assert score.accuracy >= floor, (situation, score.accuracy, score.errors)
    assert sum(s.false_fixed for s in scores.values()) == 0, [s.errors for s in scores.values()]


def test_replies_written_independently_are_read_right(index_reader):
    """`jtp-replies` (../shared) was written from the four situations alone. Measured 2026-12-07: A 98.9%,
    B-D 100% (91, 49, 42, 42 replies), no false "fixed" (`python bench/replies.py`); the floor is the issue's."""
    reader, knowledge = index_reader
    check(score_set(shared_file("datasets", "jtp-replies", "replies.tsv"), reader, knowledge), 0.95)


def test_the_development_set_is_read_right(index_reader):
    """`replies_dev.tsv`, written for this project from the five situations alone, is the set the vocabulary was
    developed on (98-100% per situation when measured); it guards against a change that breaks a kind."""
    reader, knowledge = index_reader
    check(score_set(Path(ROOT / "data" / "eval" / "independent" / "replies_dev.tsv"), reader, knowledge), 0.95)


# -- kinds found on a later held-out set (replies_h4), each tested with inputs of its own -------------------------


def other(_text):
    return Topic.OTHER


def test_an_event_that_stopped_works_and_a_thing_that_went_missing_does_not():
    assert read("the popup doesnt appear anymore").intent is YES
    assert read("it does not happen any more, thanks").intent is YES
    assert read("i cannot see my tags anymore").intent is not YES
    assert read("solved, but the export button isnt there anymore", judge=other).intent is not NO


def test_same_describing_a_thing_is_not_the_old_problem():
    assert read("works! can I use the same tag on two boards?").intent is YES
    assert read("same error as before").intent is NO
    assert read("still the same").intent is NO


def test_a_correction_after_but_overrides_a_works():
    reading = read("you fixed the export but I was asking about the import", judge=other)
    assert reading.intent is ReplyIntent.CORRECTION and "import" in reading.also
    assert read("it works now, I meant the dashboard anyway").intent is YES  # no "but": the works stands


def test_work_still_going_on_is_not_broken():
    for text in ("not sure, the upload is still running", "still processing on my side"):
        assert read(text).intent is None, text


def test_a_settled_answer_in_plain_praise_and_a_problem_of_its_own():
    for text in ("excellent, thanks", "sounds good to me", "no that's all, thank you", "brilliant"):
        assert read(text, Question.SETTLED).intent is YES, text
    new = read("by the way my reminders stopped working again", Question.SETTLED, judge=other)
    assert new.intent is ReplyIntent.NEW_PROBLEM
    assert read("no, I still don't see the discount", Question.SETTLED, judge=other).intent is NO
    assert read("let me read that again", Question.SETTLED).intent is not NO
    assert read("what does prorated mean here?", Question.SETTLED, judge=other).intent is None


def test_every_option_by_number_and_a_count_of_things_before_of():
    options = (Option("Search"), Option("Dashboard"))
    assert read("2 and 1", Question.CHOOSE, options=options).choices == (0, 1)
    assert read("all of the above", Question.CHOOSE, options=options).choices == (0, 1)
    assert read("3 of my tags vanished", Question.RATE).rating is None


def test_a_question_about_the_step_is_not_another_matter():
    for text in ("which button do you mean?", "did you change something on your side?", "what do you mean by reset"):
        assert read(text, judge=lambda _t: Topic.LIKELY_OTHER).intent is None, text
    assert read("is there a way to print my board?", judge=lambda _t: Topic.LIKELY_OTHER).intent \
        is ReplyIntent.NEW_PROBLEM
