"""The conversation around decisions: confirm, clarify, act, check with the user, try again, hand off, rate.

Each message moves a small state machine whose state is a row in the store, never process memory, so any
server thread (or process) can take the next turn:

    open ──problem──► confirming / choosing ──yes / a choice──► verifying ──yes──► rating ──1..5──► open
                 └──────────────── clear match ───────────────────┘    │ no, partly: the next remedy,
    business ──► awaiting_decision ──a decider decides──► checking_answer ──yes──► rating
                       ▲    │ a decider asks                   │ the next candidate, or engineering
                       └────┘ the user's next message answers  └──► rating when handed off

Replies are read by `engine.chat.understanding.ReplyReader`; anything that reads as a new problem starts over.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np

from core.errors import InputError, NotFoundError
from core.taxonomy import BUSINESS
from engine.chat.assistant import Answer, Assistant, Message, clean_message
from engine.chat.topics import index_judge
from engine.chat.understanding import YES_BUT_ELSE, Judge, Option, Question, Reading, ReplyIntent, ReplyReader, Topic
from engine.chat.voice import either
from engine.learning.loop import JudgedFix, LearningLoop
from engine.store.conversations import ConversationRow, Conversations
from engine.store.escalations import UNDECIDED, EscalationRow, Escalations, EscalationStatus, EventKind, EventRow
from engine.store.privacy import Privacy
from knowledge.base import Band, Candidate, Match

Progress = Callable[[str], None]
RATING = re.compile(r"^\s*([1-5])(?:\s*(?:/\s*5|stars?|out of 5))?\b[\s,.:;!-]*(.*)$", re.IGNORECASE | re.DOTALL)
MAX_COMMENT_CHARS = 2000  # a rating's comment: a few sentences, not a document
OPTION_EXAMPLES = 12  # example phrasings per offered playbook that a described choice is compared with


class Stage(StrEnum):
    OPEN = "open"  # waiting for a problem
    CONFIRMING = "confirming"  # asked "is it X?"
    CHOOSING = "choosing"  # asked "X, Y or Z?"
    VERIFYING = "verifying"  # acted; asked "is it working now?"
    AWAITING_DECISION = "awaiting_decision"  # a person decides a business request (or waits for the user's answer)
    CHECKING_ANSWER = "checking_answer"  # a person decided; asked "does that answer your question?"
    RATING = "rating"  # asked for a 1-5 rating


@dataclass
class ConversationState:
    """What the conversation is in the middle of; saved as JSON with every turn."""

    stage: Stage = Stage.OPEN
    problem: str = ""  # the user's description of the problem being worked on
    playbook: str | None = None
    options: list[str] = field(default_factory=list)  # playbooks offered, best first
    candidates: list[list[Any]] = field(default_factory=list)  # [playbook, category, score] of the problem
    tried: list[str] = field(default_factory=list)  # playbooks acted on for this problem
    escalation_id: str | None = None
    asked: bool = False  # a decider asked the user a question about escalation_id; the next message answers it
    turn: int = 0
    pending: list[list[str]] = field(default_factory=list)  # [playbook, text] of other problems the user named
    handed_off: bool = False  # engineering has this problem (a hand-off); its closing asks the user to check

    @classmethod
    def load(cls, stage: str, payload: dict[str, Any]) -> ConversationState:
        known = {k: v for k, v in payload.items() if k in cls.__dataclass_fields__ and k != "stage"}
        return cls(stage=Stage(stage), **known)

    def payload(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "stage"}

    @property
    def first_playbook(self) -> str | None:
        """The playbook first acted on for this problem (the one it was first taken for)."""
        return self.tried[0] if self.tried else self.playbook


def versioned_state(chats: Conversations, conversation_id: str) -> tuple[ConversationState, int | None]:
    """A conversation's saved state and its version (None and a fresh state when it has none yet), for a guarded
    save: the dialogue's turns and the desk's posts read it the same way."""
    found = chats.state(conversation_id)
    return (ConversationState.load(found[0], found[1]), found[2]) if found else (ConversationState(), None)


@dataclass(frozen=True)
class Choice:
    """A button the page may show; `value` is what it sends back as the user's message."""

    label: str
    value: str


