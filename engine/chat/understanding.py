"""Reading a user's reply to the assistant's question: what it answers, or that it answers nothing yet.

The question decides what a reply can mean: "yes" confirms a guess but picks none of two options; "1" picks
the first option or rates the chat 1 of 5; "no it's fine now" says a fix worked. So the reader is told which
question was asked (`Question`) and reads the reply with a small grammar over the vocabulary of
`data/reply_words.yaml` (`engine.chat.lexicon`):

- the reply is cut into clauses at punctuation, at "but", "though" and the like (a contrast), and where it
  turns to another matter ("also", "btw", "one more thing");
- in each clause, words that describe the thing as working or broken are counted, each turned around by a
  negation before it ("no errors" works, "not working" is broken; a negation with nothing after it is a
  complaint: "it does not load"); "still", "same", "again" say the old problem remains;
- a clause that turns to another matter and names a problem is set aside as a new problem, and so is a
  complaint that the `judge` (the playbook index, in the dialogue) says is about another problem.

Then per question: after a fix, working and broken together is "partly", broken alone is "no", working alone
is "yes"; for a guess, a no followed by what the problem really is is a correction. While a person has a
request nothing is asked, and only a refusal means anything: it takes the request back. Hedges
("maybe"), deferrals ("let me check"), bare acknowledgements ("ok", "thanks") and questions back answer
nothing: the reading is None and the caller asks again with buttons. The reader never guesses "yes": a fix
counts as confirmed only when the reply says it works. Measured on replies written by people who never saw
the vocabulary: `python bench/replies.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from enum import StrEnum
from pathlib import Path

import numpy as np

from core.errors import ConfigurationError
from core.yamlfile import load_mapping
from engine.chat.lexicon import Item, Lexicon, Piece
from knowledge.embedder import Embedder


class Question(StrEnum):
    """What the assistant asked."""

    VERIFY = "verify"  # after a fix: is it working now?
    CONFIRM = "confirm"  # a guess: is that right?
    CHOOSE = "choose"  # which of these?
    RATE = "rate"  # was I helpful, 1 to 5?
    SETTLED = "settled"  # a person answered: does that answer your question?
    WAITING = "waiting"  # nothing asked: a person has the request, and anything the user writes may take it back


class ReplyIntent(StrEnum):
    YES = "yes"
    NO = "no"
    PARTLY = "partly"
    CORRECTION = "correction"
    NEW_PROBLEM = "new_problem"
    CHOICE = "choice"
    RATING = "rating"
    DECLINE = "decline"


class Topic(StrEnum):
    """What a judge says a piece of a reply is about."""

    NONE = "none"  # names no problem clearly
    SAME = "same"  # the problem in hand (or one of the options offered)
    OTHER = "other"  # another problem, surely
    LIKELY_OTHER = "likely_other"  # probably another problem: enough for a complaint, not for a question


Judge = Callable[[str], Topic]
ELSEWHERE = (Topic.OTHER, Topic.LIKELY_OTHER)


@dataclass(frozen=True)
class Option:
    """An option offered to choose from: the words shown, and texts that describe it (for "the stats page")."""

    label: str
    texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reading:
    """What a reply means. `intent` None: it answers nothing yet, ask again. `also`: another problem the reply
    names beside its answer ("yes, and my export fails"). `choices`: the options picked (0-based).
    `rating`: 1 to 5. `cue`: the words that decided, for the trace."""

    intent: ReplyIntent | None
    cue: str = ""
    also: str = ""
    choices: tuple[int, ...] = ()
    rating: int | None = None

    @property
    def understood(self) -> str | None:
        """A short label for the trace: yes, no, partly, ..., "choice:2", "rating:4"; None when unclear."""
        if self.intent is ReplyIntent.CHOICE:
            return "choice:" + ",".join(str(c + 1) for c in self.choices)
        if self.intent is ReplyIntent.RATING:
            return f"rating:{self.rating}"
        if self.intent is ReplyIntent.YES and self.also:
            return "yes_and_new"
        return self.intent.value if self.intent else None


YES_BUT_ELSE = "yes, but it is something else"  # the cue of a correction that agrees first: no refusal
REFUSED = "not this, that"  # the cue of a correction that refuses what was said ("no, it's the calendar sync")
CONTRASTS = frozenset({"but", "though", "tho", "although", "however", "except", "whereas", "yet"})
INTERROGATIVES = frozenset({"how", "what", "which", "where", "when", "why", "who", "whats", "wdym", "can", "could",
                            "should", "do", "does", "did", "is", "are", "am", "will", "would"})
ASKING = INTERROGATIVES | {"huh", "wait", "hmm", "meaning", "sorry", "pardon", "so"}  # questions only with a "?"
PROBLEM_NOUNS = frozenset({"problem", "problems", "issue", "issues", "error", "errors", "bug", "glitch", "lag",
                           "crash", "crashes"})  # "problem solved": the noun names what the working word fixed
STATE_ONLY = frozenset({"without"})  # negates a state word ("without errors"), never a complaint on its own
STOPPED = frozenset({"anymore", "any more"})  # after a negation of an event: it has stopped
EVENTS = frozenset({"happen", "happens", "occur", "occurs", "appear", "appears", "show", "shows", "pop", "pops",
                    "up", "come", "comes", "it", "that", "this", "do", "does", "any"})  # "it doesn't (happen) anymore"
SAME_AS_BEFORE = frozenset({"thing", "things", "as", "here", "result", "story", "again", "behaviour", "behavior",
                            "message", "screen", "page", "for"})  # "same" + one of these: as before
MEANING = frozenset({"mean", "means", "meaning"})  # a question about the words just said
WH_WORDS = frozenset({"how", "where", "what", "why", "when", "which", "who"})  # open a question mid-sentence
JOINING = frozenset({"and", "so", "then", "plus", "ok", "okay"})  # before a question: "and how do I ..."
START_ONLY = ("now", "actually now", "next")  # turn to another matter only where a clause starts with them
JUDGEMENTS = frozenset({"wrong", "incorrect", "not right", "not correct"})  # a deny word inside a clause: broken
CONTINUITY = frozenset({"still", "again", "same", "as before"})  # modifiers: the old problem, if broken
STOPWORDS = frozenset({
    "a", "an", "the", "it", "is", "am", "are", "was", "were", "be", "been", "i", "me", "my", "mine", "you",
    "your", "we", "our", "they", "them", "their", "this", "that", "these", "those", "to", "of", "for", "on",
    "in", "at", "by", "with", "from", "just", "really", "so", "very", "all", "its", "and", "or", "then",
    "there", "here", "too", "also", "only", "even", "now", "today", "one", "ones", "thing", "things",
    "stuff", "please", "pls", "thanks", "thank", "actually", "like"
})
RATING_CONTEXT = frozenset({"star", "stars", "out", "points", "pts", "from", "overall", "maybe", "tbh", "honestly",
                            "lol", "because", "since", "cause", "cuz", "would", "definitely"})
ONE_AFTER = frozenset({"number", "option", "no", "nr", "num", "choice", "answer", "just"})  # "one" as a number
CHOICE_MIN = 0.4  # similarity a reply needs to an option's descriptions to pick it by meaning
CHOICE_LEAD = 0.1  # ... and its lead over the next option (on replies_dev.tsv: picks lead by 0.10 to 0.30)
FUZZY_RATIO = 0.8  # "dashbord" for "dashboard": difflib's ratio of a misspelt word to the option's word
FUZZY_LEAD = 0.1  # ... and how much more like it than like the other options' words ("reports" vs "exports")


@dataclass
class Clause:
    items: tuple[Item, ...]
    question: bool = False
    contrast: bool = False
    another: bool = False

    @property
    def text(self) -> str:
        return " ".join(i.text for i in self.items)


@dataclass
class Sense:
    """What one clause says."""

    affirm: bool = False
    deny: bool = False
    works: int = 0
    broken: int = 0
    still: bool = False
    flags: set[str] = field(default_factory=set)  # the other lists it used: hedge, defer, partial, ...
    content: int = 0  # words in no list and not stop words: what is left to name a problem or a thing
    step: int = 0  # of those, words that name nothing else: the step asked about ("check", "refresh"), "how"
    asks: bool = False  # a question back
    question_like: bool = False  # ends with a question mark

    def has(self, kind: str) -> bool:
        return kind in self.flags

    @property
    def polar(self) -> bool:
        return bool(self.works or self.broken or self.has("partial"))


class ReplyReader:
    """Reads replies to the assistant's questions (see the module's docstring)."""

    def __init__(self, lexicon: Lexicon, embedder: Embedder | None = None) -> None:
        self.lexicon = lexicon
        self.embedder = embedder

    def read(self, text: str, question: Question, *, options: Sequence[Option] = (),
             judge: Judge | None = None) -> Reading:
        """The reply's meaning as an answer to `question`; `options` for CHOOSE; `judge` tells what a piece of
        the reply is about (without one, only the words decide)."""
        every = self._clauses(text)
        clauses = [c for c in every if c.items or c.question]
        judged = _memo(judge)
        if question is Question.RATE:
            return self._rating(clauses, judged)
        if question is Question.CHOOSE:
            return self._choice(clauses, text, options, judged)
        if clauses and all(_asks_meaning(c) for c in clauses):
            return Reading(None, "a question back")  # "what do you mean by reset?": about the words just said
        senses = [_sense(c) for c in clauses]
        core, aside = _set_aside(clauses, senses, judged)
        also = " ".join(c.text for c in aside)
        if question is Question.VERIFY:
            reading = _verify(core, also, judged)
        elif question is Question.SETTLED:
            reading = _settled(core, also, judged)
        else:  # a guess, or a request passed to a person: both are what the assistant took the problem for
            reading = _confirm(core, also, judged)
        if reading.intent is None and any(c.another for c in every):
            # "I have another problem": nothing answered, and something new announced
            corrects = question in (Question.CONFIRM, Question.WAITING)
            reading = Reading(ReplyIntent.CORRECTION if corrects else ReplyIntent.NEW_PROBLEM, "another matter",
                              also=also)
        return _taken_back(reading) if question is Question.WAITING else reading

    def about_progress(self, text: str) -> bool:
        """Does the message ask how a pending request is getting on ("any news?", "when will I hear back")?"""
        return any(i.of("progress") for piece in self.lexicon.pieces(text) for i in piece.items)

    # -- clauses ---------------------------------------------------------------------------------------

    def _clauses(self, text: str) -> list[Clause]:
        """The reply's clauses, in order, empty ones included (an "also" with nothing after it still turns)."""
        clauses: list[Clause] = []
        for piece in self.lexicon.pieces(text):
            clauses += _split(piece, turned=bool(clauses) and clauses[-1].another)
        return clauses

    # -- rating ----------------------------------------------------------------------------------------

    def _rating(self, clauses: list[Clause], judged: Judge) -> Reading:
        senses = [_sense(c) for c in clauses]
        if any(s.asks and _interrogative(c.items, 0) for c, s in zip(clauses, senses, strict=True)):
            return Reading(None, "a question back")  # "what does 1 mean?"
        rating, cue = self._score(clauses)
        if rating is not None:
            return Reading(ReplyIntent.RATING, cue, rating=rating)
        whole = " ".join(c.text for c in clauses)
        # "no, still broken", "it's still not working": the problem in hand goes on (a complaint about something
        # named, "3 jobs disappeared", is judged below)
        complaint = any((s.broken or s.still) and not s.works and (s.still or s.content <= s.step) for s in senses)
        if complaint and not any(s.has("decline") for s in senses):
            if any(s.content and s.broken for s in senses) and judged(whole) in ELSEWHERE:
                return Reading(ReplyIntent.NEW_PROBLEM, "names a problem", also=whole)
            return Reading(ReplyIntent.NO, "still broken")  # "no, still broken": not a rating, nor a no to one
        if any(s.has("decline") for s in senses) or (senses and senses[0].deny):
            return Reading(ReplyIntent.DECLINE, "decline")
        if any(s.content and s.broken for s in senses) and judged(whole) in ELSEWHERE:
            return Reading(ReplyIntent.NEW_PROBLEM, "names a problem", also=whole)
        return Reading(None, "no rating")

    def _score(self, clauses: Sequence[Clause]) -> tuple[int | None, str]:
        """A rating from 1 to 5: "4", "4/5", "8/10", "four", "⭐⭐⭐", "top marks"; other scales scaled, the
        rest clamped (a "0" is a 1, a "7" a 5). A number followed by a plain word is a quantity ("3 jobs")."""
        words = [i for c in clauses for i in c.items]
        stars = sum(w.text == "star" for w in words)
        placed = [(word, c.items[n + 1] if n + 1 < len(c.items) else None)
                  for c in clauses for n, word in enumerate(c.items)]
        for word, following in placed:
            if following is not None and _plain(following) and following.text not in RATING_CONTEXT \
                    and ((following.text not in STOPWORDS and _plural(following.text)) or following.text == "of"):
                continue  # "3 jobs disappeared", "2 of my reminders": a quantity, not a rating
            fraction = re.fullmatch(r"(\d+)\s*/\s*(\d+)", word.text)
            if fraction:
                top = int(fraction.group(2)) or 5
                return _clamp(round(int(fraction.group(1)) * 5 / top + 1e-9)), word.text
            if re.fullmatch(r"-?\d{1,2}", word.text):
                return _clamp(int(word.text)), word.text
            value = self.lexicon.score("rating_words", word.text)
            if value is None and len(word.text) > 3 and word.text[-1] == word.text[-2]:
                value = self.lexicon.score("rating_words", word.text[:-1])  # "fourr"
            if value is not None:
                return _clamp(value), word.text
        if stars:
            return _clamp(stars), "stars"
        thumbs = sum(w.text == "thumbsup" for w in words)
        if thumbs and all(w.text in ("thumbsup", "star") or w.of("acknowledge") for w in words):
            return (5 if thumbs > 1 else 4), "thumbs up"
        if words and all(w.text == "thumbsdown" for w in words):
            return 1, "thumbs down"
        return None, ""

    # -- choices ---------------------------------------------------------------------------------------

    def _choice(self, clauses: list[Clause], text: str, options: Sequence[Option], judged: Judge) -> Reading:
        if not options:
            return Reading(None, "no options")
        items = [i for c in clauses for i in c.items]
        senses = [_sense(c) for c in clauses]
        asked = any(c.question for c in clauses)
        if any(s.has("defer") or s.has("hedge") or (s.asks and not s.polar) for s in senses):
            return Reading(None, "unsure")
        if any(i.of("all_options") for i in items):
            return Reading(ReplyIntent.CHOICE, "both", choices=tuple(range(len(options))))
        if any(i.of("any_option") for i in items):
            return Reading(None, "either")
        if any(i.of("no_option") for i in items) or _only_denies(clauses):
            return Reading(None if asked else ReplyIntent.NO, "neither")
        numbers = self._ordinals(items, len(options))
        if len(numbers) == len(options) > 1 and any(i.text in ("and", "&", "plus") for i in items):
            return Reading(ReplyIntent.CHOICE, "both", choices=tuple(sorted(numbers)))  # "1 and 2"
        by_number = self._ordinal(items, len(options))
        named = self._named(clauses, options)
        if by_number is not None and named and named != {by_number}:
            return Reading(None, "number and name disagree")
        if by_number is not None:
            return Reading(ReplyIntent.CHOICE, "number", choices=(by_number,))
        if len(named) == 1:
            return Reading(ReplyIntent.CHOICE, "named", choices=(next(iter(named)),))
        if len(named) > 1:
            return Reading(None, "named several")
        if asked and not any(s.content for s in senses):
            return Reading(None, "no pick")
        meant = self._meant(text, options)
        if meant is not None:
            return Reading(ReplyIntent.CHOICE, "meaning", choices=(meant,))
        whole = " ".join(c.text for c in clauses)
        if any(s.broken for s in senses) and judged(whole) is Topic.OTHER:
            return Reading(ReplyIntent.NEW_PROBLEM, "names another problem", also=whole)
        return Reading(None, "no pick")

    def _ordinal(self, items: Sequence[Item], count: int) -> int | None:
        """The option a number or ordinal picks ("2", "the second", "number one"); "the search one" is none."""
        picked = self._ordinals(items, count)
        return next(iter(picked)) if len(picked) == 1 else None

    def _ordinals(self, items: Sequence[Item], count: int) -> set[int]:
        """Every option a number or ordinal of the reply names."""
        picked: set[int] = set()
        for n, item in enumerate(items):
            number = self.lexicon.score("ordinals", item.text)
            if number is None or (item.text == "one" and n and items[n - 1].text not in ONE_AFTER):
                continue
            index = count - 1 if number == -1 else number - 1
            if 0 <= index < count:
                picked.add(index)
        return picked

    def _named(self, clauses: list[Clause], options: Sequence[Option]) -> set[int]:
        """Options a word of the reply names ("search", "dashbord"), less those said to be fine ("search is ok")
        or negated ("not the dashboard"). A word names the option whose words it is most like, if clearly."""
        keys = [self._keywords(o.label) for o in options]
        distinct = [k - set().union(*(other for j, other in enumerate(keys) if j != i)) for i, k in enumerate(keys)]
        named: set[int] = set()
        ruled_out: set[int] = set()
        for clause in clauses:
            sense = _sense(clause)
            hits = set()
            for word in (w for i in clause.items for w in i.text.split()):
                likeness = [max((_likeness(word, k) for k in key), default=0.0) for key in distinct]
                best = max(range(len(likeness)), key=likeness.__getitem__)
                runner_up = max((x for n, x in enumerate(likeness) if n != best), default=0.0)
                if likeness[best] >= FUZZY_RATIO and likeness[best] - runner_up >= FUZZY_LEAD:
                    hits.add(best)
            negated = sense.deny or (sense.works and not sense.broken)
            (ruled_out if negated else named).update(hits)
        return named - ruled_out

    def _keywords(self, label: str) -> set[str]:
        return {w for w in self.lexicon.words(label) if w not in STOPWORDS and len(w) >= 3 and not w.isdigit()}

    def _meant(self, text: str, options: Sequence[Option]) -> int | None:
        """The option the reply describes ("the overview page with my stats"), by meaning, if one stands out."""
        if self.embedder is None:
            return None
        reply = self.embedder.encode_one(text)
        best = []
        for option in options:
            vectors = self.embedder.encode([option.label, *option.texts])
            best.append(float((vectors @ reply.reshape(-1)).max()))
        order = np.argsort(best)[::-1]
        lead = best[order[0]] - (best[order[1]] if len(order) > 1 else 0.0)
        return int(order[0]) if best[order[0]] >= CHOICE_MIN and lead >= CHOICE_LEAD else None


