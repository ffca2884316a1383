"""Reply templates kept as data, rendered with a fixed set of placeholders and varied per conversation.

What fills each placeholder reads inside a sentence: `{subject}` is a playbook's name after "about" (its `subject`,
see knowledge/playbooks.py), `{done}` what was done in the past tense, `{when}` a deadline in plain words ("within
two days"), `{decision}` and `{self_service}` whole sentences. An action reaches the user only in the catalogue's
plain words (engine/actions/catalogue.py `doing`/`did`), with the service named as `services` in the replies file
says, never by its id.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.errors import ConfigurationError
from core.yamlfile import load_mapping, shorten
from engine.actions.catalogue import ACTIONS

SITUATIONS = ("decline", "clarify", "escalate", "resolved", "unresolved", "not_fixed", "handoff", "dry_run",
              "recently_done", "unsure", "confirm",
              # the conversation around a decision (engine/chat/dialogue.py)
              "greeting", "fixed", "retry", "partly", "try_other", "not_this", "reask_confirm", "reask_choice",
              "reask_check", "new_problem", "rate", "reask_rating", "thanks_rating", "waiting", "decided")
# Situations added later: a replies file without them says the older situation's words instead.
OPTIONAL = {"ask_problem": "unsure", "no_action": "confirm", "aside_escalated": "escalate", "aside_noted": "unsure",
            "take_up_pending": "confirm", "english_only": "unsure", "recently_done_other": "recently_done",
            "joined": "resolved", "already_on_it": "resolved", "being_fixed": "recently_done", "held_back": "not_fixed",
            "unverified_also": "unverified", "did_that_answer_declined": "did_that_answer",
            "check_later": "reask_check", "rating_declined": "thanks_rating"}
# Situations added later that no older one can stand in for without saying something untrue ("I did it" for a fix
# that was refused) or unkind ("glad that's settled" after a refusal): a replies file without them says these words.
BUILT_IN = {
    "unverified": ("I'd have {done}, but that changes your account, and this chat can't confirm who you are, so I "
                   "haven't changed anything. {self_service}",),
    "sign_in_first": ("If you open this chat from inside {product} while you're signed in, I'll know it's you and "
                      "can do it for you.",),
    # The escalation desk (engine/desk/desk.py): a person's answer, question or silence, told as it is.
    "approved": ("Good news: the {product} team approved your request about {subject}. {decision}",),
    "rejected": ("The {product} team looked at your request about {subject} and can't approve it. {decision}",),
    "team_question": ("The {product} team needs a little more to decide on your request about {subject}. Just "
                      "reply here and I'll pass your answer on.",),
    "answer_passed": ("Thanks, I've passed that to the team. Their decision will appear here.",),
    "expired": ("I'm sorry: the {product} team couldn't decide in time on your request about {subject}, so it has "
                "been closed without approval. If it still matters to you, ask again and it goes back to them.",),
    "expired_unanswered": ("The {product} team's question about your request about {subject} went unanswered, so "
                           "the request has been closed without approval. If it still matters to you, ask again "
                           "and it goes back to them.",),
    "question_still_open": ("I'll look at this first. The {product} team's question about your request about "
                            "{subject} is still open: answer it here whenever you're ready.",),
    "did_that_answer": ("Does that answer your question?",),
    "settled": ("Glad that's settled.",),
    "settled_declined": ("Thank you for hearing it out, and I'm sorry it wasn't a yes.",),
    "not_settled": ("Sorry it doesn't settle it. Tell me what's still open and I'll take it from there.",),
    "expect_answer": ("You'll hear back here {when}.",),
    "rate_handoff": ("While they look into it: how did I do so far? You can rate this conversation from 1 (poor) "
                     "to 5 (great).",),
    "rate_declined": ("Whatever the outcome, how did I do at getting you an answer? You can rate this conversation "
                      "from 1 (poor) to 5 (great).",),
    # After a hand-off (engine/chat/dialogue.py, engine/desk/handoffs.py): honest about who has the problem.
    "still_with_engineering": ("I know, and I'm sorry it's still not working. Our engineers have it with everything "
                               "I found, and their update will appear right here; you don't need to do anything "
                               "else.",),
    "handoff_check": ("Is it working for you now?",),
    # A request passed to a person, which the user says was not what they asked.
    "withdrawn": ("Sorry, my mistake: I've taken back the request about {subject} I passed to the team.",),
}
PLACEHOLDERS = frozenset({"product", "subject", "title", "done", "options", "decision", "self_service", "when"})
# What the callers of each situation fill ({product} always; {title} is the older name of {subject}). A template
# that uses anything else would show a hole, so loading refuses it. A situation not listed may use any placeholder.
_DONE = frozenset({"done", "subject"})
FILLS: dict[str, frozenset[str]] = {
    **{s: frozenset() for s in ("decline", "unsure", "ask_problem", "english_only", "greeting", "fixed", "retry",
                                "partly", "not_this", "reask_check", "new_problem", "rate", "rate_handoff",
                                "rate_declined", "reask_rating", "thanks_rating", "answer_passed", "did_that_answer",
                                "did_that_answer_declined", "settled", "settled_declined", "not_settled",
                                "sign_in_first", "check_later", "rating_declined", "still_with_engineering",
                                "handoff_check")},
    **{s: frozenset({"options"}) for s in ("clarify", "reask_choice")},
    **{s: frozenset({"subject"}) for s in ("confirm", "no_action", "aside_noted", "take_up_pending", "try_other",
                                           "reask_confirm", "waiting", "team_question", "expired",
                                           "expired_unanswered", "question_still_open", "handoff", "withdrawn")},
    **{s: frozenset({"subject", "when"}) for s in ("escalate", "aside_escalated")},
    **{s: frozenset({"subject", "decision"}) for s in ("decided", "approved", "rejected")},
    **{s: _DONE for s in ("resolved", "unresolved", "not_fixed", "dry_run", "recently_done", "recently_done_other",
                          "joined", "already_on_it", "being_fixed", "held_back")},
    **{s: _DONE | {"self_service"} for s in ("unverified", "unverified_also")},
    "expect_answer": frozenset({"when"}),
}
SENTENCES = ("decision", "self_service")  # placeholders that hold whole sentences (a decider's reason, advice)
SERVICES_KEY = "services"  # the replies file's map of service id -> how the user hears it named
UNKNOWN_SERVICE = "the part of {product} that handles this"
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


class Voice:
    """Picks and fills reply templates; the same conversation and situation always get the same variant."""

    def __init__(self, templates: Mapping[str, Sequence[str]], product: str,
                 services: Mapping[str, str] | None = None) -> None:
        self.templates = {key: tuple(value) for key, value in templates.items()}
        self.product = product
        self.services = dict(services or {})

    def say(self, situation: str, seed: str, overrides: Sequence[str] = (), **values: str) -> str:
        if not overrides and situation not in self.templates and situation in OPTIONAL:
            situation = OPTIONAL[situation]
        variants = tuple(overrides) or self.templates.get(situation) or BUILT_IN[situation]
        digest = hashlib.sha256(f"{seed}:{situation}".encode()).digest()
        return self.render(variants[digest[0] % len(variants)], **values)

    def render(self, template: str, **values: str) -> str:
        """One template filled: `subject` and `title` stand for each other, sentence placeholders end as sentences,
        and an empty value leaves no doubled space behind."""
        subject = values.get("subject") or values.get("title") or ""
        filled = {"product": self.product, "done": "", "options": "", "decision": "", "self_service": "", "when": "",
                  **values, "subject": subject, "title": subject}
        for key in SENTENCES:
            filled[key] = as_sentence(filled[key])
        return " ".join(template.format_map(filled).split())

    def variants(self, situation: str) -> tuple[str, ...]:
        """Every template the voice may say for `situation` (what `say` picks from, without overrides)."""
        if situation not in self.templates and situation in OPTIONAL:
            situation = OPTIONAL[situation]
        return self.templates.get(situation) or BUILT_IN[situation]

    def service(self, service_id: str) -> str:
        """A service as the user hears it named ("the sign-in service"), never its id."""
        return self.services.get(service_id) or UNKNOWN_SERVICE.format(product=self.product)

    def action(self, name: str, target: str, *, doing: bool = False) -> str:
        """What an action does, in the catalogue's plain words: "restarting the sign-in service" while it runs
        (`doing`), "restarted the sign-in service" once done; an action the catalogue does not know is "a fix"."""
        spec = ACTIONS.get(name)
        if spec is None:
            return "trying a fix" if doing else "tried a fix"
        return (spec.doing if doing else spec.did).format(service=self.service(target))

    def progress(self, name: str, target: str) -> str:
        """The progress line shown while an action runs: "Restarting the sign-in service…"."""
        text = self.action(name, target, doing=True)
        return f"{text[:1].upper()}{text[1:]}…"


def either(subjects: Sequence[str]) -> str:
    """Subjects offered as choices: "a", "a or b", "a, b, or c" (the last comma keeps a subject's own "or" apart)."""
    subjects = [s for s in subjects if s]
    if len(subjects) <= 2:
        return " or ".join(subjects)
    return ", ".join(subjects[:-1]) + ", or " + subjects[-1]


def within(seconds: float | None) -> str:
    """A time to answer in plain words, rounded up so it never promises sooner than the deadline: "within an hour",
    "within 6 hours" -> "within six hours", "within a day", "within two days", "within a week"; without one,
    "as soon as they've decided"."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return "as soon as they've decided"
    hours = math.ceil(seconds / 3600 - 1e-9)
    if hours <= 1:
        return "within an hour"
    if hours < 24:
        return f"within {_number(hours)} hours"
    days = math.ceil(hours / 24 - 1e-9)
    if days == 1:
        return "within a day"
    if days == 7:
        return "within a week"
    return f"within {_number(days)} days"


def as_sentence(text: str) -> str:
    """Text that must stand as a sentence of its own: a capital first and a full stop last, if it has neither."""
    text = " ".join(text.split())
    if not text:
        return ""
    if text[0].islower():
        text = text[0].upper() + text[1:]
    if re.search("[.!?\u2026][\"')\u201d\u2019]*$", text) is None:
        text += "."
    return text


def _number(n: int) -> str:
    return NUMBERS[n] if n < len(NUMBERS) else str(n)


def load_voice(path: Path, product: str) -> Voice:
    data = load_mapping(path, "the reply templates", "situation -> list of templates")
    services = data.pop(SERVICES_KEY, None) or {}
    if not isinstance(services, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                  for k, v in services.items()):
        raise ConfigurationError(f"{path}: {SERVICES_KEY}: expected a mapping of service id -> how the user hears "
                                 "it named (\"auth: the sign-in service\")")
    missing = [s for s in SITUATIONS if not data.get(s)]
    if missing:
        raise ConfigurationError(f"{path}: no templates for {', '.join(missing)}")
    for situation, variants in data.items():
        if situation not in SITUATIONS and situation not in OPTIONAL and situation not in BUILT_IN:
            known = ", ".join((*SITUATIONS, *OPTIONAL, *BUILT_IN))
            raise ConfigurationError(f"{path}: unknown situation {shorten(situation)}; known: {known}")
        variants = [variants] if isinstance(variants, str) else variants
        if not isinstance(variants, list) or not all(isinstance(text, str) for text in variants):
            raise ConfigurationError(f"{path}: {situation}: expected a template or a list of templates (text)")
        allowed = FILLS[situation] | {"product", "title"} if situation in FILLS else PLACEHOLDERS
        if "subject" not in allowed:
            allowed -= {"title"}
        for text in variants:
            try:
                names = {n for _, n, _, _ in string.Formatter().parse(text) if n is not None}
            except ValueError as error:
                raise ConfigurationError(f"{path}: {situation}: bad template {shorten(text)}: {error} (write {{{{ "
                                         "and }} for literal braces)") from None
            if names - PLACEHOLDERS:
                raise ConfigurationError(f"{path}: {situation}: unknown placeholder(s) {sorted(names - PLACEHOLDERS)}")
            if names - allowed:
                raise ConfigurationError(f"{path}: {situation}: {sorted(names - allowed)} is never filled in this "
                                         f"situation; it may use {sorted(allowed)}")
        data[situation] = variants
    return Voice(data, product, {k: " ".join(v.split()) for k, v in services.items()})
