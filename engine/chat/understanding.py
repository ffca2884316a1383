"""Reading a user's reply to a question: yes, no, partly, a correction or a new problem.

Replies are embedded with the playbooks' model and compared with small sets of example replies kept as data
(`data/reply_examples.yaml`) through a small linear model; when the best meaning wins by less than a margin
calibrated out of fold on the examples themselves, the reply is too close to call and the caller asks again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from core.errors import ConfigurationError
from knowledge.embedder import Embedder


class ReplyIntent(StrEnum):
    YES = "yes"
    NO = "no"
    PARTLY = "partly"
    CORRECTION = "correction"
    NEW_PROBLEM = "new_problem"


@dataclass(frozen=True)
class Reading:
    """What a reply means (None: too close to call), its best similarity and its lead over the runner-up."""

    intent: ReplyIntent | None
    score: float
    margin: float


@dataclass(frozen=True)
class ReplyCalibration:
    """The margin a reading needs, and how the examples fared leave-one-out at it."""

    min_margin: float
    accuracy: float  # out of fold, of the readings kept at this margin
    kept: float  # share of examples read (the rest were too close to call)
    raw_accuracy: float  # out of fold, every reading


INTENTS = tuple(ReplyIntent)
TARGET_ACCURACY = 0.9
MIN_EXAMPLES = 5
FOLDS = 8


def load_reply_examples(path: Path) -> dict[ReplyIntent, tuple[str, ...]]:
    """The example replies per meaning, checked: every meaning present, each with a few strings."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError(f"cannot read the reply examples {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a mapping of meaning -> list of example replies")
    unknown = sorted(set(map(str, data)) - {i.value for i in ReplyIntent})  # unquoted yes: and no: load as True, False
    if unknown:
        known = ", ".join(i.value for i in ReplyIntent)
        raise ConfigurationError(f"{path}: unknown meaning(s) {unknown}; known: {known}")
    examples: dict[ReplyIntent, tuple[str, ...]] = {}
    for intent in ReplyIntent:
        texts = data.get(intent.value) or []
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ConfigurationError(f"{path}: {intent.value}: expected a list of non-empty strings")
        if len(texts) < MIN_EXAMPLES:
            raise ConfigurationError(f"{path}: {intent.value}: give at least {MIN_EXAMPLES} example replies")
        examples[intent] = tuple(texts)
    return examples


class ReplyReader:
    """Reads replies with a logistic regression on their embeddings, fitted on the example replies.

    Nearest-example matching reads only about two replies in three right here (the sentence model places
    "it works" close to "it still doesn't work"); a linear model over the same embeddings learns the
    polarity from the examples and reads more than four in five right, out of fold.
    """

    def __init__(self, examples: Mapping[ReplyIntent, Sequence[str]], embedder: Embedder,
                 target_accuracy: float = TARGET_ACCURACY) -> None:
        self.embedder = embedder
        texts = [t for values in examples.values() for t in values]
        self._labels = np.array([INTENTS.index(i) for i, values in examples.items() for _ in values])
        self._vectors = embedder.encode(texts)
        self._model = _classifier().fit(self._vectors, self._labels)
        self.calibration = self._calibrate(target_accuracy)

    def read(self, text: str, vector: np.ndarray | None = None, allowed: Sequence[ReplyIntent] = INTENTS) -> Reading:
        """The meaning of `text` among `allowed` (pass its `vector` if it is already encoded)."""
        vector = self.embedder.encode_one(text) if vector is None else vector
        probabilities = self._model.predict_proba(vector.reshape(1, -1))[0]
        return _reading(probabilities, allowed, self.calibration.min_margin)

    def _calibrate(self, target: float) -> ReplyCalibration:
        """The smallest margin at which out-of-fold readings of the examples reach `target` accuracy.

        A small margin reads more replies and misreads more; asking again costs the user one more message,
        a misreading can run the wrong fix, so the margin is the smallest that still meets the target.
        """
        folds = min(FOLDS, int(np.bincount(self._labels).min()))
        probabilities = cross_val_predict(_classifier(), self._vectors, self._labels, cv=folds,
                                          method="predict_proba")
        ordered = np.sort(probabilities, axis=1)
        margins = ordered[:, -1] - ordered[:, -2]
        correct = probabilities.argmax(axis=1) == self._labels
        for cut in np.unique(np.concatenate([[0.0], margins])):
            kept = margins >= cut
            if kept.any() and correct[kept].mean() >= target:
                return ReplyCalibration(float(cut), float(correct[kept].mean()), float(kept.mean()),
                                        float(correct.mean()))
        return ReplyCalibration(1.0, 0.0, 0.0, float(correct.mean()))


def _classifier() -> LogisticRegression:
    return LogisticRegression(C=8.0, max_iter=2000)


def _reading(probabilities: np.ndarray, allowed: Sequence[ReplyIntent], min_margin: float) -> Reading:
    """The most probable allowed meaning, if it leads the next allowed one by `min_margin`."""
    positions = [INTENTS.index(i) for i in allowed]
    kept = probabilities[positions] / max(float(probabilities[positions].sum()), 1e-9)
    order = np.argsort(-kept)
    score = float(kept[order[0]])
    margin = score - float(kept[order[1]]) if len(order) > 1 else score
    return Reading(allowed[int(order[0])] if margin >= min_margin else None, score, margin)