# -- the grammar ---------------------------------------------------------------------------------------

def _split(piece: Piece, turned: bool) -> list[Clause]:
    """A piece cut where it contrasts ("but") or turns to another matter ("also"), each marked; once a reply
    has turned to another matter (`turned`), the rest of it is about that matter."""
    clauses = [Clause((), piece.question, another=turned)]
    for item in piece.items:
        current = clauses[-1]
        if item.text in CONTRASTS:
            if current.items:
                clauses.append(Clause((), piece.question, contrast=True, another=current.another))
            else:  # "..., but now": the piece itself contrasts
                current.contrast = True
        elif item.text in WH_WORDS and any(i.of("works") or i.of("broken") for i in current.items):
            clauses.append(Clause((item,), piece.question, another=current.another))  # "works now how do I ..."
        elif item.of("another_matter") and _turns(item, current):
            if _says_nothing_yet(current):  # "can you also ...": the whole clause turns
                current.another = True
            else:
                clauses.append(Clause((), piece.question, another=True))
        else:
            current.items += (item,)
    if len(clauses) > 1 and not clauses[-1].items and clauses[-1].contrast:
        clauses.pop()
        clauses[-1].contrast = True  # "the stats look wrong though"
    for clause in clauses[:-1]:
        clause.question = False
    return clauses


