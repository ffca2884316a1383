"""The playbook base: example vectors in faiss, centroids per playbook, calibrated bands, persisted together.

Examples can be added (a confirmed resolution teaches a new phrasing) and removed (a user deletes their
history) without rebuilding; the bands stay as calibrated until the next build.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from core.errors import KnowledgeError
from core.taxonomy import OUT_OF_SCOPE, Kind, kind_of
from knowledge import clauses
from knowledge.background import Background, class_id, is_background, is_greeting, prune
from knowledge.calibration import (
    DEFAULT_ACT_PRECISION,
    Calibration,
    HeldOut,
    fit,
    group_probabilities,
    top_two_share,
)
from knowledge.embedder import Embedder
from knowledge.head import LinearHead, choose_c, energy_scores, fit_head, folds
from knowledge.index import APPROXIMATE_ABOVE, VectorIndex
from knowledge.language import ENGLISH, language_of
from knowledge.playbooks import Playbook

# Bump when a scoring changes, so stored calibrations are refitted.
SCORING_VERSION = "scoring/4"
NEIGHBOURS = 64
VOTERS = 10  # neighbours that vote in k-NN scoring
TOP_CANDIDATES = 5


class Scoring(StrEnum):
    """How a playbook's score for a query is aggregated; `firstline eval --scoring` compares them."""

    NEAREST = "nearest"  # similarity of the playbook's nearest example
    CENTROID = "centroid"  # similarity of the playbook's mean example
    KNN = "knn"  # similarity-weighted vote of the nearest examples
    SIMILARITY = "similarity"  # mean of nearest and centroid: the default, every term updated at once
    HEAD = "head"  # logistic-regression logits, refusing on their energy


