"""The reply reader's vocabulary (`data/reply_words.yaml`): loaded and checked, and found in a reply.

A reply is normalised (case, curly quotes, emoji read as words, contractions spelled out, "yesss" as "yes"),
cut into clauses at punctuation, and each clause's words are matched against the lists, longest phrase first.
What the matches mean is the reader's business (`engine.chat.understanding`); this module only finds them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError
from core.yamlfile import load_mapping

PHRASE_LISTS = ("affirm", "deny", "not_about_it", "pointing", "correcting", "works", "broken", "still", "negators",
                "gone", "settled", "partial", "hedge", "defer", "acknowledge", "another_matter", "irony",
                "progress", "decline", "all_options", "no_option", "any_option", "about_the_step")
SCORE_LISTS = ("rating_words", "ordinals")
MAX_PHRASE_WORDS = 8
INFLECTED = frozenset({"broken"})  # read inflected too ("freeze" as "freezes"); not "works": "stuck on loading"
SUFFIXES = ("ing", "ed", "es", "s", "e")
MAX_REPLY_CHARS = 4000  # a reply is read from its first few sentences; the rest is another message's business

CONTRACTIONS = tuple((re.compile(p), r) for p, r in (
    (r"\bcan'?t\b", "can not"), (r"\bcannot\b", "can not"), (r"\bwon'?t\b", "will not"), (r"\bain'?t\b", "is not"),
    (r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should|must|need)n'?t\b", r"\1 not"),
    (r"\b(it|that|what|there|here|who|he|she|where|how|everything|nothing|something|this)'s\b", r"\1 is"),
    (r"\bits\b", "it is"), (r"\bthats\b", "that is"), (r"\bwhats\b", "what is"), (r"\btheres\b", "there is"),
    (r"\bi'?m\b", "i am"), (r"\bi'll\b", "i will"), (r"\bi'd\b", "i would"), (r"\bi'?ve\b", "i have"),
    (r"\b(\w+)'re\b", r"\1 are"), (r"\b(\w+)'ll\b", r"\1 will"), (r"\b(\w+)'ve\b", r"\1 have"),
    (r"\b(\w+)'s\b", r"\1 is"), (r"\bgonna\b", "going to"), (r"\bwanna\b", "want to"), (r"\bu\b", "you"),
))
CLAUSE_BREAK = re.compile(r"(\?+)|[.!;:,…()\[\]\n\"]+|\s[-~]+\s|^[-~]+\s")
TOKEN = re.compile(r"\d+\s*/\s*\d+|\d+%|#?\d+(?:st|nd|rd|th)?\b|[^\W_]+")


@dataclass(frozen=True)
class Item:
    """A phrase of the lists (`kinds`: the lists it stands in) or a plain word (`kinds` empty)."""

    text: str
    kinds: frozenset[str]

    def of(self, kind: str) -> bool:
        return kind in self.kinds


@dataclass(frozen=True)
class Piece:
    """A stretch of a reply between punctuation: its items, and whether a question mark ended it."""

    items: tuple[Item, ...]
    question: bool


class Lexicon:
    """The lists of `data/reply_words.yaml`, ready to match."""

    def __init__(self, lists: Mapping[str, Sequence[str]], scores: Mapping[str, Mapping[str, int]],
                 emoji: Mapping[str, str]) -> None:
        self.emoji = sorted(emoji.items(), key=lambda pair: -len(pair[0]))
        self.kinds: dict[tuple[str, ...], set[str]] = {}
        for kind, phrases in lists.items():
            for phrase in phrases:
                self.kinds.setdefault(self.words(phrase), set()).add(kind)
        self.scores = {kind: {" ".join(self.words(k)): v for k, v in table.items()} for kind, table in scores.items()}
        for kind, table in self.scores.items():
            for phrase in table:
                self.kinds.setdefault(tuple(phrase.split()), set()).add(kind)
        self.longest = max((len(k) for k in self.kinds), default=1)
        self.stems: dict[str, set[str]] = {}
        for key, kinds in self.kinds.items():
            if len(key) == 1 and kinds & INFLECTED:
                self.stems.setdefault(_stem(key[0]), set()).update(kinds & INFLECTED)

    def normalise(self, text: str) -> str:
        """Lower case, emoji as words, straight quotes, contractions spelled out, letters run three times once."""
        text = unicodedata.normalize("NFC", text[:MAX_REPLY_CHARS]).lower()
        for symbol, words in self.emoji:
            text = text.replace(symbol, words)
        text = text.replace("\ufe0f", "").replace("\u20e3", "")
        text = re.sub("[\u2018\u2019`\u00b4]", "'", text)  # curly and stray apostrophes
        text = re.sub("[\u201c\u201d\u00ab\u00bb]", '"', text)
        text = re.sub("[\u2014\u2013]", " - ", text)  # em and en dashes
        for pattern, replacement in CONTRACTIONS:
            text = pattern.sub(replacement, text)
        return re.sub(r"([^\W\d_])\1{2,}", r"\1", text)

    def words(self, text: str) -> tuple[str, ...]:
        return tuple(w.lstrip("#").replace(" ", "") for w in TOKEN.findall(self.normalise(text)))

    def pieces(self, text: str) -> list[Piece]:
        """The reply cut at punctuation, each piece matched to the lists."""
        normalised = self.normalise(text)
        found: list[Piece] = []
        start = 0
        for brk in CLAUSE_BREAK.finditer(normalised):
            self._add(found, normalised[start:brk.start()], question=bool(brk.group(1)))
            start = brk.end()
        self._add(found, normalised[start:], question=False)
        return found

    def items(self, words: Sequence[str]) -> tuple[Item, ...]:
        """Left to right, the longest phrase of the lists at each place; other words stand alone."""
        found: list[Item] = []
        i = 0
        while i < len(words):
            for size in range(min(self.longest, len(words) - i), 0, -1):
                key = tuple(words[i:i + size])
                kinds = self.kinds.get(key)
                if kinds:
                    found.append(Item(" ".join(key), frozenset(kinds)))
                    i += size
                    break
            else:
                stem = _stem(words[i]) if words[i] != _stem(words[i]) else ""
                found.append(Item(words[i], frozenset(self.stems.get(stem, ()))))
                i += 1
        return tuple(found)

    def score(self, kind: str, phrase: str) -> int | None:
        return self.scores[kind].get(phrase)

    def _add(self, found: list[Piece], text: str, *, question: bool) -> None:
        words = [w.lstrip("#").replace(" ", "") for w in TOKEN.findall(text)]
        if words:
            found.append(Piece(self.items(words), question))
        elif question and found:  # "?" alone, or after a break: the piece before it was asked
            found[-1] = Piece(found[-1].items, True)
        elif question:
            found.append(Piece((), True))


def _stem(word: str) -> str:
    """A word without its inflection ("crashing", "crashes", "crashed": "crash"); short words stay whole."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[:-len(suffix)]
    return word