def _turns(item: Item, current: Clause) -> bool:
    """"now", "next" turn to another matter only where a clause starts with them; "also" anywhere."""
    return not item.text.startswith(START_ONLY) or not current.items


def _says_nothing_yet(clause: Clause) -> bool:
    return all((_plain(i) and (i.text in STOPWORDS or i.text in INTERROGATIVES)) or _filler(i)
               for i in clause.items)


def _sense(clause: Clause) -> Sense:
    sense = Sense()
    items = clause.items
    lead = next((n for n, i in enumerate(items) if not _filler(i)), None)
    negated = False
    after_negation = 0  # content words since an unanswered negation: "does not load" is a complaint
    negated_at = 0  # where that negation is
    for n, item in enumerate(items):
        kinds = item.kinds
        following = items[n + 1] if n + 1 < len(items) else None
        if n == lead and kinds & {"affirm", "deny", "correcting"} and not _negates_next(item, following):
            sense.affirm |= item.of("affirm") and not item.of("deny")
            sense.deny |= item.of("deny")
            sense.flags |= kinds & {"correcting"}
            continue
        stopped = item.text in STOPPED or (item.text == "more" and n > 0 and items[n - 1].text == "any")
        if stopped and negated and all(i.text in EVENTS for i in items[negated_at + 1:n]):
            sense.works += 1  # "doesn't happen anymore": what it did has stopped ("can't find it anymore" has not)
            negated, after_negation = False, -len(items)
        elif item.of("gone") and not item.of("negators"):
            _gone(sense)
            negated = False
        elif item.of("works") and not item.of("acknowledge"):
            if negated:
                sense.broken += 1
            else:
                sense.works += 1
            negated = False
        elif (item.of("broken") or item.text in JUDGEMENTS) and item.text in PROBLEM_NOUNS and following \
                and following.of("works") and not negated:
            continue  # "problem solved", "issue fixed": the working word says it
        elif item.of("broken") or item.text in JUDGEMENTS:
            if negated:
                sense.works += 1
                sense.flags.add("negated_state")
            else:
                sense.broken += 1
            negated = False
        elif item.of("still") and not _describes(item, following):
            sense.still = True
            if item.text not in CONTINUITY:
                sense.broken += 1
                negated = False
            elif item.text != "again":
                sense.flags.add("continuing")
            else:
                sense.flags.add("again")  # "read it again": a repeat, a complaint only with a broken word
        elif item.text in STATE_ONLY:
            negated, after_negation = True, -len(items)  # counts only if a state word follows
        elif item.of("negators") or (item.of("deny") and not item.of("affirm")):
            negated, after_negation, negated_at = True, 0, n
            sense.flags |= kinds & {"gone"}
        else:
            sense.flags |= kinds - {"works", "broken", "affirm", "about_the_step"}
            if item.of("affirm") and not sense.deny and not sense.content:
                sense.affirm = True
            elif item.of("affirm"):
                sense.content += 1  # "not from Indeed": a name, not a yes
            if item.text == "now":
                sense.flags.add("now")
            elif not kinds - {"about_the_step"} and item.text not in STOPWORDS and item.text not in CONTRASTS:
                sense.content += 1
                sense.step += item.of("about_the_step") or item.text in INTERROGATIVES
                after_negation += negated
    if negated and sense.has("gone"):
        sense.works += 1  # "no more", "no longer" with nothing after: it is gone
    elif negated and after_negation >= 0 and (after_negation or (sense.content and not sense.polar)):
        sense.broken += 1  # "it does not load", "the e-mail never came", "others don't"
    if sense.has("continuing") and not sense.works and not sense.broken:
        sense.broken += 1  # "still the same", "I still get 'invalid password'"
    if sense.has("now") and sense.content and not (sense.works or sense.broken or negated or clause.another):
        sense.works += 1  # "it loads now", "saves from LinkedIn now": a change for the better
        sense.flags.add("weak")
    sense.question_like = clause.question
    if lead is not None and items[lead].text in JOINING:  # "and how do I ...": the question starts after it
        lead = next((n for n in range(lead, len(items)) if items[n].text not in JOINING), None)
    plain_lead = lead is not None and _plain(items[lead])
    sense.asks = (clause.question and ((plain_lead and _interrogative(items, lead, True)) or (not sense.polar
                                      and not sense.deny))) or (plain_lead and _interrogative(items, lead) \
        and not sense.polar)
    return sense


