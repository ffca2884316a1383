"""Reply templates kept as data, rendered with a fixed set of placeholders and varied per conversation."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from core.errors import ConfigurationError

SITUATIONS = ("decline", "clarify", "escalate", "resolved", "unresolved", "not_fixed", "handoff", "dry_run",
              "recently_done", "unsure", "confirm",
              # the conversation around a decision (engine/chat/dialogue.py)
              "greeting", "fixed", "retry", "partly", "try_other", "not_this", "reask_confirm", "reask_choice",
              "reask_check", "new_problem", "rate", "reask_rating", "thanks_rating", "waiting", "decided")
# Situations added later: a replies file without them says the older situation's words instead.
OPTIONAL = {"ask_problem": "unsure", "no_action": "confirm", "aside_escalated": "escalate", "aside_noted": "unsure",
            "take_up_pending": "confirm", "english_only": "unsure", "recently_done_other": "recently_done",
            "joined": "resolved", "already_on_it": "resolved", "being_fixed": "recently_done", "held_back": "not_fixed",
            "unverified_also": "unverified"}
# Situations added later that no older one can stand in for without saying something untrue ("I did it" for a fix
# that was refused): a replies file without them says these words.
BUILT_IN = {
    "unverified": ("I'd have {done}, but that changes your account, and this chat can't confirm who you are, so I "
                   "haven't changed anything. {self_service}",),
    "sign_in_first": ("If you open this chat from inside {product} while you're signed in, I'll know it's you and "
                      "can do it for you.",),
    # The escalation desk (engine/desk/desk.py): a person's answer, question or silence, told as it is.
    "approved": ("Good news: the {product} team approved your request ({title}). {decision}",),
    "rejected": ("The {product} team looked at your request ({title}) and can't approve it. {decision}",),
    "team_question": ("The {product} team needs a little more to decide your request ({title}). Just reply here "
                      "and I'll pass your answer on.",),
    "answer_passed": ("Thanks, I've passed that to the team. Their decision will appear here.",),
    "expired": ("I'm sorry: the {product} team couldn't decide on your request ({title}) in time, so it has been "
                "closed without approval. If it still matters to you, ask again and it goes back to them.",),
    "expired_unanswered": ("The {product} team's question about your request ({title}) went unanswered, so the "
                           "request has been closed without approval. If it still matters to you, ask again and it "
                           "goes back to them.",),
    "question_still_open": ("I'll look at this first. The {product} team's question about your request ({title}) "
                            "is still open: answer it here whenever you're ready.",),
    "did_that_answer": ("Does that answer your question?",),
    "settled": ("Glad that's settled.",),
    "not_settled": ("Sorry it doesn't settle it. Tell me what's still open and I'll take it from there.",),
}
PLACEHOLDERS = frozenset({"product", "title", "done", "options", "decision", "self_service"})


class Voice:
    """Picks and fills reply templates; the same conversation and situation always get the same variant."""

    def __init__(self, templates: Mapping[str, Sequence[str]], product: str) -> None:
        self.templates = {key: tuple(value) for key, value in templates.items()}
        self.product = product

    def say(self, situation: str, seed: str, overrides: Sequence[str] = (), **values: str) -> str:
        if not overrides and situation not in self.templates and situation in OPTIONAL:
            situation = OPTIONAL[situation]
        variants = tuple(overrides) or self.templates.get(situation) or BUILT_IN[situation]
        digest = hashlib.sha256(f"{seed}:{situation}".encode()).digest()
        template = variants[digest[0] % len(variants)]
        filled = {"product": self.product, "title": "", "done": "", "options": "", "decision": "", "self_service": "",
                  **values}
        return template.format_map(filled).strip()


def load_voice(path: Path, product: str) -> Voice:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError(f"cannot read the reply templates {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a mapping of situation -> list of templates")
    missing = [s for s in SITUATIONS if not data.get(s)]
    if missing:
        raise ConfigurationError(f"{path}: no templates for {', '.join(missing)}")
    for situation, variants in data.items():
        if situation not in SITUATIONS and situation not in OPTIONAL and situation not in BUILT_IN:
            known = ", ".join((*SITUATIONS, *OPTIONAL, *BUILT_IN))
            raise ConfigurationError(f"{path}: unknown situation {situation!r}; known: {known}")
        variants = [variants] if isinstance(variants, str) else variants
        for text in variants:
            names = {n for _, n, _, _ in string.Formatter().parse(text) if n is not None}
            if names - PLACEHOLDERS:
                raise ConfigurationError(f"{path}: {situation}: unknown placeholder(s) {sorted(names - PLACEHOLDERS)}")
        data[situation] = variants
    return Voice(data, product)
