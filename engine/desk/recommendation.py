"""Precedents and the recommendation: what was decided on similar requests, what the decision policy says, and
the outcome they point to with how strongly. The system recommends; a person decides.

Precedents are past decided requests of the same category, ranked by the meaning of the request (cosine of
the MiniLM vectors the matcher uses) and kept when at least `PRECEDENT_MIN` alike. Expired requests are not
precedents: nobody decided them. The recommendation is a weighted vote, shown with its parts: each applicable
policy guideline that recommends an outcome counts as `weight` precedents (3 unless the file says otherwise),
each similar precedent as one; the confidence is the winning side's share of the votes. With no vote at all
there is no recommendation, and the page says so rather than inventing one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.desk.policy import Guideline
from engine.store.escalations import Precedent

PRECEDENT_MIN = 0.45  # cosine: below this, requests of one category are about different things (issue 15 data)
PRECEDENTS_SHOWN = 9
PRECEDENTS_READ = 500  # the latest decided requests of a category compared by meaning
GUIDELINE_MIN = 0.35  # a guideline tied to no playbook touches a request this alike


@dataclass(frozen=True)
class SimilarCase:
    precedent: Precedent
    similarity: float

    def to_json(self) -> dict[str, Any]:
        p = self.precedent
        return {"id": p.id, "request": p.request, "playbook": p.playbook, "outcome": p.outcome, "reason": p.reason,
                "decided_by": p.decided_by, "decided_at": p.decided_at, "similarity": round(self.similarity, 3)}


@dataclass(frozen=True)
class Precedents:
    cases: tuple[SimilarCase, ...]
    decided_in_category: int

    @property
    def counts(self) -> Counter[str]:
        return Counter(c.precedent.outcome for c in self.cases)

    @property
    def majority(self) -> str | None:
        """The outcome most similar requests had, if more than half had it."""
        counts = self.counts
        if not counts:
            return None
        outcome, count = counts.most_common(1)[0]
        return outcome if count * 2 > len(self.cases) else None

    @property
    def line(self) -> str:
        """"7 of 9 similar requests were approved"."""
        if not self.cases:
            return (f"No similar request has been decided yet ({self.decided_in_category} decided in this category)."
                    if self.decided_in_category else "No request of this category has been decided yet.")
        outcome, count = self.counts.most_common(1)[0]
        return f"{count} of {len(self.cases)} similar requests were {outcome}."

    def to_json(self) -> dict[str, Any]:
        counts = self.counts
        return {"line": self.line, "approved": counts.get("approved", 0), "rejected": counts.get("rejected", 0),
                "majority": self.majority, "cases": [c.to_json() for c in self.cases]}


def similar_cases(request_vector: np.ndarray, decided: Sequence[Precedent], vectors: np.ndarray) -> Precedents:
    """The decided requests most alike `request_vector` (unit vectors; `vectors` row i is `decided[i]`)."""
    if not decided:
        return Precedents((), 0)
    similarity = vectors @ request_vector.reshape(-1)
    order = np.argsort(-similarity, kind="stable")
    cases = tuple(SimilarCase(decided[int(i)], float(similarity[i])) for i in order[:PRECEDENTS_SHOWN]
                  if similarity[i] >= PRECEDENT_MIN)
    return Precedents(cases, len(decided))


@dataclass(frozen=True)
class Recommendation:
    outcome: str | None  # approved | rejected | None (nothing to go on)
    confidence: float  # the winning side's share of the votes, 0-1
    reasons: tuple[str, ...]
    votes: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "confidence": round(self.confidence, 2), "reasons": list(self.reasons),
                "votes": {k: round(v, 2) for k, v in self.votes.items()}}


def recommend(guidelines: Sequence[Guideline], precedents: Precedents) -> Recommendation:
    """The outcome the applicable guidelines and the similar precedents point to (see the module docstring)."""
    votes: dict[str, float] = {}
    reasons = []
    for guideline in guidelines:
        if guideline.recommend:
            votes[guideline.recommend] = votes.get(guideline.recommend, 0.0) + guideline.weight
            reasons.append(f"Policy ({guideline.id}): {guideline.text}")
    for case in precedents.cases:
        votes[case.precedent.outcome] = votes.get(case.precedent.outcome, 0.0) + 1.0
    if precedents.cases:
        reasons.append(precedents.line)
    total = sum(votes.values())
    if not total:
        return Recommendation(None, 0.0, ("No guideline that recommends an outcome applies, and no similar request "
                                          "has been decided: decide on the facts.",), {})
    (outcome, best), *rest = sorted(votes.items(), key=lambda item: -item[1])
    if rest and rest[0][1] == best:  # a tie points nowhere
        return Recommendation(None, 0.5, (*reasons, "The policy and the precedents are evenly split."), dict(votes))
    return Recommendation(outcome, best / total, tuple(reasons), dict(votes))