def _describes(item: Item, following: Item | None) -> bool:
    """ "the same cv", "same day": "same" describing a thing, not saying it is as before ("same error", "same as
    before", "still the same")."""
    return (item.text == "same" and following is not None and _plain(following)
            and following.text not in STOPWORDS and following.text not in PROBLEM_NOUNS
            and following.text not in SAME_AS_BEFORE)


def _gone(sense: Sense) -> None:
    """ "the error went away" works; "my saved searches are gone" is broken; "gone now", alone, works."""
    if sense.broken:
        sense.works, sense.broken = sense.works + sense.broken, 0
    elif sense.content:
        sense.broken += 1
    else:
        sense.works += 1


def _polarity(sense: Sense) -> int:
    """+1 the clause says it works, -1 broken, 0 neither or both."""
    if sense.works > sense.broken or (sense.works and sense.works == sense.broken and sense.affirm):
        return 1 if not sense.broken else 0
    if sense.broken:
        return -1 if not sense.works else 0
    return 0


def n_words(items: Sequence[Item]) -> int:
    return sum(len(i.text.split()) for i in items)


def _plain(item: Item) -> bool:
    """A word in none of the lists that mean something on their own (the step's words only describe)."""
    return not item.kinds - {"about_the_step"}


def _filler(item: Item) -> bool:
    """A word that opens a clause without answering ("oh", "hmm", "ok", "well")."""
    return item.of("acknowledge") and not item.kinds & {"affirm", "deny", "works", "broken"}


