"""A light classifier head on the embeddings: multinomial logistic regression over the playbooks.

Its logits rank playbooks better than similarity does, and the energy of the in-scope logits (their
logsumexp) separates in-scope from out-of-scope queries better than any similarity we measured
(docs/matching-experiments.md). The head is refitted whenever examples change, which costs well under a
second at the size of a playbook pack; scikit-learn is imported inside, as in calibration.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

C_GRID = (1.0, 5.0, 20.0, 50.0, 200.0)  # inverse regularisation strengths tried; chosen on held-out accuracy
FOLDS = 3


@dataclass(frozen=True)
class LinearHead:
    """Weights per class (rows follow the base's playbook order) and the regularisation it was fitted with."""

    weights: np.ndarray  # classes x dimension
    bias: np.ndarray  # classes
    c: float

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        return vectors @ self.weights.T + self.bias

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, weights=self.weights, bias=self.bias, c=np.array(self.c))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LinearHead | None:
        try:
            with np.load(path) as stored:
                return cls(stored["weights"], stored["bias"], float(stored["c"]))
        except (OSError, ValueError, KeyError):
            return None


def fit_head(vectors: np.ndarray, labels: np.ndarray, classes: int, c: float) -> LinearHead:
    """Fit on labelled vectors; classes without examples get weights that never win."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    present = np.unique(labels)
    weights = np.zeros((classes, vectors.shape[1]), dtype="float32")
    bias = np.full(classes, -1e4, dtype="float32")
    if len(present) == 1:  # one class: it always wins
        bias[present[0]] = 0.0
        return LinearHead(weights, bias, c)
    model = LogisticRegression(C=c, max_iter=300)
    with warnings.catch_warnings():
        # Stopping a few iterations short of the optimum leaves a head as good on held-out data.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(vectors, labels)
    coef, intercept = model.coef_, model.intercept_
    if len(present) == 2:  # scikit-learn returns one row for a binary problem
        coef, intercept = np.vstack([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
    weights[present] = coef
    bias[present] = intercept
    return LinearHead(weights, bias, c)


def choose_c(vectors: np.ndarray, labels: np.ndarray, classes: int,
             validation: tuple[np.ndarray, np.ndarray] | None = None, grid: Sequence[float] = C_GRID) -> float:
    """The regularisation with the best top-1 accuracy on `validation`, or by cross-validation without it."""
    def accuracy(c: float) -> float:
        if validation is not None:
            val_vectors, val_labels = validation
            head = fit_head(vectors, labels, classes, c)
            return float((head.logits(val_vectors).argmax(axis=1) == val_labels).mean())
        right = 0
        for train, held in folds(len(labels)):
            head = fit_head(vectors[train], labels[train], classes, c)
            right += int((head.logits(vectors[held]).argmax(axis=1) == labels[held]).sum())
        return right / len(labels)

    scores = [accuracy(c) for c in grid]
    return float(grid[int(np.argmax(scores))])


def folds(size: int, count: int = FOLDS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded shuffled folds: (train rows, held-out rows) per fold."""
    order = np.random.default_rng(seed).permutation(size)
    parts = np.array_split(order, min(count, size))
    return [(np.concatenate([p for j, p in enumerate(parts) if j != i]), held) for i, held in enumerate(parts)]


def energy_scores(logits: np.ndarray, in_scope: np.ndarray) -> np.ndarray:
    """Per-playbook scores whose ranking is the logits' and whose best in-scope value is the energy
    (logsumexp of the in-scope logits): a query near no playbook has low energy however it ranks."""
    if not in_scope.any():
        return logits
    inside = logits[:, in_scope]
    top = inside.max(axis=1, keepdims=True)
    energy = top + np.log(np.exp(inside - top).sum(axis=1, keepdims=True))
    return logits - top + energy
