"""Hard phrasings on the default pack, each kind from public reports of other assistants: negation, several
requests in one message, nothing stated, another language, a forbidden action; and bad input."""

import pytest

from core.errors import InputError
from core.taxonomy import BUSINESS
from tests.engine.test_dialogue import talk

REMEDIES_NOT = ("escalate", "handoff")


def remedies(answer):
    return [a.name for a in answer.actions if a.name not in REMEDIES_NOT]


def escalated(answer):
    return [a.target for a in answer.actions if a.name == "escalate"]


def test_a_denied_request_is_not_acted_on(assistant):
    answer = assistant.answer("I never asked for a password reset but I keep getting reset emails", "neg",
                              dry_run=True)
    assert "resend_email" not in remedies(answer)
    assert answer.playbook != "password_reset_email_missing"


def test_the_denied_part_does_not_choose_the_playbook(assistant):
    answer = assistant.answer("it's not the mobile app, it's the web dashboard that keeps timing out", "neg",
                              dry_run=True)
    assert answer.category == "performance" and "mobile" not in (answer.playbook or "")
    login = assistant.answer("the site isn't slow at all, it's just that I can't log in", "neg", dry_run=True)
    assert login.category == "authentication"


@pytest.mark.parametrize("text", ["Do NOT restart anything", "do NOT restart anything, the dashboard is slow",
                                  "please don't reset my settings, my digest comes weekly instead of daily"])
def test_a_forbidden_action_never_runs(assistant, text):
    answer = assistant.answer(text, "careful", dry_run=True)
    assert remedies(answer) == [] and answer.decision in ("clarify", "decline")


def test_the_user_can_allow_the_fix_after_forbidding_it(chat):
    asked, allowed = talk(chat, "careful", "do NOT restart anything, the dashboard is slow", "yes")
    assert asked.answer.decision == "clarify" and not remedies(asked.answer)
    assert allowed.answer is not None and allowed.answer.decision == "resolve"


@pytest.mark.parametrize(
    ("text", "business_part"),
    [
        ("search is slow and can we get a discount", "pricing"),
        ("export fails, and delete my account and all our data", "policy"),
        ("the board takes ages to load, btw we need 30 more seats than our plan allows", "hosting_capacity"),
    ],
)
def test_a_business_part_always_goes_to_a_person(assistant, text, business_part):
    answer = assistant.answer(text, "two-things", dry_run=True)
    assert business_part in escalated(answer) or answer.category == business_part
    if answer.decision != "escalate":
        assert any(target in BUSINESS for target in escalated(answer))
        assert "person" in answer.reply or "colleague" in answer.reply  # and the user is told


def test_the_escalations_of_a_message_are_stored(assistant):
    answer = assistant.answer("export fails, and delete my account and all our data", "two-things-stored",
                              dry_run=True)
    rows = assistant.store.db.execute("SELECT category FROM escalations WHERE decision_id = ?", (answer.decision_id,))
    assert [r[0] for r in rows] == escalated(answer)


def test_a_second_technical_problem_is_named_and_taken_up_next(chat):
    first, done = talk(chat, "pat", "the csv export comes out empty, and separately my interviews stopped "
                                    "syncing to google calendar", "yes it works now")
    assert "calendar" in " ".join(first.replies).lower() or "sync" in " ".join(first.replies).lower()
    if first.stage.value == "verifying":
        assert done.stage.value == "confirming"
        assert "shall i look at that now" in " ".join(done.replies).lower()


@pytest.mark.parametrize("text", ["hi", "help", "?", "hello, anyone there?", "🙂🙂", "a" * 3000])
def test_nothing_stated_gets_a_friendly_question(assistant, text):
    answer = assistant.answer(text, "hello", dry_run=True)
    assert answer.decision == "clarify" and answer.playbook is None and answer.actions == ()
    assert "going wrong" in answer.reply or "help you with" in answer.reply


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200b", "\u200b \u2060 \ufeff", "\n\t"])
def test_empty_input_gets_a_clear_error(assistant, text):
    with pytest.raises(InputError, match="empty"):
        assistant.answer(text, "empty")


def test_an_over_long_message_gets_a_clear_error(assistant):
    with pytest.raises(InputError, match="5,000 characters long; the limit is 4,000"):
        assistant.answer("x" * 5000, "long")


@pytest.mark.parametrize("text", ["Non riesco a sincronizzare i colloqui con Google Calendar, non funziona",
                                  "打开看板时出现错误代码500", "Мой пароль не принимается, я не могу войти"])
def test_another_language_is_never_acted_on_by_guess(assistant, text):
    answer = assistant.answer(text, "abroad", dry_run=True)
    assert remedies(answer) == []
    assert answer.decision in ("clarify", "escalate")
    if answer.decision == "clarify":
        assert "English" in answer.reply


def test_a_clear_business_request_in_another_language_goes_to_a_person(assistant):
    # A price question with nothing technical in it (a feature's name beside the price makes the group unclear).
    for text in ("Quanto costa il piano Team per 20 persone?", "¿Cuánto cuesta el plan Team?"):
        answer = assistant.answer(text, "abroad", dry_run=True)
        assert answer.decision == "escalate" and answer.category in BUSINESS, text


def test_an_unsure_business_request_goes_to_a_person_with_its_close_readings(assistant):
    answer = assistant.answer("is there any kind of discount we could get", "unsure-business", dry_run=True)
    assert answer.decision == "escalate" and answer.category == "pricing"
    assert "it may also be about" in answer.escalation.summary
    clear = assistant.answer("Can we get a non-profit discount?", "clear-business", dry_run=True)
    assert clear.decision == "escalate" and "it may also be" not in clear.escalation.summary