def _negates_next(item: Item, following: Item | None) -> bool:
    """ "no errors", "not slow": a no right before a state word negates it rather than answering."""
    return (item.text in ("no", "not", "never") and following is not None
            and bool(following.kinds & {"works", "broken", "still", "partial"}))


def _lead(items: Sequence[Item]) -> int | None:
    """Where the clause starts, past a joining word ("and how do I ...")."""
    return next((n for n, i in enumerate(items) if i.text not in JOINING), None)


def _interrogative(items: Sequence[Item], lead: int | None, asked: bool = False) -> bool:
    """The clause opens like a question ("how do I ..."); with `asked` (it ends with "?"), "huh", "so" too."""
    words = ASKING if asked else INTERROGATIVES
    return lead is not None and lead < len(items) and items[lead].text.split()[0] in words


def _asks_meaning(clause: Clause) -> bool:
    """ "what do you mean by reset", "what does prorated mean?": a question about the words just said."""
    return any(w in MEANING for i in clause.items for w in i.text.split()) \
        and _interrogative(clause.items, _lead(clause.items))


def _has_subject(clause: Clause) -> bool:
    """The clause names its own subject before saying how it is ("my searches are gone"), rather than going on
    about the one before ("but kicks me out after 5 minutes")."""
    lead = next((i for i in clause.items if not _filler(i)), None)
    return lead is not None and not lead.kinds & {"works", "broken", "still", "negators", "deny"}