def load_lexicon(path: Path) -> Lexicon:
    """The lists of a reply-words file, checked. Raises ConfigurationError naming the file and the list."""
    data = load_mapping(path, "the reply words", "list name -> phrases")
    known = {*PHRASE_LISTS, *SCORE_LISTS, "emoji"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise ConfigurationError(f"{path}: unknown list(s) {unknown}; known: {', '.join(sorted(known))}")
    lists = {kind: _phrases(path, kind, data.get(kind)) for kind in PHRASE_LISTS}
    scores = {kind: _scores(path, kind, data.get(kind)) for kind in SCORE_LISTS}
    emoji = data.get("emoji") or {}
    if not isinstance(emoji, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                              for k, v in emoji.items()):
        raise ConfigurationError(f"{path}: emoji: expected a mapping of symbol -> the words it stands for")
    return Lexicon(lists, scores, emoji)


def _phrases(path: Path, kind: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigurationError(f"{path}: {kind}: expected a non-empty list of phrases")
    for phrase in value:
        if not isinstance(phrase, str) or not phrase.strip():
            raise ConfigurationError(f"{path}: {kind}: {phrase!r} is not a phrase (quote yes, no, on, off)")
        if len(phrase.split()) > MAX_PHRASE_WORDS:
            raise ConfigurationError(f"{path}: {kind}: {phrase!r} is longer than {MAX_PHRASE_WORDS} words")
    return tuple(value)


def _scores(path: Path, kind: str, value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or not value:
        raise ConfigurationError(f"{path}: {kind}: expected a mapping of phrase -> number")
    for phrase, number in value.items():
        if not isinstance(phrase, str) or not phrase.strip() or isinstance(number, bool) \
                or not isinstance(number, int) or not -1 <= number <= 10:
            raise ConfigurationError(f"{path}: {kind}: {phrase!r}: {number!r} must be a whole number (-1 to 10)")
    return dict(value)
