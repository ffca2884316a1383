"""The playbook base: example vectors in faiss, centroids per playbook, calibrated bands, persisted together."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from core.errors import KnowledgeError
from core.taxonomy import OUT_OF_SCOPE
from knowledge.calibration import Calibration, HeldOut, fit
from knowledge.embedder import Embedder
from knowledge.index import VectorIndex
from knowledge.playbooks import Playbook

# Bump when the scoring changes, so stored calibrations are refitted.
SCORING_VERSION = "nearest+centroid/1"
NEIGHBOURS = 64
TOP_CANDIDATES = 5


class Band(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Candidate:
    playbook: str
    category: str
    score: float


@dataclass(frozen=True)
class Match:
    """What a message matched: candidates best first, the band the best one falls in, and its confidence."""

    candidates: tuple[Candidate, ...]
    band: Band
    confidence: float

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


class KnowledgeBase:
    """Matches text to playbooks. Build it once from the playbooks, then load it from disk."""

    def __init__(
        self,
        playbooks: Mapping[str, Playbook],
        embedder: Embedder,
        index: VectorIndex,
        row_playbooks: list[str],
        calibration: Calibration,
    ) -> None:
        self.playbooks = dict(playbooks)
        self.embedder = embedder
        self.index = index
        self._order = sorted(self.playbooks)
        self._position = {pid: i for i, pid in enumerate(self._order)}
        self._row_label = np.array([self._position[pid] for pid in row_playbooks], dtype="int64")
        self._is_oos = np.array([self.playbooks[p].category == OUT_OF_SCOPE for p in self._order])
        self._centroids, self._sums, self._counts = _centroids(index, self._row_label, len(self._order))
        self.calibration = calibration

    # -- matching -----------------------------------------------------------------------------------

    def match(self, text: str) -> Match:
        return self.match_vector(self.embedder.encode_one(text))

    def match_vector(self, vector: np.ndarray) -> Match:
        scores = self._scores(vector.reshape(1, -1))[0]
        ranking = np.argsort(-scores)
        top = int(ranking[0])
        candidates = tuple(
            Candidate(self._order[i], self.playbooks[self._order[i]].category, round(float(scores[i]), 4))
            for i in ranking[:TOP_CANDIDATES]
        )
        score = float(scores[top])
        c = self.calibration
        if self._is_oos[top]:
            return Match(candidates, Band.OUT_OF_SCOPE, c.confidence(score))
        if score < c.t_low:
            return Match(candidates, Band.OUT_OF_SCOPE, 1.0 - c.confidence(score))
        band = Band.ANSWER if score >= c.t_high else Band.CLARIFY
        return Match(candidates, band, c.confidence(score))

    def _scores(self, queries: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """Score of every playbook per query: the mean of nearest-example and centroid similarity."""
        k = min(NEIGHBOURS + int(exclude_self), len(self.index))
        sims, ids = self.index.search(queries, k)
        if exclude_self:
            sims, ids = sims[:, 1:], ids[:, 1:]  # the query itself is its own nearest row
        nearest = np.repeat(sims[:, -1:], len(self._order), axis=1)  # floor for playbooks beyond k
        rows = np.repeat(np.arange(len(queries)), ids.shape[1])
        valid = ids.ravel() >= 0
        np.maximum.at(nearest, (rows[valid], self._row_label[ids.ravel()[valid]]), sims.ravel()[valid])
        centroid = queries @ self._centroids.T
        return (nearest + centroid) / 2

    def held_out(self) -> HeldOut:
        """Leave-one-out scores of every example, for calibration."""
        vectors = np.stack([self.index.reconstruct(i) for i in range(len(self._row_label))])
        scores = self._scores(vectors, exclude_self=True)
        rows = np.arange(len(vectors))
        labels = self._row_label
        # The example's own centroid must not contain the example.
        own = self._sums[labels] - vectors
        norms = np.linalg.norm(own, axis=1)
        alone = self._counts[labels] <= 1
        own_sim = np.where(alone, 0.0, (own * vectors).sum(axis=1) / np.where(norms > 0, norms, 1))
        own_nearest = 2 * scores[rows, labels] - (vectors @ self._centroids.T)[rows, labels]
        scores[rows, labels] = (own_nearest + own_sim) / 2
        top = scores.argmax(axis=1)
        is_oos = self._is_oos[labels]
        top_is_oos = self._is_oos[top]
        correct = np.where(is_oos, top_is_oos, top == labels)
        return HeldOut(scores[rows, top], top_is_oos, correct, is_oos)

    # -- building and persistence -------------------------------------------------------------------

    @classmethod
    def build(
        cls, playbooks: Mapping[str, Playbook], embedder: Embedder, target_precision: float, progress: bool = False
    ) -> KnowledgeBase:
        if not playbooks:
            raise KnowledgeError("no playbooks to build the index from")
        rows = [(p.id, text) for p in playbooks.values() for text in p.examples]
        vectors = embedder.encode([text for _, text in rows], progress=progress)
        index = VectorIndex(vectors.shape[1])
        index.add(np.arange(len(rows)), vectors)
        provisional = Calibration(0.0, 1.0, 0.0, 0.0, target_precision, 0.0, 0.0, 0.0, 0.0, 0, 0)
        base = cls(playbooks, embedder, index, [pid for pid, _ in rows], provisional)
        base.calibration = fit(base.held_out(), target_precision)
        return base

    def save(self, directory: Path, fingerprint: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.index.save(directory / "examples.faiss")
        row_playbooks = [self._order[i] for i in self._row_label]
        meta = {
            "fingerprint": fingerprint,
            "model": self.embedder.model_id,
            "index_kind": self.index.kind,
            "rows": row_playbooks,
            "calibration": self.calibration.as_dict(),
            "built_at": time.time(),
        }
        tmp = directory / "meta.json.tmp"
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        tmp.replace(directory / "meta.json")

    @classmethod
    def load(cls, directory: Path, playbooks: Mapping[str, Playbook], embedder: Embedder, fingerprint: str):
        """The stored base if it was built from exactly these playbooks and model, else None."""
        try:
            meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if meta.get("fingerprint") != fingerprint or not (directory / "examples.faiss").exists():
            return None
        index = VectorIndex.load(directory / "examples.faiss")
        calibration = Calibration(**meta["calibration"])
        return cls(playbooks, embedder, index, meta["rows"], calibration)


def fingerprint(playbooks: Mapping[str, Playbook], model_id: str, target_precision: float) -> str:
    """Changes whenever anything the index or the calibration depends on changes."""
    digest = hashlib.sha256(f"{SCORING_VERSION}|{model_id}|{target_precision}".encode())
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
) -> tuple[KnowledgeBase, BuildReport]:
    """Load the stored base, or build (and store) it when missing, stale or `force`d."""
    started = time.perf_counter()
    key = fingerprint(playbooks, embedder.model_id, target_precision)
    base = None if force else KnowledgeBase.load(directory, playbooks, embedder, key)
    built = base is None
    if base is None:
        base = KnowledgeBase.build(playbooks, embedder, target_precision, progress=progress)
        base.save(directory, key)
    report = BuildReport(
        built=built,
        examples=len(base.index),
        playbooks=len(base.playbooks),
        index_kind=base.index.kind,
        seconds=time.perf_counter() - started,
        calibration=base.calibration,
    )
    return base, report


def _centroids(index: VectorIndex, labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = np.stack([index.reconstruct(i) for i in range(len(labels))])
    sums = np.zeros((count, vectors.shape[1]), dtype="float32")
    np.add.at(sums, labels, vectors)
    counts = np.bincount(labels, minlength=count)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.where(norms > 0, norms, 1), sums, counts