def _interjection(sense: Sense) -> bool:
    """A clause that only says yes or no ("nope", "yes!"), to be read with what follows it."""
    return (sense.affirm or sense.deny) and not sense.polar and not sense.content


def _set_aside(clauses: list[Clause], senses: list[Sense], judged: Judge
               ) -> tuple[list[tuple[Clause, Sense]], list[Clause]]:
    """Clauses that turn to another problem (set aside), and the rest (the answer)."""
    core: list[tuple[Clause, Sense]] = []
    aside: list[Clause] = []
    answered = any(s.polar or s.affirm or s.deny for s in senses)
    for clause, sense in zip(clauses, senses, strict=True):
        if clause.another and not sense.still and (sense.broken or sense.asks
                                                   or (sense.content and not sense.works)):
            aside.append(clause)
        elif answered and sense.asks and not sense.still and not sense.polar and _names_else(sense) \
                and _interrogative(clause.items, _lead(clause.items)) and judged(clause.text) in ELSEWHERE:
            aside.append(clause)  # "works, how do I turn on 2fa?": a question of its own beside the answer
        elif clause.contrast and not sense.still and not sense.deny and sense.content and _has_subject(clause) \
                and not sense.has("pointing") and (
                ((sense.broken or sense.asks) and judged(clause.text) is not Topic.SAME)
                or (not sense.polar and judged(clause.text) is Topic.OTHER)):
            aside.append(clause)  # "works now, but I got charged twice": a statement of its own
        else:
            core.append((clause, sense))
    return core, aside


def _verify(core: list[tuple[Clause, Sense]], also: str, judged: Judge) -> Reading:
    """After a fix: yes, no, partly, a new problem, or nothing yet."""
    senses = [s for _, s in core]
    content = [s for s in senses if not _interjection(s)]
    said = [_polarity(s) or (1 if s.affirm and not s.deny else -1 if s.deny else 0) for s in content]
    if not any(said):  # only "yes" or "no" (or neither): the interjection answers
        said = [1 if s.affirm else -1 if s.deny else 0 for s in senses if _interjection(s)]
    if _ironic(core) and 1 in said:
        said = [-1 if x == 1 else x for x in said]
    partial = any(s.has("partial") for s in senses) or (1 in said and -1 in said) \
        or any(s.works and s.broken for s in content)
    broken = any(s.broken for s in senses)
    hedged = any(s.has("hedge") for s in senses)
    deferred = any(s.has("defer") for s in senses)
    sure_works = any(s.works and not s.has("weak") for s in senses)
    if (hedged or deferred) and not broken and not (sure_works and not hedged and not partial):
        return Reading(None, "not checked yet", also=also)
    corrected = _pointed(core, judged, contrast_only=1 in said) if not any(s.still for s in senses) else ""
    if corrected:
        return Reading(ReplyIntent.CORRECTION, REFUSED, also=corrected)
    if partial:
        return Reading(ReplyIntent.PARTLY, "better, not all", also=also)
    if -1 in said:
        if _asks_only(senses):
            return _question_back(core, also, judged)
        still = any(s.still or s.deny for s in senses)
        complaint = " ".join(c.text for c, s in core if s.broken)
        if not still and not also and judged(complaint) in ELSEWHERE:
            return Reading(ReplyIntent.NEW_PROBLEM, "names another problem", also=complaint)
        return Reading(ReplyIntent.NO, "still broken", also=also)
    if 1 in said:
        if _asks_only(senses):
            return Reading(None, "unsure", also=also)
        return Reading(ReplyIntent.YES, "works", also=also)
    if any(s.asks for s in senses):
        return _question_back(core, also, judged)
    return _no_answer(core, also, judged)


def _pointed(core: list[tuple[Clause, Sense]], judged: Judge, contrast_only: bool = False) -> str:
    """After a fix, "no, it's the calendar sync", "I meant the reminders": the fix was for the wrong problem, and
    this names the right one. The clauses that point, if they name something the index does not take for the
    problem in hand (a complaint only if it clearly names another: "it's rather slow" is still this one). With
    `contrast_only` (the reply also says something works) only a clause after "but" counts."""
    pointing = [(c, s) for c, s in core if (s.has("pointing") or s.has("correcting")) and _names_something(s)
                and not s.has("continuing") and (c.contrast or not contrast_only)]  # "you fixed X but I meant Y"
    named = " ".join(c.text for c, _ in pointing)
    if not named:
        return ""
    broken = any(s.broken for _, s in pointing)
    topic = judged(named)
    return named if (topic is Topic.OTHER if broken else topic is not Topic.SAME) else ""


