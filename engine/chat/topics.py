"""What a piece of a reply is about, judged by the playbook index: no problem, the one in hand, or another.

The reply reader (`engine.chat.understanding`) asks this of a complaint it cannot place by its words alone:
"it still doesn't load" is the problem in hand whatever it names, but "the reminders never came" after a fix
to the dashboard is another problem, and only the index knows which playbook a sentence is about.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from core.taxonomy import Kind
from engine.chat.understanding import Judge, Topic
from knowledge.base import Band, Match
from knowledge.calibration import Calibration

CLOSE = 3  # in the clarify band, the problem in hand among this many nearest playbooks is "the same"


class Matcher(Protocol):
    calibration: Calibration

    def match(self, text: str) -> Match: ...


def index_judge(knowledge: Matcher, in_hand: Collection[str]) -> Judge:
    """A judge over `knowledge`: SAME when the piece matches a playbook in `in_hand` (the problem being worked
    on, or the options offered), or the index is unsure and one of them is among the nearest; OTHER when it
    matches another playbook as surely as the dialogue needs to leave the one in hand (the answer band above
    the calibrated `t_high`, or a clear business request, which a person reads anyway); LIKELY_OTHER when it
    matches another playbook in the answer band but less surely (enough for a complaint with nothing tying it
    to the fix, not for a question); NONE otherwise (out of scope, a greeting, unsure which)."""
    strict = knowledge.calibration.t_high  # "how do I check?" may reach the answer band, never this

    def judge(text: str) -> Topic:
        match = knowledge.match(text)
        if match.band not in (Band.ANSWER, Band.CLARIFY):
            return Topic.NONE
        if match.best.playbook in in_hand:
            return Topic.SAME
        if any(c.playbook in in_hand for c in match.candidates[:CLOSE]) and match.best.score < strict:
            return Topic.SAME  # unsure which playbook, and the one in hand is among the nearest
        if match.band is Band.ANSWER:
            sure = match.best.score >= strict or match.group == Kind.BUSINESS.value  # a request for a person
            return Topic.OTHER if sure else Topic.LIKELY_OTHER
        return Topic.NONE
    return judge