@dataclass(frozen=True)
class Exchange:
    """One turn's outcome: the assistant's messages, the stage now, the choices offered, what was understood."""

    conversation_id: str
    stage: Stage
    replies: tuple[str, ...]
    choices: tuple[Choice, ...] = ()
    understood: str | None = None
    answer: Answer | None = None


@dataclass
class _Turn:
    message: Message  # validated, owned, rate-checked and stored before the turn begins
    vector: np.ndarray
    state: ConversationState
    progress: Progress
    replies: list[str] = field(default_factory=list)
    written: int = 0  # replies already staged in `pending`
    understood: str | None = None
    pending: list[tuple[str, Sequence[Any]]] = field(default_factory=list)  # committed with the new state

    @property
    def conversation_id(self) -> str:
        return self.message.conversation_id

    @property
    def user_id(self) -> str:
        return self.message.user_id

    @property
    def text(self) -> str:
        return self.message.text


YES_NO = (Choice("Yes", "yes"), Choice("No", "no"))
CHECK = (Choice("Yes, it works", "yes, it works now"), Choice("Partly", "partly"),
         Choice("No, still broken", "no, it's still broken"))
RATINGS = tuple(Choice(str(n), str(n)) for n in range(1, 6))


class Dialogue:
    """Takes turns in conversations; stateless itself, like the assistant it drives."""

    def __init__(self, assistant: Assistant, reader: ReplyReader, learning: LearningLoop, *,
                 conversations: Conversations, escalations: Escalations, privacy: Privacy,
                 clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.assistant = assistant
        self.reader = reader
        self.learning = learning
        self.chats = conversations
        self.escalations = escalations
        self.privacy = privacy
        self.clock = clock
        self.new_id = new_id

    @property
    def knowledge(self):
        return self.assistant.knowledge

    @property
    def voice(self):
        return self.assistant.voice

    # -- conversations ------------------------------------------------------------------------------

    def start(self, user_id: str, channel: str = "web") -> Exchange:
        """A new conversation, opened with a greeting."""
        conversation_id = self.new_id()
        self.assistant.store.start_conversation(conversation_id, user_id, channel)
        greeting = self.voice.say("greeting", conversation_id)
        now = self.clock()
        opening = ConversationState().payload()
        self.chats.commit([self.chats.message_sql(self.new_id(), conversation_id, user_id, "assistant", greeting, now)],
                         self.chats.state_guard(conversation_id, user_id, Stage.OPEN, opening, now, None))
        return Exchange(conversation_id, Stage.OPEN, (greeting,))

    def conversations(self, user_id: str) -> list[ConversationRow]:
        return self.chats.conversations(user_id)

    def status(self, conversation_id: str, user_id: str) -> tuple[Stage, tuple[Choice, ...]]:
        """Where one of the user's conversations stands, and the choices it offers now."""
        self._own(conversation_id, user_id)
        state = self._state(conversation_id)
        return state.stage, self._choices(state)

    def turn(self, text: str, user_id: str, conversation_id: str | None = None, channel: str = "web",
             progress: Progress | None = None, *, verified: bool = False) -> Exchange:
        """Take one user message: accept it (checked, owned and stored, once), then move the
        conversation on. `verified`: the host app vouched that the sender is `user_id`, so remedies that change
        their account may run (see `Message`). Raises InputError, NotFoundError or ConflictError
        (see `_accept` and the guarded save at the end)."""
        message = self._accept(text, user_id, conversation_id, channel, verified=verified)
        conversation_id = message.conversation_id
        tell = progress or (lambda _message: None)
        tell("Reading your message…")
        state, version = self._versioned_state(conversation_id)
        state.turn += 1
        turn = _Turn(message, self.knowledge.embedder.encode_one(message.text), state, tell)
        handler = {Stage.OPEN: self._open, Stage.CONFIRMING: self._confirming, Stage.CHOOSING: self._choosing,
                   Stage.VERIFYING: self._verifying, Stage.AWAITING_DECISION: self._awaiting,
                   Stage.CHECKING_ANSWER: self._checking_answer, Stage.RATING: self._rating}[state.stage]
        answer = handler(turn)
        self._stage_replies(turn)
        # One transaction: the replies, the decision with its actions and escalations, and the new state, saved
        # only if no other turn of this conversation committed since this one read the state.
        self.chats.commit(turn.pending, self.chats.state_guard(conversation_id, user_id, turn.state.stage,
                                                              turn.state.payload(), self.clock(), version))
        return Exchange(conversation_id, turn.state.stage, tuple(turn.replies), self._choices(turn.state),
                        turn.understood, answer)

    def _accept(self, text: str, user_id: str, conversation_id: str | None, channel: str, *,
                verified: bool = False) -> Message:
        """The assistant's gate (`Assistant.accept`: usable text, the user's own conversation, stored before any
        work), with a new conversation opened by its greeting when None; bad text opens none. How often a user
        may write is the web's limiter's business (web/limits.py), on every path alike."""
        text = clean_message(text, self.assistant.max_message_chars)
        if conversation_id is None:
            conversation_id = self.start(user_id, channel).conversation_id
        return self.assistant.accept(text, user_id, conversation_id, channel, verified=verified)

    def rate(self, conversation_id: str, user_id: str, rating: int, comment: str = "") -> Exchange:
        """Store a 1-5 rating (the page's buttons) and close the conversation's current problem."""
        self._own(conversation_id, user_id)
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise InputError("`rating` must be a whole number from 1 to 5", code="invalid_body")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InputError(f"the comment is {len(comment):,} characters long; the limit is {MAX_COMMENT_CHARS:,}",
                             code="invalid_body")
        state, version = self._versioned_state(conversation_id)
        thanks = self.voice.say("thanks_rating", f"{conversation_id}:{state.turn}")
        now = self.clock()
        state = ConversationState(turn=state.turn)
        self.chats.commit([
            *self.chats.feedback_sql(self.new_id(), conversation_id, user_id, rating, comment, now),
            self.chats.message_sql(self.new_id(), conversation_id, user_id, "assistant", thanks, now),
        ], self.chats.state_guard(conversation_id, user_id, state.stage, state.payload(), now, version))
        return Exchange(conversation_id, state.stage, (thanks,))

    def forget(self, user_id: str) -> dict[str, int]:
        """Delete the user's history everywhere, the examples learned from them in the index included; returns
        what was removed per table (see `engine.store.privacy`)."""
        removed = self.learning.forget_examples(user_id)
        counts = self.privacy.forget(user_id)
        counts["index_examples"] = removed
        return counts

    def close(self) -> None:
        self.learning.close()

    # -- stages -------------------------------------------------------------------------------------

    def _open(self, turn: _Turn) -> Answer | None:
        """Nothing in hand: a new problem, unless a decider still waits for this conversation's answer to their
        question and the message does not clearly name a technical problem (then it is that answer)."""
        asked = self.escalations.asked_in(turn.conversation_id)
        if asked is not None and not self._names_technical_problem(self.knowledge.match_vector(turn.vector)):
            self._answer_to_team(turn, asked)
            return None
        return self._problem(turn)

    def _problem(self, turn: _Turn, excluding: Collection[str] = (), match: Match | None = None) -> Answer:
        """A message about a (new) problem: the assistant decides, and the decision sets the next stage.
        `excluding`: playbooks the user has said it is not; `match`: the message's match, if already made."""
        turn.state = ConversationState(turn=turn.state.turn, problem=turn.text)
        match = match or self.knowledge.match(turn.text, turn.vector, excluding)
        turn.state.candidates = [[c.playbook, c.category, c.score] for c in match.candidates]
        return self._decide(turn, match)

    def _decide(self, turn: _Turn, match: Match) -> Answer:
        turn.progress("Let me check a few things…")
        self._stage_replies(turn)  # lines said before the decision go before its reply
        answer = self.assistant.respond(turn.message, match=match, progress=turn.progress, pending=turn.pending)
        turn.replies.append(answer.reply)
        turn.written = len(turn.replies)  # the decision's statements hold its reply
        state = turn.state
        state.playbook = answer.playbook
        # Other technical problems named in the same message are taken up once this one is done.
        state.pending = state.pending or [[a.playbook, a.text] for a in match.asides
                                          if a.group == "technical" and a.playbook != answer.playbook][:1]
        self._count_verified_failures(turn, answer)
        if answer.decision == "clarify" and answer.offered:
            state.options = list(answer.offered)
            state.stage = Stage.CONFIRMING if len(answer.offered) == 1 else Stage.CHOOSING
        elif answer.decision == "escalate":
            state.escalation_id = answer.escalation_id or None
            state.stage = Stage.AWAITING_DECISION
            if state.pending:  # a person decides that one; meanwhile the technical problem can be looked at
                self._take_up_pending(turn)
        elif answer.decision == "resolve" and any(a.name == "handoff" for a in answer.actions):
            state.stage = Stage.RATING  # engineering has it, honestly said; nothing left for the user to check
            state.handed_off = True
            turn.replies.append(self.voice.say("rate_handoff", self._seed(turn)))  # not solved: no "before you go"
        elif answer.decision == "resolve" and answer.playbook:
            state.tried = list(dict.fromkeys([*state.tried, answer.playbook]))
            state.stage = Stage.VERIFYING
        else:
            state.stage = Stage.OPEN
        return answer

    def _confirming(self, turn: _Turn) -> Answer | None:
        reading = self._read(turn, Question.CONFIRM)
        if reading.intent is ReplyIntent.YES:
            return self._decide(turn, self._confirmed(turn.state, turn.state.options[0]))
        if reading.intent is ReplyIntent.CORRECTION:
            # "no, it's the calendar sync" refuses the guess; "yes, but on my phone" keeps it in the running
            refused = () if reading.cue == YES_BUT_ELSE else turn.state.options[:1]
            return self._corrected(turn, reading, refused)
        if reading.intent is ReplyIntent.NO:
            rest = [p for p in turn.state.options[1:] if p not in turn.state.tried]
            if rest:  # a verified fix that did not work, and another candidate was close: offer it
                turn.state.options = rest
                turn.replies.append(self.voice.say("try_other", self._seed(turn), title=self._title(rest[0])))
                return None
            turn.replies.append(self.voice.say("not_this", self._seed(turn)))
            turn.state = ConversationState(turn=turn.state.turn)
            return None
        turn.replies.append(self.voice.say("reask_confirm", self._seed(turn),
                                           title=self._title(turn.state.options[0])))
        return None

    def _choosing(self, turn: _Turn) -> Answer | None:
        reading = self._read(turn, Question.CHOOSE)
        options = turn.state.options
        if reading.intent is ReplyIntent.CHOICE:
            picked, *others = [options[i] for i in reading.choices]
            # "both": this one now, the other offered once it is done
            turn.state.pending = [[p, turn.state.problem] for p in others] + turn.state.pending
            return self._decide(turn, self._confirmed(turn.state, picked))
        if reading.intent is ReplyIntent.NEW_PROBLEM:
            return self._new_problem(turn, reading)
        if reading.intent is ReplyIntent.NO:
            turn.replies.append(self.voice.say("not_this", self._seed(turn)))
            turn.state = ConversationState(turn=turn.state.turn)
            return None
        turn.replies.append(self.voice.say("reask_choice", self._seed(turn), options=self._titles(options)))
        return None

    def _verifying(self, turn: _Turn) -> Answer | None:
        reading = self._read(turn, Question.VERIFY)
        if reading.intent is ReplyIntent.NEW_PROBLEM:
            return self._new_problem(turn, reading)
        if reading.intent is ReplyIntent.CORRECTION:
            # "no, it's the calendar sync": the fix was for another problem than theirs. Not a failure of the
            # remedy (it was not tried on their problem); what was tried is left out of the new match.
            self._say_verdict(turn, "wrong_problem")
            return self._corrected(turn, reading, [p for p in (turn.state.playbook, *turn.state.tried) if p])
        if reading.intent is ReplyIntent.YES:
            # Only a reply that says it works teaches the index or counts as a success (the reader never guesses yes).
            self.learning.confirmed(turn.user_id, turn.conversation_id, turn.state.playbook, turn.state.problem)
            if not turn.state.handed_off:  # after a hand-off, engineering fixed it, not the remedy
                self._count_outcome(turn, succeeded=True)
            self._say_verdict(turn, "fixed")
            turn.replies.append(self.voice.say("fixed", self._seed(turn)))
            if reading.also:
                return self._new_problem(turn, reading)
            if turn.state.pending:
                self._take_up_pending(turn)
                return None
            turn.replies.append(self.voice.say("rate", self._seed(turn)))
            turn.state.stage = Stage.RATING
            return None
        if reading.intent in (ReplyIntent.NO, ReplyIntent.PARTLY):
            if reading.also:  # "still slow, and now search fails too": that one comes next
                turn.state.pending = [*turn.state.pending, *self._named_problems(reading.also)]
            return self._still_broken(turn, reading.intent)
        situation = "check_later" if reading.cue == "not checked yet" else "reask_check"
        turn.replies.append(self.voice.say(situation, self._seed(turn)))
        return None

    def _still_broken(self, turn: _Turn, intent: ReplyIntent) -> Answer | None:
        """The fix did not (fully) work: the next close candidate if there is one, else the same problem again,
        where the failure the user reported keeps the rules from repeating the remedy."""
        state = turn.state
        self._count_outcome(turn, succeeded=False)
        self._record_verdict(turn)
        self._say_verdict(turn, "partly" if intent is ReplyIntent.PARTLY else "not_fixed")
        untried = [p for p in state.options if p not in state.tried]
        if untried:
            state.options, state.stage = untried, Stage.CONFIRMING
            turn.replies.append(self.voice.say("try_other", self._seed(turn), title=self._title(untried[0])))
            return None
        turn.replies.append(self.voice.say("partly" if intent is ReplyIntent.PARTLY else "retry", self._seed(turn)))
        assert state.playbook is not None
        return self._decide(turn, self._confirmed(state, state.playbook))

    def _awaiting(self, turn: _Turn) -> Answer | None:
        """A message while a person has the user's request: the answer to a decider's question, if one was asked;
        else a correction that takes the request back, another problem, an off-topic question, or asking after it."""
        escalation = self.escalations.get(turn.state.escalation_id or "")
        if escalation is None or escalation.status not in UNDECIDED:
            # Decided or expired while the user's own turn held the state: what they write now is a new start.
            turn.state = ConversationState(turn=turn.state.turn)
            return self._problem(turn)
        if turn.state.asked:
            match = self.knowledge.match_vector(turn.vector)
            if self._names_technical_problem(match):
                return self._problem_first(turn, escalation)
            self._answer_to_team(turn, escalation)
            return None
        # Nothing was asked, so a "yes" or a "no" answers nothing: `understood` is "correction" when the request is
        # taken back, "new_problem" when another problem is started below, and None otherwise.
        reading = self._read(turn, Question.WAITING)
        if reading.intent is ReplyIntent.CORRECTION:
            return self._withdrawn(turn, escalation, reading)
        match = self.knowledge.match(turn.text, turn.vector)
        if self._names_a_problem(match):
            return self._new_problem(turn)
        if match.band is Band.OUT_OF_SCOPE and not self.reader.about_progress(turn.text):
            # "what's the capital of Peru?" is answered as it would be any time, the request still waiting.
            return self.assistant.respond(turn.message, match=match, progress=turn.progress, pending=turn.pending)
        title = self._title(turn.state.playbook)
        turn.replies.append(self.voice.say("waiting", self._seed(turn), title=title))
        return None

    def _withdrawn(self, turn: _Turn, escalation: EscalationRow, reading: Reading) -> Answer:
        """ "No, it's the calendar sync" while a person has the request: it was the wrong request. It leaves the
        deciders' queue (withdrawn, with the user's words) and the problem is matched again without it."""
        now = self.clock()
        turn.pending += [
            self.escalations.event_sql(EventRow(self.new_id(), escalation.id, now, turn.user_id, EventKind.WITHDRAWN,
                                                EscalationStatus.WITHDRAWN.value, turn.text)),
            self.escalations.withdraw_sql(escalation.id)]
        turn.replies.append(self.voice.say("withdrawn", self._seed(turn), title=self._title(escalation.playbook)))
        return self._corrected(turn, reading, [escalation.playbook] if escalation.playbook else [])

    def _answer_to_team(self, turn: _Turn, escalation: EscalationRow) -> None:
        """A decider asked the user something: this message is the answer, recorded with the request, which
        goes back to the desk's open queue."""
        turn.understood = "answer_to_team"
        now = self.clock()
        turn.pending.append(self.escalations.event_sql(EventRow(
            self.new_id(), escalation.id, now, turn.user_id, EventKind.ANSWERED, reason=turn.text)))
        turn.pending.append(self.escalations.reopen_sql(escalation.id, now))
        turn.state = ConversationState(turn=turn.state.turn, stage=Stage.AWAITING_DECISION,
                                       playbook=escalation.playbook or turn.state.playbook,
                                       escalation_id=escalation.id)
        turn.replies.append(self.voice.say("answer_passed", self._seed(turn), title=self._title(turn.state.playbook)))

    def _problem_first(self, turn: _Turn, escalation: EscalationRow) -> Answer:
        """While a decider waits for the user's answer, the user named a technical problem: that problem is taken
        up now, and the question stays open (`_open` takes the user's answer whenever it comes)."""
        turn.replies.append(self.voice.say("question_still_open", self._seed(turn),
                                           title=self._title(escalation.playbook)))
        return self._problem(turn)

    def _names_technical_problem(self, match: Match) -> bool:
        """The message clearly names a problem the assistant handles itself, not a business request."""
        return self._names_a_problem(match) and match.best.category not in BUSINESS

    def _checking_answer(self, turn: _Turn) -> Answer | None:
        """A person decided the user's request: did that answer them? Recorded with the request either way."""
        reading = self._read(turn, Question.SETTLED)
        if reading.intent is ReplyIntent.NEW_PROBLEM:
            return self._new_problem(turn, reading)
        if reading.intent not in (ReplyIntent.YES, ReplyIntent.NO):
            turn.replies.append(self.voice.say("did_that_answer", self._seed(turn)))
            return None
        settled = reading.intent is ReplyIntent.YES
        self._say_verdict(turn, "settled" if settled else "not_settled")
        if turn.state.escalation_id:
            turn.pending.append(self.escalations.event_sql(EventRow(
                self.new_id(), turn.state.escalation_id, self.clock(), turn.user_id, EventKind.USER_REPLY,
                "settled" if settled else "not_settled", turn.text)))
        if settled:
            # A refusal the user accepts is not "glad that's settled", and the rating asked is about the help.
            found = self.escalations.get(turn.state.escalation_id or "")
            refused = found is not None and found.status is EscalationStatus.REJECTED
            turn.replies += [self.voice.say("settled_declined" if refused else "settled", self._seed(turn)),
                             self.voice.say("rate_declined" if refused else "rate", self._seed(turn))]
            turn.state = ConversationState(turn=turn.state.turn, stage=Stage.RATING)
            return None
        turn.replies.append(self.voice.say("not_settled", self._seed(turn)))
        turn.state = ConversationState(turn=turn.state.turn)
        return None

    def _rating(self, turn: _Turn) -> Answer | None:
        reading = self._read(turn, Question.RATE)
        if reading.intent is ReplyIntent.RATING and reading.rating is not None:
            found = RATING.match(turn.text)
            comment = found.group(2).strip() if found else turn.text.strip()
            turn.replies.append(self.voice.say("thanks_rating", self._seed(turn)))
            # Saved with the turn; a comment typed into the chat is kept to the limit a rating's comment has.
            turn.pending += self.chats.feedback_sql(self.new_id(), turn.conversation_id, turn.user_id, reading.rating,
                                                    comment[:MAX_COMMENT_CHARS], self.clock())
            turn.state = ConversationState(turn=turn.state.turn)
            return None
        if reading.intent is ReplyIntent.DECLINE:
            turn.replies.append(self.voice.say("rating_declined", self._seed(turn)))
            turn.state = ConversationState(turn=turn.state.turn)
            return None
        if reading.intent is ReplyIntent.NO:  # "no, still broken"
            if turn.state.handed_off:  # engineering has it: say so, and ask nothing of them
                turn.replies.append(self.voice.say("still_with_engineering", self._seed(turn)))
                return None
            if turn.state.playbook:  # the fix they confirmed did not hold
                turn.state.stage = Stage.VERIFYING
                return self._still_broken(turn, ReplyIntent.NO)
        if reading.intent is ReplyIntent.NEW_PROBLEM or self._names_a_problem(self.knowledge.match_vector(turn.vector)):
            return self._new_problem(turn, reading)
        turn.replies.append(self.voice.say("reask_rating", self._seed(turn)))
        return None

    def _take_up_pending(self, turn: _Turn) -> None:
        """The user named another problem in the same message: offer it now, as a yes-or-no question."""
        (playbook, text), *rest = turn.state.pending
        category = self.knowledge.playbooks[playbook].category if playbook in self.knowledge.playbooks else ""
        turn.state = ConversationState(turn=turn.state.turn, problem=text, options=[playbook],
                           candidates=[[playbook, category, 1.0]], stage=Stage.CONFIRMING, pending=rest)
        turn.replies.append(self.voice.say("take_up_pending", self._seed(turn), title=self._title(playbook)))

    def _new_problem(self, turn: _Turn, reading: Reading | None = None) -> Answer:
        """Start on another problem: the part of the reply that names it (`reading.also`), or the whole reply."""
        turn.understood = turn.understood or ReplyIntent.NEW_PROBLEM.value
        turn.replies.append(self.voice.say("new_problem", self._seed(turn)))
        if reading is not None and reading.also and reading.also != turn.text:
            turn.vector = self.knowledge.embedder.encode_one(reading.also)
            turn.message = replace(turn.message, text=reading.also)
        return self._problem(turn)

    def _corrected(self, turn: _Turn, reading: Reading, refused: Sequence[str] = ()) -> Answer:
        """ "No, it's Outlook": the problem again, as first told and as corrected, with what it is not left out
        by the matcher (`knowledge.clauses`) and the playbooks the user refused (`refused`) out of the running.
        The correction alone is the problem when the index places it by itself ("wrong, my problem is I can't
        connect LinkedIn", "no, it's the calendar sync")."""
        turn.understood = ReplyIntent.CORRECTION.value
        told = f"{turn.state.problem.rstrip('.!? ')}. {turn.text}" if turn.state.problem else turn.text
        said = reading.also or turn.text
        alone = self.knowledge.match(said, excluding=refused)
        combined = self.knowledge.match(told, excluding=refused)
        chosen = combined
        if self.reader_judge(turn.state)(said) in (Topic.OTHER, Topic.LIKELY_OTHER) or (
                combined.band is not Band.ANSWER and alone.band in (Band.ANSWER, Band.CLARIFY)
                and alone.group != "out_of_scope"):
            told, chosen = said, alone
        turn.vector = self.knowledge.embedder.encode_one(told)
        turn.message = replace(turn.message, text=told)
        return self._problem(turn, refused, chosen)  # the match made above, not a third one of the same text

    def _named_problems(self, text: str) -> list[list[str]]:
        """[playbook, text] for another problem named beside an answer, if the index knows it clearly."""
        match = self.knowledge.match(text)
        return [[match.best.playbook, text]] if self._names_a_problem(match) else []

    # -- reading ------------------------------------------------------------------------------------

    def _read(self, turn: _Turn, question: Question) -> Reading:
        """The reply read as an answer to `question`, with the index judging what any complaint is about."""
        options: tuple[Option, ...] = ()
        if question is Question.CHOOSE:
            playbooks = self.knowledge.playbooks
            # The label is the title the page's buttons send; the subject and examples describe the option.
            options = tuple(Option(playbooks[p].title, (self._title(p), *playbooks[p].examples[:OPTION_EXAMPLES]))
                            if p in playbooks else Option(self._title(p)) for p in turn.state.options)
        reading = self.reader.read(turn.text, question, options=options, judge=self.reader_judge(turn.state))
        turn.understood = reading.understood
        if reading.intent is ReplyIntent.CHOICE:
            turn.understood = "choice:" + ",".join(turn.state.options[i] for i in reading.choices)
        return reading

    def reader_judge(self, state: ConversationState) -> Judge:
        """What a piece of a reply is about, relative to the problem in hand and the options offered."""
        return index_judge(self.knowledge, {p for p in (state.playbook, *state.options, *state.tried) if p})

    def _names_a_problem(self, match: Match) -> bool:
        """The reply names a problem on its own, in the strict answer band: "no, it's still slow" is close to
        several slowness playbooks, which is enough to act on a first message but not to leave the one in hand."""
        return match.band is Band.ANSWER and match.best.score >= self.knowledge.calibration.t_high

    # -- helpers ------------------------------------------------------------------------------------

    def _confirmed(self, state: ConversationState, playbook: str) -> Match:
        """The problem's match with `playbook` first and in the answer band: the user has said it is the one."""
        candidates = [Candidate(p, c, float(s)) for p, c, s in state.candidates]
        chosen = next((c for c in candidates if c.playbook == playbook), None)
        chosen = chosen or Candidate(playbook, self.knowledge.playbooks[playbook].category, 0.0)
        rest = tuple(c for c in candidates if c.playbook != playbook)
        return Match((chosen, *rest), Band.ANSWER, 1.0)

    def _record_verdict(self, turn: _Turn) -> None:
        """The user says the last fix did not work: its actions count as failed for the rules from now on."""
        self.chats.record_not_fixed(turn.conversation_id, self.new_id(), self.clock())

    def _say_verdict(self, turn: _Turn, verdict: str) -> None:
        """Keep what the user said about the fix or answer in hand, with the turn (the metrics read it)."""
        turn.pending.append(self.chats.verdict_sql(self.new_id(), turn.conversation_id, turn.user_id,
                                                   turn.state.playbook, verdict, self.clock()))

    def _count_outcome(self, turn: _Turn, succeeded: bool) -> None:
        state = turn.state
        if state.playbook is not None:
            self.learning.judged(JudgedFix(turn.conversation_id, turn.user_id, state.playbook, state.first_playbook,
                                           frozenset(c[0] for c in state.candidates), len(state.tried), succeeded))

    def _count_verified_failures(self, turn: _Turn, answer: Answer) -> None:
        failed = [(a.name, a.target) for a in answer.actions if a.status == "failed"]
        if failed:
            self.learning.verification_failed(turn.conversation_id, turn.user_id, answer.playbook, failed)

    def _stage_replies(self, turn: _Turn) -> None:
        """Add the replies said so far, at this moment, to the turn's transaction."""
        now = self.clock()
        turn.pending += [self.chats.message_sql(self.new_id(), turn.conversation_id, turn.user_id, "assistant",
                                                reply, now) for reply in turn.replies[turn.written:]]
        turn.written = len(turn.replies)

    def _choices(self, state: ConversationState) -> tuple[Choice, ...]:
        if state.stage in (Stage.CONFIRMING, Stage.CHECKING_ANSWER):
            return YES_NO
        if state.stage is Stage.CHOOSING:
            titles = [self.knowledge.playbooks[p].title for p in state.options]
            return (*(Choice(t, t) for t in titles), Choice("None of these", "none of these"))
        if state.stage is Stage.VERIFYING:
            return CHECK
        if state.stage is Stage.RATING:
            return RATINGS
        return ()

    def _state(self, conversation_id: str) -> ConversationState:
        return self._versioned_state(conversation_id)[0]

    def _versioned_state(self, conversation_id: str) -> tuple[ConversationState, int | None]:
        return versioned_state(self.chats, conversation_id)

    def _own(self, conversation_id: str, user_id: str) -> None:
        if self.assistant.store.conversation_owner(conversation_id) != user_id:
            raise NotFoundError("no such conversation")

    def _title(self, playbook: str | None) -> str:
        """A playbook as it reads inside a sentence: its subject, never its title (see `Assistant.subject`)."""
        return self.assistant.subject(playbook)

    def _titles(self, playbooks: Sequence[str]) -> str:
        return either([self._title(p) for p in playbooks])

    @staticmethod
    def _seed(turn: _Turn) -> str:
        # Varied per turn, so a conversation that asks the same thing twice does not say it the same way.
        return f"{turn.conversation_id}:{turn.state.turn}"