def _question_back(core: list[tuple[Clause, Sense]], also: str, judged: Judge) -> Reading:
    """A question instead of an answer: about another problem ("how do I cancel my plan?") it is that problem;
    about this step ("how do I check?") it keeps the question open."""
    if also:
        return Reading(ReplyIntent.NEW_PROBLEM, "another matter", also=also)
    text = " ".join(c.text for c, _ in core)
    if any(_asks_meaning(c) for c, _ in core):
        return Reading(None, "a question back")  # "what does end of billing cycle mean for me?": about what was said
    asking = any(_interrogative(c.items, _lead(c.items)) for c, _ in core)  # "how do I check?" / "logged in??"
    # "how do I check?" is about this step; "is there a dark mode?" names something else, which the index knows
    names_else = any(_names_else(s) for _, s in core)
    if judged(text) is Topic.OTHER or ((not asking or names_else) and judged(text) is Topic.LIKELY_OTHER):
        return Reading(ReplyIntent.NEW_PROBLEM, "asks about another problem", also=text)
    return Reading(None, "a question back")


def _names_else(sense: Sense) -> bool:
    """The clause names something besides the step just asked about (its words, less the step's)."""
    return sense.content > sense.step


def _confirm(core: list[tuple[Clause, Sense]], also: str, judged: Judge) -> Reading:
    """A guess: yes, no, a correction (a no that says what it is instead), or nothing yet."""
    if not core:
        return Reading(ReplyIntent.CORRECTION, "names another problem", also=also) if also else Reading(None)
    senses = [s for _, s in core]
    first = senses[0]
    rest = senses[1:]
    pointing = any(s.has("pointing") or s.has("correcting") for s in senses)
    if first.affirm and not first.has("hedge") and not first.has("not_about_it"):
        contrasts = [s for c, s in core[1:] if c.contrast]
        if any(s.has("pointing") or s.has("correcting") for s in contrasts) or also:
            return Reading(ReplyIntent.CORRECTION, YES_BUT_ELSE, also=also)
        return Reading(ReplyIntent.YES, "yes")
    denied = first.deny or first.has("negated_state") or first.has("not_about_it")
    if denied or first.has("correcting") or pointing:
        named = (not first.has("not_about_it") and not first.deny and _names_something(first)
                 and not first.has("negated_state")) or any(_names_something(s) for s in rest) \
            or (first.deny and _names_something(first))
        if named or pointing or also:
            return Reading(ReplyIntent.CORRECTION, REFUSED, also=also)
        return Reading(ReplyIntent.NO, "no")
    if any(s.has("not_about_it") for s in senses):
        return Reading(ReplyIntent.NO, "not about that")
    if any(s.has("hedge") or s.has("defer") for s in senses) or _asks_only(senses):
        return Reading(None, "unsure")
    if any(s.affirm for s in senses):
        return Reading(ReplyIntent.YES, "yes")
    if (any(_polarity(s) == 1 for s in senses) and any(_polarity(s) == -1 for s in senses)) \
            or any(c.contrast and s.broken for c, s in core[1:]):
        return Reading(ReplyIntent.CORRECTION, "this works, that does not")  # "the mail came, but the link fails"
    text = " ".join(c.text for c, _ in core)
    if any(s.broken for s in senses):
        topic = judged(text)
        if topic is Topic.OTHER:
            return Reading(ReplyIntent.CORRECTION, "names another problem", also=text)
        return Reading(ReplyIntent.YES, "describes it") if topic is Topic.SAME else Reading(None, "unsure")
    if any(s.works for s in senses):
        return Reading(ReplyIntent.NO, "that works")
    return Reading(None, "no answer")


def _taken_back(reading: Reading) -> Reading:
    """While a person has the request: a refusal of what it was passed on as ("no, it's the calendar sync", "wrong
    one, the export fails") takes it back; nothing else is an answer, for nothing was asked. A complaint about
    something else ("my password reset email never came", "I have another problem") is another problem beside the
    request, which stays with the person; so do a correction that agrees first ("yes, but I meant for my whole
    team"), a yes, a no and a question about progress: the caller takes those as messages of their own."""
    if reading.intent is ReplyIntent.CORRECTION and reading.cue == REFUSED:
        return reading
    return Reading(None, "not taken back")