class Band(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    OUT_OF_SCOPE = "out_of_scope"
    NO_PROBLEM = "no_problem"  # a greeting or "help": nothing to match yet
    OTHER_LANGUAGE = "other_language"  # a language the model does not read, and nothing clear enough to act on


GROUPS = (Kind.TECHNICAL, Kind.BUSINESS, Kind.OUT_OF_SCOPE)  # the order of group columns


@dataclass(frozen=True)
class Candidate:
    playbook: str
    category: str
    score: float


@dataclass(frozen=True)
class Aside:
    """Another request in the same message ("... and can we get a discount"), clearly of an in-scope group."""

    playbook: str
    category: str
    group: str
    score: float
    text: str


@dataclass(frozen=True)
class Match:
    """What a message matched: candidates best first, the band the best one falls in, and its confidence."""

    candidates: tuple[Candidate, ...]
    band: Band
    confidence: float
    group: str = ""  # technical | business | out_of_scope: what the message is, decided before the playbook
    group_probability: float = 0.0  # the calibrated probability of that group
    asides: tuple[Aside, ...] = ()  # other requests the message makes, each matched on its own
    denied: tuple[str, ...] = ()  # clauses saying what the problem is not, left out of the matching
    forbids_action: bool = False  # the user forbids any change ("do NOT restart anything")
    language: str = ENGLISH  # ISO 639-1 code of the message's language ("und": a script we cannot name)

    @property
    def best(self) -> Candidate:
        return self.candidates[0]


@dataclass(frozen=True)
class BuildReport:
    built: bool
    examples: int
    playbooks: int
    index_kind: str
    seconds: float
    calibration: Calibration
    scoring: str = Scoring.SIMILARITY.value
    model: str = ""


@dataclass(frozen=True)
class Example:
    playbook: str
    text: str


def _locked(method):
    """Searches and changes of the index take turns: faiss does not allow adding while another thread searches,
    and a confirmed example can be learned while other conversations are being matched."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


class KnowledgeBase:
    """Matches text to playbooks. Build it once from the playbooks, then load it from disk."""

    def __init__(
        self,
        playbooks: Mapping[str, Playbook],
        embedder: Embedder,
        index: VectorIndex,
        examples: Mapping[int, Example],
        calibration: Calibration,
        scoring: Scoring = Scoring.SIMILARITY,
        head: LinearHead | None = None,
        background: Sequence[str] = (),
    ) -> None:
        self._lock = threading.RLock()
        self.playbooks = dict(playbooks)
        self.scoring = Scoring(scoring)
        self.head = head
        self.embedder = embedder
        self.index = index
        self.calibration = calibration
        # Classes are the playbooks plus the background's out-of-scope topics (never shown as candidates).
        self.background_topics = tuple(background)
        categories = {pid: p.category for pid, p in self.playbooks.items()}
        categories.update({class_id(topic): OUT_OF_SCOPE for topic in self.background_topics})
        self._order = sorted(categories)
        self._position = {pid: i for i, pid in enumerate(self._order)}
        self._category = [categories[p] for p in self._order]
        self._is_oos = np.array([c == OUT_OF_SCOPE for c in self._category])
        self._group = np.array([GROUPS.index(kind_of(c)) for c in self._category], dtype="int64")
        self._shown = np.array([not is_background(p) for p in self._order])
        self._examples = dict(examples)
        unknown = sorted({e.playbook for e in self._examples.values()} - set(self._position))
        if unknown:
            raise KnowledgeError(f"the index holds examples of unknown playbooks {unknown}; rebuild it")
        self._next_id = max(self._examples, default=-1) + 1
        self._label_by_id = np.full(self._next_id, -1, dtype="int64")
        for row_id, example in self._examples.items():
            self._label_by_id[row_id] = self._position[example.playbook]
        ids = np.array(sorted(self._examples), dtype="int64")
        self._sums = np.zeros((len(self._order), index.dimension), dtype="float64")
        self._counts = np.zeros(len(self._order), dtype="int64")
        self._accumulate(ids, index.vectors(ids), +1)

    @property
    def examples(self) -> Mapping[int, Example]:
        """A snapshot: examples may be added or removed by other threads meanwhile."""
        with self._lock:
            return dict(self._examples)

    # -- matching -----------------------------------------------------------------------------------

    def match(self, text: str, vector: np.ndarray | None = None, excluding: Collection[str] = ()) -> Match:
        """The match of a message (its `vector` too, when the caller has encoded it already). A message with
        nothing to match, no letter or digit at all (emoji, punctuation) or one character repeated, states no
        problem: the model is not asked. Playbooks in `excluding` are ones the user has said it is not ("no,
        it's the calendar sync" after a guess): they rank last and cannot win."""
        if states_nothing(text):
            return self._match(np.arange(len(self._order)), np.zeros(len(self._order)), Band.NO_PROBLEM, 1.0,
                               Kind.OUT_OF_SCOPE.value, 1.0)
        language = language_of(text)
        if language != ENGLISH:
            vector = self.embedder.encode_one(text) if vector is None else vector
            return self._in_another_language(self._scores_of(vector, excluding), language)
        reading = clauses.read(text)
        if reading.denied:  # match what the problem is, not what the user says it is not
            vector = self.embedder.encode_one(reading.text)
        main = self.match_vector(self.embedder.encode_one(text) if vector is None else vector, excluding)
        asides = self._asides(reading.requests, main) if reading.requests else ()
        return replace(main, asides=asides, denied=reading.denied, forbids_action=reading.forbids_action)

    def _in_another_language(self, scores: np.ndarray, language: str) -> Match:
        """A message the model cannot read well: a clear business group still goes to a person; a technical
        match is acted on only in the strict answer band; anything else is answered in English, never guessed.
        The business group is judged on the pack alone: the background's few lines in other languages attract
        any text in those languages, and similarities run lower across languages, so the far-from-everything
        floor does not apply either. A person reads the message, so a wrong guess costs a minute, not an action."""
        c = self.calibration
        if is_greeting(self._order[int(scores.argmax())]):  # "hola", "bonjour": a greeting in any language
            return replace(self.match_scores(scores), language=language)
        pack = np.where(self._shown, scores, -np.inf)
        probabilities = group_probabilities(pack.reshape(1, -1), self._group, c.temperature)[0]
        business = GROUPS.index(Kind.BUSINESS)
        if probabilities.argmax() == business and probabilities[business] >= c.group_threshold:
            order = self._group_first(np.argsort(-scores), business)
            return replace(self._match(order, scores, Band.ANSWER, float(probabilities[business]),
                                       Kind.BUSINESS.value, float(probabilities[business])), language=language)
        match = self.match_scores(scores)
        sure_technical = (match.group == Kind.TECHNICAL.value and match.band is Band.ANSWER
                          and match.best.score >= c.t_high)
        return replace(match, band=match.band if sure_technical else Band.OTHER_LANGUAGE, language=language)

    def _asides(self, requests: Sequence[str], main: Match) -> tuple[Aside, ...]:
        """The requests of a message, other than its main one, that clearly belong to an in-scope group."""
        found: dict[str, Aside] = {}
        asking = [text for text in requests if clauses.asks(text) and not clauses.refers_back(text)]
        for text, vector in zip(requests, self.embedder.encode_queries(requests), strict=True):
            part = self.match_vector(vector)
            if (part.group in (Kind.OUT_OF_SCOPE.value, "") or part.band is Band.OUT_OF_SCOPE
                    or part.group_probability < self.calibration.group_threshold
                    or part.best.playbook == main.best.playbook or part.best.playbook in found):
                continue
            if part.group == Kind.TECHNICAL.value and part.band is not Band.ANSWER and main.group == part.group:
                continue  # an unsure technical part of a technical message is the same problem, said twice
            if part.group == Kind.BUSINESS.value and not self._own_business_request(text, part, main, asking):
                continue
            found[part.best.playbook] = Aside(part.best.playbook, part.best.category, part.group, part.best.score,
                                              text)
        return tuple(found.values())

    @staticmethod
    def _own_business_request(text: str, part: Match, main: Match, asking: Sequence[str]) -> bool:
        """A business part goes to a person on its own only if it is a request of its own: it asks for something
        clearly (the answer band), is not about what the sentence before it said ("Is that possible on Team?"),
        and, in a business message, is not the message's only request (then it is the main one, told with its
        context: "We're on Enterprise.", "I forgot to cancel." are context, not requests)."""
        if part.band is not Band.ANSWER or text not in asking:
            return False
        return main.group != Kind.BUSINESS.value or len(asking) > 1

    def match_vector(self, vector: np.ndarray, excluding: Collection[str] = ()) -> Match:
        return self.match_scores(self._scores_of(vector, excluding))

    def _scores_of(self, vector: np.ndarray, excluding: Collection[str] = ()) -> np.ndarray:
        """One message's scores per playbook, those in `excluding` put last, far below `t_low`."""
        scores = self.scores(vector.reshape(1, -1))[0]
        ruled_out = [self._position[p] for p in excluding if p in self._position]
        if ruled_out:
            scores = scores.copy()
            scores[ruled_out] = float(scores.min()) - 1.0
        return scores

    def match_scores(self, scores: np.ndarray) -> Match:
        """Decide the group first, then the playbook within it.

        The softmax of the class scores, summed per group, says whether the message is a technical problem, a
        business request or out of scope. A clear business group goes to a person even when no single business
        playbook stands out; a clear technical group is acted on when its best playbook reaches the answer
        threshold and asked about otherwise (never declined); out of scope is declined, or met with "what's
        going wrong?" when the message states no problem. An unclear in-scope group is a question; a message most
        likely out of scope, or whose nearest class is out of scope, is declined. A message far from every class
        (below `t_low`) is out of scope. A clear business group overrides both: a person reads it."""
        c = self.calibration
        ranking = np.argsort(-scores)
        top = int(ranking[0])
        score = float(scores[top])
        probabilities = group_probabilities(scores.reshape(1, -1), self._group, c.temperature)[0]
        decided = int(probabilities.argmax())
        group, probability = GROUPS[decided].value, float(probabilities[decided])
        clear = probability >= c.group_threshold
        if score < c.t_low and not (clear and GROUPS[decided] is Kind.BUSINESS):
            # Far from every example: out of scope. A clear business request still goes to a person (a person
            # reads it; turning a customer's request away costs more than a minute of their time).
            return self._match(ranking, scores, Band.OUT_OF_SCOPE, 1.0 - c.confidence(score),
                               Kind.OUT_OF_SCOPE.value, 1.0 - c.confidence(score))
        if self._is_oos[top] and not (clear and GROUPS[decided] is Kind.BUSINESS):
            # The nearest class is one of the tenant's out-of-scope playbooks or a background topic: decline
            # (or greet), however much in-scope mass sits behind it; only a clear business group overrides it.
            oos = float(probabilities[GROUPS.index(Kind.OUT_OF_SCOPE)])
            band = Band.NO_PROBLEM if is_greeting(self._order[top]) else Band.OUT_OF_SCOPE
            return self._match(ranking, scores, band, oos, Kind.OUT_OF_SCOPE.value, oos)
        if not clear and GROUPS[decided] is not Kind.OUT_OF_SCOPE:
            in_scope = [i for i in ranking if not self._is_oos[i]]
            return self._match(in_scope, scores, Band.CLARIFY, c.confidence(score), group, probability)
        if GROUPS[decided] is Kind.OUT_OF_SCOPE:  # most likely out of scope, clearly or not: never a guess at a fix
            band = Band.NO_PROBLEM if is_greeting(self._order[top]) else Band.OUT_OF_SCOPE
            return self._match(ranking, scores, band, probability, group, probability)
        order = self._group_first(ranking, decided)
        within = [i for i in order if self._group[i] == decided]
        best = float(scores[within[0]])
        band = Band.ANSWER
        if GROUPS[decided] is Kind.TECHNICAL and len(within) > 1 and best < c.t_high:
            # Close to several technical playbooks: act when the best stands out, else ask which one it is.
            share = float(top_two_share(np.array(best), np.array(scores[within[1]]), c.temperature))
            band = Band.ANSWER if share >= c.answer_share else Band.CLARIFY
        return self._match(order, scores, band, c.confidence(best), group, probability)

    def _group_first(self, ranking: Sequence[int] | np.ndarray, group: int) -> list[int]:
        """`ranking` with the classes of `group` moved to the front, each part keeping its order."""
        return [i for i in ranking if self._group[i] == group] + [i for i in ranking if self._group[i] != group]

    def _match(self, order: Sequence[int] | np.ndarray, scores: np.ndarray, band: Band, confidence: float, group: str,
               probability: float) -> Match:
        """A Match whose candidates are the first shown classes of `order` (background topics are not shown)."""
        shown = [int(i) for i in order if self._shown[i]][:TOP_CANDIDATES]
        if not shown:
            shown = [int(i) for i in np.argsort(-np.where(self._shown, scores, -np.inf))[:TOP_CANDIDATES]]
        candidates = tuple(Candidate(self._order[i], self._category[i], round(float(scores[i]), 4)) for i in shown)
        return Match(candidates, band, float(confidence), group, round(probability, 4))

    @_locked
    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Score of every playbook per query, aggregated as `self.scoring` says."""
        if self.scoring is Scoring.HEAD:
            return energy_scores(self._fitted_head().logits(queries), ~self._is_oos)
        if self.scoring is Scoring.KNN:
            return self._votes(queries)
        if self.scoring is Scoring.NEAREST:
            return self._nearest(queries)
        centroid = queries @ self._centroids().T
        if self.scoring is Scoring.CENTROID:
            return centroid
        return (self._nearest(queries) + centroid) / 2

    def _fitted_head(self) -> LinearHead:
        if self.head is None:
            raise KnowledgeError("the classifier head is not fitted; rebuild the index (`firstline index build "
                                 "--force`)")
        return self.head

    def _votes(self, queries: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """Similarity-weighted vote of the VOTERS nearest examples, per playbook."""
        sims, ids = self.index.search(queries, min(VOTERS + int(exclude_self), len(self.index)))
        if exclude_self:
            sims, ids = sims[:, 1:], ids[:, 1:]
        votes = np.zeros((len(queries), len(self._order)), dtype="float64")
        rows = np.repeat(np.arange(len(queries)), ids.shape[1])
        flat_ids = ids.ravel()
        valid = flat_ids >= 0
        np.add.at(votes, (rows[valid], self._label_by_id[flat_ids[valid]]), sims.ravel()[valid])
        return votes / max(ids.shape[1], 1)

    def _nearest(self, queries: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """Similarity of each query to each playbook's nearest example, from a faiss search."""
        k = min(NEIGHBOURS + int(exclude_self), len(self.index))
        sims, ids = self.index.search(queries, k)
        if exclude_self:
            sims, ids = sims[:, 1:], ids[:, 1:]  # the query itself is its own nearest row
        nearest = np.repeat(sims[:, -1:], len(self._order), axis=1)  # floor for playbooks beyond k
        rows = np.repeat(np.arange(len(queries)), ids.shape[1])
        flat_ids = ids.ravel()
        valid = flat_ids >= 0
        np.maximum.at(nearest, (rows[valid], self._label_by_id[flat_ids[valid]]), sims.ravel()[valid])
        return nearest

    @_locked
    def held_out(self) -> HeldOut:
        """Held-out outcome of every example: leave-one-out for similarity scorings (the example removed
        from the index and its centroid), out-of-fold for the head (refitted without the fold)."""
        ids = np.array(sorted(self._examples), dtype="int64")
        vectors = self.index.vectors(ids)
        labels = self._label_by_id[ids]
        if self.scoring is Scoring.HEAD:
            scores = np.zeros((len(ids), len(self._order)), dtype="float64")
            for train, held in folds(len(ids)):
                head = fit_head(vectors[train], labels[train], len(self._order), self._fitted_head().c)
                scores[held] = energy_scores(head.logits(vectors[held]), ~self._is_oos)
            return self._outcome(scores, labels)
        if self.scoring is Scoring.KNN:
            return self._outcome(self._votes(vectors, exclude_self=True), labels)
        rows = np.arange(len(ids))
        centroid = vectors @ self._centroids().T
        own = self._sums[labels] - vectors  # the example's own centroid without it
        norms = np.linalg.norm(own, axis=1)
        alone = self._counts[labels] <= 1
        centroid[rows, labels] = np.where(alone, 0.0, (own * vectors).sum(axis=1) / np.where(norms > 0, norms, 1))
        if self.scoring is Scoring.CENTROID:
            return self._outcome(centroid, labels)
        nearest = self._nearest(vectors, exclude_self=True)
        if self.scoring is Scoring.NEAREST:
            return self._outcome(nearest, labels)
        return self._outcome((nearest + centroid) / 2, labels)

    def scored(self, vectors: np.ndarray, playbooks: Sequence[str]) -> HeldOut:
        """The outcome of labelled queries that are not in the base (a validation split)."""
        labels = np.array([self._position[p] for p in playbooks], dtype="int64")
        return self._outcome(self.scores(vectors), labels)

    @_locked
    def fit_head(self, validation: tuple[np.ndarray, Sequence[str]] | None = None, c: float | None = None) -> None:
        """Fit the classifier head on every example, its regularisation chosen on `validation` (vectors and
        playbook ids) or by cross-validation."""
        ids = np.array(sorted(self._examples), dtype="int64")
        vectors, labels = self.index.vectors(ids), self._label_by_id[ids]
        if c is None:
            held = None
            if validation is not None:
                held = (validation[0], np.array([self._position[p] for p in validation[1]], dtype="int64"))
            c = choose_c(vectors, labels, len(self._order), held)
        self.head = fit_head(vectors, labels, len(self._order), c)

    def _outcome(self, scores: np.ndarray, labels: np.ndarray) -> HeldOut:
        top = scores.argmax(axis=1)
        is_oos = self._is_oos[labels]
        top_is_oos = self._is_oos[top]
        correct = np.where(is_oos, top_is_oos, top == labels)
        return HeldOut(scores[np.arange(len(labels)), top], top_is_oos, correct, is_oos, scores, labels, self._group)

    # -- learning -----------------------------------------------------------------------------------

    def add_examples(self, playbook: str, texts: Sequence[str]) -> list[int]:
        """Index new phrasings of a playbook at once; returns their ids."""
        if playbook not in self.playbooks:
            raise KnowledgeError(f"unknown playbook {playbook!r}")
        vectors = self.embedder.encode(list(texts))  # outside the lock: matching goes on meanwhile
        return self._add_vectors(playbook, texts, vectors)

    @_locked
    def _add_vectors(self, playbook: str, texts: Sequence[str], vectors: np.ndarray) -> list[int]:
        ids = np.arange(self._next_id, self._next_id + len(texts), dtype="int64")
        self.index.add(ids, vectors)
        self._next_id += len(texts)
        self._label_by_id = np.concatenate([self._label_by_id, np.full(len(texts), self._position[playbook])])
        for row_id, text in zip(ids.tolist(), texts, strict=True):
            self._examples[row_id] = Example(playbook, text)
        self._accumulate(ids, vectors, +1)
        self._refresh_head()
        return ids.tolist()

    @_locked
    def remove_examples(self, ids: Sequence[int]) -> int:
        """Forget examples by id; returns how many there were."""
        present = np.array([i for i in ids if i in self._examples], dtype="int64")
        if len(present) == 0:
            return 0
        self._accumulate(present, self.index.vectors(present), -1)
        removed = self.index.remove(present)
        for row_id in present.tolist():
            del self._examples[row_id]
            self._label_by_id[row_id] = -1
        self._refresh_head()
        return removed

    def _refresh_head(self) -> None:
        """A removed example must leave the head too (a user's deleted history), and a new one should count."""
        if self.head is not None:
            self.fit_head(c=self.head.c)

    def _accumulate(self, ids: np.ndarray, vectors: np.ndarray, sign: int) -> None:
        labels = self._label_by_id[ids]
        np.add.at(self._sums, labels, sign * vectors.astype("float64"))
        np.add.at(self._counts, labels, sign)

    def _centroids(self) -> np.ndarray:
        norms = np.linalg.norm(self._sums, axis=1, keepdims=True)
        return (self._sums / np.where(norms > 0, norms, 1)).astype("float32")

    # -- building and persistence -------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        playbooks: Mapping[str, Playbook],
        embedder: Embedder,
        target_precision: float,
        progress: bool = False,
        approximate_above: int = APPROXIMATE_ABOVE,
        scoring: Scoring = Scoring.SIMILARITY,
        refusal_recall: float | None = None,
        validation: tuple[np.ndarray, Sequence[str]] | None = None,
        background: Background | None = None,
        act_precision: float = DEFAULT_ACT_PRECISION,
    ) -> KnowledgeBase:
        """Encode every example and the out-of-scope `background` (less its lines too close to the pack's
        in-scope examples, see `knowledge.background.prune`), index them, fit the head if the scoring has one,
        and calibrate the bands and the group decision: on `validation` (vectors and their playbook ids) when
        given, else on held-out examples."""
        if not playbooks:
            raise KnowledgeError("no playbooks to build the index from")
        pairs = [(p.id, text) for p in playbooks.values() for text in p.examples]
        vectors = embedder.encode([text for _, text in pairs], progress=progress)
        topics: list[str] = []
        if background is not None:
            extra, extra_vectors, topics = _background_rows(background, playbooks, pairs, vectors, embedder, progress)
            pairs += extra
            vectors = np.concatenate([vectors, extra_vectors]) if extra else vectors
        examples = {i: Example(pid, text) for i, (pid, text) in enumerate(pairs)}
        index = VectorIndex.build(np.arange(len(examples)), vectors, approximate_above)
        provisional = Calibration(0.0, 1.0, 0.0, 0.0, target_precision, 0.0, 0.0, 0.0, 0.0, 0, 0)
        base = cls(playbooks, embedder, index, examples, provisional, scoring, background=topics)
        if base.scoring is Scoring.HEAD:
            in_scope = None
            if validation is not None:
                keep = [i for i, p in enumerate(validation[1]) if not base._is_oos[base._position[p]]]
                in_scope = (validation[0][keep], [validation[1][i] for i in keep])
            base.fit_head(in_scope)
        held = base.held_out() if validation is None else base.scored(*validation)
        base.calibration = fit(held, target_precision, refusal_recall, act_precision)
        return base

    @_locked
    def save(self, directory: Path, fingerprint: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.index.save(directory / "examples.faiss")
        if self.head is not None:
            self.head.save(directory / "head.npz")
        meta = {
            "fingerprint": fingerprint,
            "model": self.embedder.model_id,
            "scoring": self.scoring.value,
            "index_kind": self.index.kind,
            "examples": [[i, e.playbook, e.text] for i, e in sorted(self._examples.items())],
            "background": list(self.background_topics),
            "calibration": self.calibration.as_dict(),
            "built_at": time.time(),
        }
        tmp = directory / "meta.json.tmp"
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        tmp.replace(directory / "meta.json")

    @classmethod
    def load(cls, directory: Path, playbooks: Mapping[str, Playbook], embedder: Embedder, fingerprint: str,
             scoring: Scoring = Scoring.SIMILARITY):
        """The stored base if it was built from exactly these playbooks and model, else None."""
        try:
            meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if meta.get("fingerprint") != fingerprint or not (directory / "examples.faiss").exists():
            return None
        try:
            examples = {int(i): Example(pid, text) for i, pid, text in meta["examples"]}
            calibration = Calibration(**meta["calibration"])
            topics = [str(t) for t in meta["background"]]
        except (KeyError, TypeError, ValueError):
            return None  # written by another version: rebuild
        head = LinearHead.load(directory / "head.npz") if scoring is Scoring.HEAD else None
        if scoring is Scoring.HEAD and head is None:
            return None
        return cls(playbooks, embedder, VectorIndex.load(directory / "examples.faiss"), examples, calibration,
                   scoring, head, topics)


def states_nothing(text: str) -> bool:
    """True for a message with no letter or digit (emoji, "?", "...") or made of one repeated character."""
    meaningful = [ch for ch in text if ch.isalnum()]
    return not meaningful or (len(set(ch.casefold() for ch in meaningful)) == 1 and len(meaningful) > 3)


def _background_rows(background: Background, playbooks: Mapping[str, Playbook], pairs: Sequence[tuple[str, str]],
                     vectors: np.ndarray, embedder: Embedder, progress: bool,
                     ) -> tuple[list[tuple[str, str]], np.ndarray, list[str]]:
    """The background lines kept beside this pack, as (class id, text) rows with their vectors, and the topics
    that kept any line."""
    rows = [(topic, line) for topic, lines in background.topics.items() for line in lines]
    own = {text.casefold() for _, text in pairs}
    rows = [(topic, line) for topic, line in rows if line.casefold() not in own]  # the pack's own words win
    found = embedder.encode([line for _, line in rows], progress=progress)
    in_scope = np.array([playbooks[pid].category != OUT_OF_SCOPE for pid, _ in pairs])
    inside = vectors[in_scope]
    nearest = _held_out_nearest(inside)
    keep = prune(found, inside, nearest)
    rows = [row for row, kept in zip(rows, keep, strict=True) if kept]
    topics = sorted({topic for topic, _ in rows})
    return [(class_id(topic), line) for topic, line in rows], found[keep], topics


def _held_out_nearest(vectors: np.ndarray) -> np.ndarray:
    """Each vector's similarity to its nearest other vector (an exact faiss search, itself left out)."""
    if len(vectors) < 2:
        return np.ones(len(vectors), dtype="float32")
    index = VectorIndex.build(np.arange(len(vectors)), vectors, approximate_above=len(vectors) + 1)
    sims, _ = index.search(vectors, 2)
    return sims[:, 1]


def fingerprint(playbooks: Mapping[str, Playbook], model_id: str, target_precision: float,
                scoring: Scoring = Scoring.SIMILARITY, refusal_recall: float | None = None,
                background: Background | None = None, act_precision: float = DEFAULT_ACT_PRECISION) -> str:
    """Changes whenever anything the index or the calibration depends on changes."""
    extra = (background.digest() if background is not None else "none") + f"|{act_precision}"
    digest = hashlib.sha256(f"{SCORING_VERSION}|{scoring}|{refusal_recall}|{model_id}|{target_precision}|{extra}"
                            .encode())
    for pid in sorted(playbooks):
        p = playbooks[pid]
        digest.update(json.dumps([p.id, p.category, list(p.examples)]).encode())
    return digest.hexdigest()


def open_knowledge(
    playbooks: Mapping[str, Playbook],
    embedder: Embedder,
    directory: Path,
    target_precision: float,
    force: bool = False,
    progress: bool = False,
    scoring: Scoring = Scoring.SIMILARITY,
    refusal_recall: float | None = None,
    background: Background | None = None,
    act_precision: float = DEFAULT_ACT_PRECISION,
) -> tuple[KnowledgeBase, BuildReport]:
    """Load the stored base, or build (and store) it when missing, stale or `force`d."""
    started = time.perf_counter()
    key = fingerprint(playbooks, embedder.model_id, target_precision, scoring, refusal_recall, background,
                      act_precision)
    base = None if force else KnowledgeBase.load(directory, playbooks, embedder, key, scoring)
    built = base is None
    if base is None:
        base = KnowledgeBase.build(playbooks, embedder, target_precision, progress=progress, scoring=scoring,
                                   refusal_recall=refusal_recall, background=background,
                                   act_precision=act_precision)
        base.save(directory, key)
    report = BuildReport(
        built=built,
        examples=len(base.index),
        playbooks=len(base.playbooks),
        index_kind=base.index.kind,
        seconds=time.perf_counter() - started,
        calibration=base.calibration,
        scoring=base.scoring.value,
        model=embedder.model_id,
    )
    return base, report
