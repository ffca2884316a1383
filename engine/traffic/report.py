"""What a simulated run did: the counts it kept as it went and read back from the store, the assumptions behind
them, and the wall time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimulationReport:
    """What a run did, counted as it went (conversations, messages, how users left, faults) and read back from the
    store at the end (remediations, escalations by status), with the assumptions behind it and the wall time."""

    seed: int
    days: int
    users: int
    start_s: float
    end_s: float
    conversations: int = 0
    returning: int = 0  # conversations about a problem not solved in an earlier one
    complaints: int = 0  # conversations about an injected fault
    user_messages: int = 0
    assistant_replies: int = 0
    decisions: Counter[str] = field(default_factory=Counter)  # the assistant's decisions, by kind
    outcomes: Counter[str] = field(default_factory=Counter)  # how users left their conversations (the truth)
    ratings: int = 0
    rating_total: int = 0
    faults_injected: int = 0
    faults_healed: int = 0  # gone before an engineer stepped in: cleared by a remediation
    faults_by_hand: int = 0
    faults_open: int = 0  # still there when the run ended
    remediations: Counter[str] = field(default_factory=Counter)  # by status
    remediations_from_chat: int = 0
    escalations: Counter[str] = field(default_factory=Counter)  # by final status
    questions_asked: int = 0  # deciders' questions to users
    questions_answered: int = 0
    desk_conflicts: int = 0  # a decider found the request already expired or decided
    errors: int = 0  # turns or desk actions the product refused (kept in the log)
    assumptions: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The report as JSON: every count, `outcomes` and `remediations` and `escalations` as objects."""
        return {
            "seed": self.seed, "days": self.days, "users": self.users, "start_s": self.start_s, "end_s": self.end_s,
            "conversations": self.conversations, "returning": self.returning, "complaints": self.complaints,
            "user_messages": self.user_messages, "assistant_replies": self.assistant_replies,
            "decisions": dict(sorted(self.decisions.items())), "outcomes": dict(sorted(self.outcomes.items())),
            "ratings": self.ratings,
            "mean_rating": round(self.rating_total / self.ratings, 2) if self.ratings else None,
            "faults": {"injected": self.faults_injected, "healed": self.faults_healed,
                       "by_hand": self.faults_by_hand, "open": self.faults_open},
            "remediations": dict(sorted(self.remediations.items())),
            "remediations_from_chat": self.remediations_from_chat,
            "escalations": dict(sorted(self.escalations.items())), "questions_asked": self.questions_asked,
            "questions_answered": self.questions_answered, "desk_conflicts": self.desk_conflicts,
            "errors": self.errors, "assumptions": list(self.assumptions), "wall_s": round(self.wall_s, 1),
        }
