"""What a message says beyond the meaning of its words: the clauses that deny a symptom, the separate requests it
makes, and whether the user forbids any action.

Sentence embeddings barely see "not" (sentence-transformers#1330): "it's not the mobile app, it's the web
dashboard" lands next to the mobile app's playbook. So a clause that says what the problem is *not* is taken
out before matching. A denial is told from a symptom stated negatively ("the page isn't loading") by its shape:
it is followed by the real problem ("..., it's", "but I keep", "I just") or says "at all", or it negates an
identity ("it's not the", "I never asked for", "not about").

Chat assistants that keep only the top intent drop the second request of "search is slow and can we get a
discount" (rasa#2107). So a message is also split into its requests, at sentence ends and at the joints
people use ("and also", "btw", "separately", "and can we ..."), for each to be matched on its own.

Everything here is plain text rules over the user's words, never executed, and cheap (no model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_WORDS = 2  # a part shorter than this is a fragment ("and", "also"), not a request ("export fails" is one)

_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")
# "X, but Y", "X; it's Y", "X, I just Y": the joint between what the problem is not and what it is.
_CONTRAST = re.compile(
    r"\s*[,;:\u2013\u2014-]?\s*\b(?:but|however|though|rather|instead)\b[,]?\s*"
    r"|\s*[,;:\u2013\u2014-]\s*(?=(?:it'?s|it is|its|i just|i only|just|only|the (?:real )?(?:problem|issue|thing) is|"
    r"what (?:happens|i see) is|i keep|instead)\b)",
    re.IGNORECASE)
_AFFIRMING = re.compile(
    r"^(?:it'?s|it is|its|this is|that'?s|i just|i only|just|only|the (?:real )?(?:problem|issue|thing) is|"
    r"what (?:happens|i see) is|i keep|i am just|i'?m just|instead)\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|never|no|isn'?t|aren'?t|wasn'?t|weren'?t|don'?t|doesn'?t|didn'?t|can'?t|"
                       r"cannot|won'?t|haven'?t|hasn'?t)\b", re.IGNORECASE)
_IDENTITY_DENIAL = re.compile(
    r"\b(?:(?:it|this|that)(?:'s| is|s)? not|(?:it|this|that) isn'?t|not (?:the|my|a|an|about|that|asking|"
    r"because|related|really)\b|never (?:asked|requested|clicked|wanted|signed up|tried)|"
    r"did(?:n'?t| not) (?:ask|request|click|want|change|sign up|touch)|(?:i'?m|i am) not|"
    r"nothing (?:wrong|to do) with|no (?:problem|issue)s? with)", re.IGNORECASE)
_AT_ALL = re.compile(r"\bat all\b", re.IGNORECASE)
_ALSO = re.compile(
    r"\s*[,;]?\s*(?:\band\s+)?\b(?:also,|also|btw|by the way|separately|another thing|one more thing|"
    r"on top of that|in addition|additionally|secondly|plus,)(?=[\s,:]|$)[:,]?\s*"
    r"|\s*,?\s*\band\b\s+(?=(?:can|could|would|will|please|pls|i'?d like|we'?d like|i want|we want|i need|"
    r"we need|how|what|why|when|is there|are there|do you|does|delete|cancel|refund|remove|close|give|send|"
    r"also)\b)",
    re.IGNORECASE)
# The user forbids an action: a negated imperative at the start of a clause ("do NOT restart anything", "please
# don't regenerate my key", "Don't process a refund yet"), "I don't want you to ...", or "no changes". First-person
# negations ("I don't know why") state a problem and are not instructions.
_FORBIDS = re.compile(
    r"(?:^|[.,;:!?(]\s*|\b(?:please|pls|plz|but|and|so)\s+)(?:do not|don'?t|dont)\s+"
    r"(?!know\b|understand\b|see\b|get\b|have\b|think\b|remember\b|want\b|need\b|care\b|mind\b|worry\b)[a-z-]+"
    r"|\b(?:i|we) (?:do not|don'?t|dont) want you to\b|\bno need to (?:fix|change|restart|reset|resend|touch|"
    r"run|do)\b"
    r"|\bno changes\b|\bwithout changing anything\b|\binformation only\b|\bdon'?t change anything\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """A message taken apart: the text to match (denials taken out), what was denied, the separate requests,
    and whether the user forbids actions."""

    text: str  # what to match as the main problem: the message less its denials
    denied: tuple[str, ...] = ()  # clauses saying what the problem is not
    requests: tuple[str, ...] = ()  # the separate requests, when there are two or more
    forbids_action: bool = False


def read(message: str) -> Reading:
    """Take `message` apart; a message with nothing to take apart comes back whole."""
    kept: list[str] = []
    denied: list[str] = []
    for sentence in (s.strip() for s in _SENTENCES.split(message) if s.strip()):
        parts = _contrast_parts(sentence)
        for i, part in enumerate(parts):
            following = parts[i + 1] if i + 1 < len(parts) else ""
            (denied if following and _is_denial(part, following) else kept).append(part)
    text = " ".join(kept)
    if not denied or _words(text) < MIN_WORDS:
        text, denied = message, []
    requests = [part for piece in kept for part in _also_parts(piece)] if denied else _requests(message)
    return Reading(text=text, denied=tuple(denied), requests=tuple(requests) if len(requests) > 1 else (),
                   forbids_action=bool(_FORBIDS.search(message)))


def _contrast_parts(sentence: str) -> list[str]:
    pieces = [p.strip(" ,;:-") for p in _CONTRAST.split(sentence)]
    return [p for p in pieces if p] or [sentence]


def _is_denial(part: str, following: str) -> bool:
    """`part`, followed by `following`, says what the problem is not."""
    if not _NEGATION.search(part):
        return False
    return bool(_IDENTITY_DENIAL.search(part) or _AT_ALL.search(part) or _AFFIRMING.match(following))


# A clause that asks for something (a question, or "please", "we need", "we'd like", "is there", "do you"),
# as opposed to one that gives context ("We're on Enterprise.", "I forgot to cancel.", "Our company is growing.").
_ASKS = re.compile(
    r"\?|\b(?:can|could|would|will|may)\s+(?:you|we|i|u|someone|anyone)\b|\bplease\b|\bpls\b|\bplz\b"
    r"|\b(?:i|we)\s*(?:'d|would)\s+(?:like|love|prefer)\b|\b(?:i|we)\s+(?:want|need|require|request)\b"
    r"|\b(?:is|are)\s+there\b|\bdo\s+you\b|\bdoes\s+(?:your|the|firstline)\b|\bhow\s+(?:do|can|much|many)\b"
    r"|\blooking\s+for\b|\binterested\s+in\b|\bwhat\s+(?:is|are|would|does)\b"
    # an imperative: "delete my account", "and please extend the trial"
    r"|^\W*(?:(?:and|also|then|so|btw|but)\W+)*(?:(?:please|pls|kindly|just)\s+)?(?:delete|cancel|refund|remove|"
    r"close|give|send|extend|add|upgrade|downgrade|change|switch|move|transfer|increase|raise|lower|reduce|waive|"
    r"allow|let|make|sign|export|erase|wipe|stop|end|terminate|renew|apply|offer|unlock|enable|disable|reactivate|"
    r"restore|host|keep|store|invoice|bill|charge|credit|quote|approve)\b",
    re.IGNORECASE)
# A clause about what the one before it said ("Is that possible on Team?", "Would it work for us?").
_REFERS_BACK = re.compile(
    r"^(?:and\s+|so\s+|but\s+)?(?:(?:is|are|was|would|will|does|do|can|could)\s+)?(?:that|this|it|those|these|"
    r"they)\b(?!\s+(?:is|are)\s+(?:a|an|the)\b)", re.IGNORECASE)


def asks(clause: str) -> bool:
    """The clause asks for something, rather than giving context."""
    return bool(_ASKS.search(clause))


def refers_back(clause: str) -> bool:
    """The clause is about what was said before it ("Is that possible on the Team plan?"), not a request of its
    own."""
    return bool(_REFERS_BACK.match(clause.strip()))


def _requests(message: str) -> list[str]:
    parts = [p for s in _SENTENCES.split(message) if s.strip() for p in _also_parts(s.strip())]
    return [p for p in parts if _words(p) >= MIN_WORDS]


def _also_parts(text: str) -> list[str]:
    """`text` split at the joints that start another request; a split leaving a fragment is not made."""
    pieces = [p.strip(" ,;:-") for p in _ALSO.split(text) if p and p.strip(" ,;:-")]
    if len(pieces) > 1 and all(_words(p) >= MIN_WORDS for p in pieces):
        return pieces
    return [text]


def _words(text: str) -> int:
    return len(re.findall(r"\w+", text))
