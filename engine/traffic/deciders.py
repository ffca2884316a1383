"""The simulated deciders: when they pick up a business request, whether they ask the user first or let it expire,
and whether they follow the desk's recommendation. No I/O: `simulation.py` acts through the real desk."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from engine.traffic.users import HOUR_S

REASONS = {
    "approved": "Approved: this is in line with what we offer accounts like yours.",
    "rejected": "Declined: this is outside what we can offer on your plan; we are happy to talk about alternatives.",
}
NOT_BUSINESS = ("This is not something the team decides: it looks like a technical problem. Please describe it in the "
                "chat and the assistant will look into it.")
QUESTIONS = {
    "hosting_capacity": "How many more seats would you need, and from when?",
    "pricing": "How many seats is this for, and what discount did you have in mind?",
    "policy": "Is this for your whole team, and how long have you been a customer?",
    "subscription_benefits": "Which plan are you on, and from when would you need this?",
}


class Step(StrEnum):
    DECIDE = "decide"
    ASK = "ask"
    EXPIRE = "expire"  # nobody gets to it in time


@dataclass(frozen=True)
class DeskPolicy:
    """Every number the deciders' behaviour is drawn from. Probabilities are 0-1, times in hours."""

    names: tuple[str, ...] = ("dana", "lee")  # deciders of every category; a second approval is the other one's
    poll_h: float = 1.0  # how often a decider looks at the queue
    let_expire: float = 0.08  # nobody decides the request in time
    ask_first: float = 0.15  # the decider asks the user a question before deciding
    mean_delay_h: float = 8.0  # time from raised to decided: 0.25 h plus an exponential of this mean ...
    latest_share: float = 0.9  # ... capped at this share of the request's time to answer
    decide_after_answer_h: tuple[float, float] = (1.0, 10.0)
    second_approval_h: tuple[float, float] = (1.0, 12.0)
    follow_recommendation: float = 0.85
    approve_without_recommendation: float = 0.6
    spot_not_business: float = 0.8  # a request that is no business decision is rejected and marked as such

    def assumptions(self) -> list[str]:
        p = self
        return [
            f"deciders: {len(p.names)} ({', '.join(p.names)}) look at the queue every {p.poll_h:g} h; for each request "
            f"{p.let_expire:.0%} let it expire, {p.ask_first:.0%} ask the user first (then decide "
            f"{p.decide_after_answer_h[0]:g}-{p.decide_after_answer_h[1]:g} h after the answer), the rest decide "
            f"0.25 h + an exponential of mean {p.mean_delay_h:g} h after it was raised (at most "
            f"{p.latest_share:.0%} of its time to answer)",
            f"decisions: follow the desk's recommendation {p.follow_recommendation:.0%} of the time (else the "
            f"opposite, with a reason); with no recommendation, approve {p.approve_without_recommendation:.0%}; a "
            f"second approver, when the policy asks for one, approves {p.second_approval_h[0]:g}-"
            f"{p.second_approval_h[1]:g} h later; a request whose message was not a business one (by its label) "
            f"is rejected and marked 'not a business decision' {p.spot_not_business:.0%} of the time",
        ]


@dataclass(frozen=True)
class Plan:
    """What a decider will do with one request, and how long after it was raised (or answered), in seconds."""

    step: Step
    after_s: float


class Deciders:
    """How simulated deciders behave: each method draws one decision from the shared `rng`."""

    def __init__(self, rng: random.Random, policy: DeskPolicy) -> None:
        self.rng = rng
        self.policy = policy

    def plan(self, window_s: float) -> Plan:
        """What happens to a new request with `window_s` seconds to answer it."""
        p, draw = self.policy, self.rng.random()
        if draw < p.let_expire:
            return Plan(Step.EXPIRE, window_s)
        latest = p.latest_share * window_s
        if draw < p.let_expire + p.ask_first:
            return Plan(Step.ASK, min(latest / 2, 0.25 * HOUR_S + self.rng.expovariate(HOUR_S / p.mean_delay_h)))
        return Plan(Step.DECIDE, min(latest, 0.25 * HOUR_S + self.rng.expovariate(HOUR_S / p.mean_delay_h)))

    def after_answer_s(self) -> float:
        return self.rng.uniform(*self.policy.decide_after_answer_h) * HOUR_S

    def second_approval_s(self) -> float:
        return self.rng.uniform(*self.policy.second_approval_h) * HOUR_S

    def outcome(self, recommended: str | None) -> tuple[str, str]:
        """(outcome, reason) given the desk's recommendation (None when it has none)."""
        p = self.policy
        if recommended in REASONS:
            follow = self.rng.random() < p.follow_recommendation
            outcome = recommended if follow else ("rejected" if recommended == "approved" else "approved")
        else:
            outcome = "approved" if self.rng.random() < p.approve_without_recommendation else "rejected"
        return outcome, REASONS[outcome]

    def spots_not_business(self) -> bool:
        """Whether the decider sees that a misrouted request is no business decision."""
        return self.rng.random() < self.policy.spot_not_business

    def pick(self) -> str:
        """The decider who picks a request up (any of them, uniformly)."""
        return self.rng.choice(self.policy.names)

    def other(self, name: str) -> str:
        """A second approver: another decider than `name`."""
        return next((n for n in self.policy.names if n != name), name)

    @staticmethod
    def question(category: str) -> str:
        return QUESTIONS.get(category, "Could you tell us a little more about what you need, and from when?")