def _settled(core: list[tuple[Clause, Sense]], also: str, judged: Judge) -> Reading:
    """A person's answer: does it settle the matter? yes, no, a new problem, or nothing yet."""
    senses = [s for _, s in core]
    settled = any(s.has("settled") for s in senses)
    # "let me read it again" is no complaint; "still not clear" is
    complains = any(s.broken or (s.still and not s.has("defer") and not s.has("again")) for s in senses)
    against = complains or any(s.deny for s in senses)
    if settled and not complains:  # "nope, that's all, thanks": nothing more to ask
        return Reading(ReplyIntent.YES, "settled", also=also)
    complaint = " ".join(c.text for c, s in core if s.broken and s.content)
    if complaint and not any(s.deny for s in senses) and judged(complaint) is Topic.OTHER:
        # "my calendar stopped syncing again btw": not about the person's answer, a problem of its own
        return Reading(ReplyIntent.NEW_PROBLEM, "names another problem", also=" ".join(filter(None, (complaint, also))))
    if against and not _asks_only(senses):
        return Reading(ReplyIntent.NO, "not settled", also=also)
    if any(s.has("defer") or s.has("hedge") for s in senses):
        return Reading(None, "unsure", also=also)
    if _asks_only(senses) or (not core and also):
        return _question_back(core, also, judged)
    if any(s.affirm or s.works for s in senses):
        return Reading(ReplyIntent.YES, "yes", also=also)
    return _no_answer(core, also, judged)


def _no_answer(core: list[tuple[Clause, Sense]], also: str, judged: Judge) -> Reading:
    """No yes and no no: a new problem if the reply names one, else nothing yet."""
    if also:
        return Reading(ReplyIntent.NEW_PROBLEM, "another matter", also=also)
    text = " ".join(c.text for c, _ in core)
    complaint = any(s.content and (s.broken or s.question_like) for _, s in core)
    topic = judged(text) if any(s.content for _, s in core) else Topic.NONE
    if (complaint and topic in ELSEWHERE) or topic is Topic.OTHER:  # "I want to cancel my plan"
        return Reading(ReplyIntent.NEW_PROBLEM, "names another problem", also=text)
    return Reading(None, "no answer")


def _names_something(sense: Sense) -> bool:
    """After a no: does this clause say what the problem is instead ("it's outlook", "the timezone is wrong")?
    Saying the guessed thing is fine, or that it was never said, names nothing."""
    if sense.has("not_about_it") or (sense.works and not sense.broken):
        return False
    return bool(sense.broken or sense.content or sense.has("pointing"))


def _ironic(core: list[tuple[Clause, Sense]]) -> bool:
    """ "totally fixed... not", "great fix 🙄": praise said to mean the opposite."""
    if any(s.has("irony") for _, s in core):
        return True
    last = core[-1][0] if core else None
    return bool(last and len(core) > 1 and all(i.text in ("not", "no") for i in last.items))


def _asks_only(senses: Sequence[Sense]) -> bool:
    return bool(senses) and all(s.asks or not (s.polar or s.affirm or s.deny) for s in senses) \
        and any(s.asks for s in senses)


def _only_denies(clauses: Sequence[Clause]) -> bool:
    items = [i for c in clauses for i in c.items if not _filler(i)]
    return bool(items) and all(i.of("deny") for i in items)


def _likeness(word: str, key: str) -> float:
    """How surely `word` is `key`: 1 the same, 0.95 an inflection ("searching"), else difflib's ratio for a
    misspelling ("dashbord"); short words must match exactly."""
    if word == key:
        return 1.0
    if len(word) >= 4 and (word.startswith(key) or (key.startswith(word) and len(word) >= 5)):
        return 0.95
    if len(word) >= 5 and len(key) >= 5:
        return SequenceMatcher(None, word, key).ratio()
    return 0.0


def _plural(word: str) -> bool:
    """A word that counts things after a number ("3 jobs", "2 people"), not "5 obviously"."""
    return word in ("people", "times", "users", "members") or (len(word) > 3 and word.endswith("s")
                                                                and not word.endswith(("ss", "us", "ous")))


def _clamp(value: int) -> int:
    return max(1, min(5, value))


def _memo(judge: Judge | None) -> Judge:
    seen: dict[str, Topic] = {}

    def judged(text: str) -> Topic:
        if judge is None or not text.strip():
            return Topic.NONE
        if text not in seen:
            seen[text] = judge(text)
        return seen[text]
    return judged


# -- the examples file -------------------------------------------------------------------------------------

EXAMPLE_QUESTIONS = {"yes": Question.VERIFY, "no": Question.VERIFY, "partly": Question.VERIFY,
                     "correction": Question.CONFIRM, "new_problem": Question.VERIFY}
MIN_EXAMPLES = 5


def load_reply_examples(path: Path) -> dict[ReplyIntent, tuple[str, ...]]:
    """The example replies per meaning (`data/reply_examples.yaml`), checked: every meaning present with a few
    strings. They are the reader's own regression examples: a test reads each one (`EXAMPLE_QUESTIONS` says
    after which question) and a curator adds the phrasings users send."""
    data = load_mapping(path, "the reply examples", "meaning -> list of example replies")
    meanings = tuple(ReplyIntent(m) for m in EXAMPLE_QUESTIONS)
    unknown = sorted(set(map(str, data)) - set(EXAMPLE_QUESTIONS))  # unquoted yes: and no: load as True, False
    if unknown:
        raise ConfigurationError(f"{path}: unknown meaning(s) {unknown}; known: {', '.join(EXAMPLE_QUESTIONS)}")
    examples: dict[ReplyIntent, tuple[str, ...]] = {}
    for intent in meanings:
        texts = data.get(intent.value) or []
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ConfigurationError(f"{path}: {intent.value}: expected a list of non-empty strings")
        if len(texts) < MIN_EXAMPLES:
            raise ConfigurationError(f"{path}: {intent.value}: give at least {MIN_EXAMPLES} example replies")
        examples[intent] = tuple(texts)
    return examples
