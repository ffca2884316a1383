# ruff: noqa: RUF001 - messages in other scripts are the point
"""Taking a message apart: denials left out of matching, separate requests, forbidden actions, the language."""

import pytest

from knowledge.clauses import asks, read, refers_back
from knowledge.language import ENGLISH, language_of


@pytest.mark.parametrize(
    ("message", "kept", "denied"),
    [
        ("I never asked for a password reset but I keep getting reset emails", "I keep getting reset emails",
         "I never asked for a password reset"),
        ("it's not the mobile app, it's the web dashboard that keeps timing out",
         "it's the web dashboard that keeps timing out", "it's not the mobile app"),
        ("the site isn't slow at all, it's just that I can't log in", "it's just that I can't log in",
         "the site isn't slow at all"),
        ("I'm not locked out, I just never get the 2fa code", "I just never get the 2fa code", "I'm not locked out"),
        ("Not asking for a refund, I only want to know why my invoice changed",
         "I only want to know why my invoice changed", "Not asking for a refund"),
        ("The calendar is fine. It's not the sync, it's that reminders come at 3am",
         "The calendar is fine. it's that reminders come at 3am", "It's not the sync"),
    ],
)
def test_a_denial_is_left_out_of_what_is_matched(message, kept, denied):
    found = read(message)
    assert found.text == kept and found.denied == (denied,)


@pytest.mark.parametrize(
    "message",
    [
        "the page isn't loading but the app works",  # a symptom said negatively, then something that works
        "I can't log in",
        "search doesn't work and it's slow",
        "it's not loading",  # nothing follows: the whole message is the problem
        "not working",
    ],
)
def test_a_symptom_said_negatively_is_kept(message):
    found = read(message)
    assert found.text == message and not found.denied


@pytest.mark.parametrize(
    ("message", "requests"),
    [
        ("I can't log in on my phone, and separately our Slack integration stopped posting new applicants",
         ("I can't log in on my phone", "our Slack integration stopped posting new applicants")),
        ("search is slow and can we get a discount", ("search is slow", "can we get a discount")),
        ("export fails, and delete my account and all our data",
         ("export fails", "delete my account and all our data")),
        ("my board is slow, btw the csv export is empty", ("my board is slow", "the csv export is empty")),
        ("I cannot log in. Also the export is empty.", ("I cannot log in.", "Also the export is empty.")),
    ],
)
def test_separate_requests_are_found(message, requests):
    assert read(message).requests == requests


@pytest.mark.parametrize("message", ["my calendar and my email import are both broken", "I also cannot see my board",
                                     "also broken", "search and filters are slow"])
def test_one_request_is_not_split(message):
    assert read(message).requests == ()


@pytest.mark.parametrize("message", ["Do NOT restart anything", "please don't reset my settings, just tell me why",
                                     "dont touch the server, what's wrong with search?",
                                     "no need to resend anything, I found the email",
                                     "Don't reconnect Slack yet, why are messages missing?",
                                     "I don't want you to delete anything, just say why my tags vanished",
                                     "read-only question, no changes please: why is sync late?"])
def test_a_forbidden_action_is_noticed(message):
    assert read(message).forbids_action


@pytest.mark.parametrize("message", ["I can't log in", "the reset email doesn't arrive", "don't know why it's slow",
                                     "never received the invite", "I don't see my board", "Don't get any reminders"])
def test_a_plain_problem_forbids_nothing(message):
    assert not read(message).forbids_action


@pytest.mark.parametrize(
    ("message", "english"),
    [
        ("Quanto costa il piano Team per 10 utenti?", False),
        ("Не могу подключить Zapier, ключ API не принимается", False),
        ("打开看板时出现错误代码500", False),
        ("Ich kann mich nicht anmelden, mein Passwort wird nicht akzeptiert", False),
        ("I can't log in", True),
        ("export broken", True),
        ("app bahut slow hai", True),  # mixed and short: left to the model
        ("2fa", True),
        ("🙂", True),
    ],
)
def test_the_language_is_named_only_when_clear(message, english):
    assert (language_of(message) == ENGLISH) is english


@pytest.mark.parametrize(("clause", "asking"), [
    ("Could we switch to yearly billing?", True),
    ("We need the invoices in euros.", True),
    ("We'd like ten more seats", True),
    ("is there a student price", True),
    ("and please waive the late fee", True),
    ("Remove the two extra seats from our bill", True),
    ("We moved to a new office.", False),
    ("We're on the Team plan.", False),
    ("I forgot to cancel.", False),
    ("We hired 30 people last month.", False),
])
def test_a_clause_that_asks_is_told_from_one_that_gives_context(clause, asking):
    assert asks(clause) is asking


@pytest.mark.parametrize(("clause", "back"), [
    ("Does that cost more?", True),
    ("Is this possible on Starter?", True),
    ("And would it work for 40 people?", True),
    ("That is a big problem for us", False),  # "that" as a subject of its own statement about a thing named
    ("Could we pay yearly?", False),
    ("It is a school, not a company", False),
])
def test_a_clause_about_the_one_before_is_noticed(clause, back):
    assert refers_back(clause) is back
