"""The simulated users: their accounts, when they write, and how they answer what the assistant asks.

No I/O here: every choice is drawn from the simulation's one `random.Random`, and `simulation.py` puts the words
through the real dialogue. The numbers are assumptions, listed with every run (`Behaviour.assumptions`) and in
docs/simulation.md: the figures a run produces are only as good as they are.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.store.decisions import Account
from engine.traffic.messages import Phrasing, matches

DAY_S = 86400.0
HOUR_S = 3600.0


class Say:
    """What simulated users type: plain phrasings the reply reader takes as meant (a test checks each one)."""

    YES = "yes, that's it"
    NO = "no, that's not it"
    NONE_OF_THESE = "none of these"  # the choice the page offers under the titles
    WORKS = "yes it works now"
    PARTLY = "partly, it's a bit better"
    BROKEN = "no, it's still broken"
    SETTLED = "yes, that answers it"
    NOT_SETTLED = "no, not really"
    NEWS = "any news on my request?"


# A decider's question gets an answer with the figures it asks for, from the user's account.
TEAM_ANSWERS = {
    "hosting_capacity": "We would need about {more} more seats from the start of next month.",
    "pricing": "It is for our {seats} seats, and we were hoping for 15% off.",
    "policy": "It is for our whole team of {seats} people; we have been customers for {months} months.",
    "subscription_benefits": "We are on the {plan} plan with {seats} seats and would like it from next month.",
}
# (plan, share of accounts, seats from-to, monthly price per seat)
PLANS = (("Free", 0.15, (1, 2), 0.0), ("Pro", 0.40, (1, 8), 15.0), ("Team", 0.30, (5, 40), 25.0),
         ("Enterprise", 0.15, (20, 300), 40.0))
HAPPY_RATINGS = ((5, 0.55), (4, 0.30), (3, 0.10), (2, 0.05))
UNHAPPY_RATINGS = ((1, 0.35), (2, 0.25), (3, 0.20), (4, 0.15), (5, 0.05))


@dataclass(frozen=True)
class Behaviour:
    """Every number the users' behaviour is drawn from. Probabilities are 0-1; times in seconds or hours as named."""

    conversations_per_user_day: float = 0.25  # a weekday's mean new conversations per user (Poisson)
    weekend_factor: float = 0.4  # Saturdays and Sundays have this share of a weekday's traffic
    working_hours: tuple[int, int] = (8, 18)  # UTC hours most conversations start between
    working_hours_share: float = 0.75  # ... this share of them; the rest at any hour
    verified_share: float = 0.75  # users the host app vouches for (remedies on their account may run)
    reply_gap_s: tuple[float, float] = (8.0, 120.0)  # reading and typing one reply
    careless: float = 0.05  # a yes-or-no question answered the wrong way
    fix_works_if_right: float = 0.8  # a fix for the right problem really works
    fix_works_if_wrong: float = 0.1  # a fix for another problem happens to help
    silent_if_works: float = 0.3  # asked "is it working now?", the user leaves without a word
    silent_if_broken: float = 0.15
    partly: float = 0.15  # a fix that did not work is reported as "partly" rather than "no"
    rate_if_happy: float = 0.55  # asked for a rating, the user gives one
    rate_if_unhappy: float = 0.3
    return_if_unresolved: float = 0.35  # a user whose problem is not solved opens a new conversation about it ...
    return_gap_h: tuple[float, float] = (1.0, 8.0)  # ... this many hours later, in other words of the same label
    rephrase_after_refusal: float = 0.35  # declined or asked to say more, an in-scope user tries other words
    max_turns: int = 8  # the user gives up after this many messages in one conversation
    answer_team: float = 0.75  # a decider's question is answered ...
    answer_team_gap_h: tuple[float, float] = (0.2, 20.0)  # ... after this long
    check_answer: float = 0.7  # a decided request's "did that answer it?" is answered ...
    check_answer_gap_h: tuple[float, float] = (0.5, 12.0)  # ... after this long
    settled_if_approved: float = 0.85  # ... with yes
    settled_if_rejected: float = 0.4
    settled_if_misrouted: float = 0.2  # the request was about something else than what the desk decided
    ask_for_news: float = 0.15  # a user waiting on the desk asks for news once ...
    news_gap_h: tuple[float, float] = (4.0, 24.0)  # ... after this long

    def assumptions(self) -> list[str]:
        b = self
        return [
            f"users: each opens new conversations at {b.conversations_per_user_day:g} a weekday on average "
            f"(Poisson, scaled per user by a lognormal activity of mean 1), weekends {b.weekend_factor:.0%} of that; "
            f"{b.working_hours_share:.0%} start between {b.working_hours[0]:02d}:00 and {b.working_hours[1]:02d}:00 "
            f"UTC; {b.verified_share:.0%} are vouched for by the host app",
            "accounts: plans Free 15%, Pro 40%, Team 30%, Enterprise 15%, seats and per-seat prices by plan, "
            "customers for 10 days to 4 years",
            "first message: a phrasing of the labelled set, drawn uniformly; the label is the truth the user "
            "judges the assistant's answers by",
            f"replies: {b.reply_gap_s[0]:g}-{b.reply_gap_s[1]:g} s apart; a yes-or-no is answered truthfully "
            f"(wrong {b.careless:.0%} of the time); a choice names the offered title of the label's playbook or "
            "category, else 'none of these'",
            f"fixes: work {b.fix_works_if_right:.0%} of the time when the playbook matches the label, "
            f"{b.fix_works_if_wrong:.0%} when not; asked whether it works, the user leaves silently "
            f"{b.silent_if_works:.0%} of the time when it works and {b.silent_if_broken:.0%} when not, else says "
            f"so ('partly' for {b.partly:.0%} of the failures)",
            f"ratings: given {b.rate_if_happy:.0%} of the time when fixed or settled (mostly 4-5), "
            f"{b.rate_if_unhappy:.0%} otherwise (mostly 1-3)",
            f"returns: {b.return_if_unresolved:.0%} of users whose problem was not solved (said so, left silently "
            f"with a fix that did not work, declined, gave up) open a new conversation "
            f"{b.return_gap_h[0]:g}-{b.return_gap_h[1]:g} h later in other words of the same label; once",
            f"refusals: declined or asked to say more, {b.rephrase_after_refusal:.0%} of in-scope users try other "
            f"words; out-of-scope users leave; anyone leaves after {b.max_turns} messages",
            f"the desk's questions are answered {b.answer_team:.0%} of the time, "
            f"{b.answer_team_gap_h[0]:g}-{b.answer_team_gap_h[1]:g} h later; a decision is acknowledged "
            f"{b.check_answer:.0%} of the time, {b.check_answer_gap_h[0]:g}-{b.check_answer_gap_h[1]:g} h later, "
            f"as settled {b.settled_if_approved:.0%} if approved, {b.settled_if_rejected:.0%} if rejected, "
            f"{b.settled_if_misrouted:.0%} if the request was not a business one; {b.ask_for_news:.0%} of waiting "
            "users ask for news once",
        ]


@dataclass(frozen=True)
class SimUser:
    """A simulated user: their id, account, whether the host app vouches for them, and their activity (their
    traffic relative to the average user's, mean 1)."""

    id: str
    account: Account
    verified: bool
    activity: float


@dataclass
class Visit:
    """One conversation of one user about one problem, as the simulation follows it."""

    user: SimUser
    phrasing: Phrasing
    returning: bool = False  # a later conversation about a problem not solved the first time
    conversation_id: str | None = None
    turns: int = 0
    works: bool = False  # the hidden truth of the fix the user is checking
    happy: bool = False  # fixed, or the desk's answer settled it
    outcome: str = ""  # how the user left, or is leaving (SimulationReport.outcomes)
    tried: tuple[str, ...] = ()  # phrasings already used for this problem
    news: bool = False  # asked the desk for news already
    done: bool = False  # left the conversation


def make_users(rng: random.Random, count: int, start_s: float, behaviour: Behaviour) -> list[SimUser]:
    """`count` users with accounts begun before `start_s` (epoch s)."""
    weights = [share for _, share, _, _ in PLANS]
    users = []
    raw_activity = [rng.lognormvariate(0.0, 0.6) for _ in range(count)]
    mean = sum(raw_activity) / count
    for number in range(1, count + 1):
        plan, _, (low, high), per_seat = rng.choices(PLANS, weights)[0]
        seats = rng.randint(low, high)
        since = start_s - rng.uniform(10, 4 * 365) * DAY_S
        price = round(seats * per_seat * rng.uniform(0.85, 1.15), 2)
        role = "admin" if rng.random() < 0.4 else "member"
        account = Account(plan, seats, role, f"Customer {number:04d}", since, price)
        users.append(SimUser(f"sim-user-{number:04d}", account, rng.random() < behaviour.verified_share,
                             raw_activity[number - 1] / mean))
    return users


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: the means here are small)."""
    if mean <= 0:
        return 0
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class Users:
    """How simulated users behave: each method draws one decision from the shared `rng`."""

    def __init__(self, rng: random.Random, behaviour: Behaviour, playbooks: Mapping[str, str]) -> None:
        self.rng = rng
        self.behaviour = behaviour
        self.playbooks = playbooks  # playbook id -> category

    def arrivals(self, users: Sequence[SimUser], day_start_s: float) -> list[tuple[float, SimUser]]:
        """The new conversations of the day beginning at `day_start_s` (epoch s, a UTC midnight), by time."""
        b = self.behaviour
        weekend = _weekday(day_start_s) >= 5
        found = []
        for user in users:
            mean = b.conversations_per_user_day * user.activity * (b.weekend_factor if weekend else 1.0)
            for _ in range(poisson(self.rng, mean)):
                if self.rng.random() < b.working_hours_share:
                    hour = self.rng.uniform(*b.working_hours)
                else:
                    hour = self.rng.uniform(0, 24)
                found.append((day_start_s + hour * HOUR_S, user))
        return sorted(found, key=lambda found: found[0])

    def gap_s(self) -> float:
        return self.rng.uniform(*self.behaviour.reply_gap_s)

    def hours(self, span: tuple[float, float]) -> float:
        """A delay drawn uniformly from `span` hours, in seconds."""
        return self.rng.uniform(*span) * HOUR_S

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def confirm(self, visit: Visit, offered: str) -> str:
        """Asked "is it `offered`?"."""
        right = matches(visit.phrasing.label, offered, self.playbooks)
        if self.chance(self.behaviour.careless):
            right = not right
        return Say.YES if right else Say.NO

    def choose(self, visit: Visit, offered: Sequence[str], titles: Mapping[str, str]) -> str:
        """Asked to choose among `offered` playbooks: the title of the one the label names, else none of them."""
        for playbook in offered:
            if matches(visit.phrasing.label, playbook, self.playbooks):
                return titles[playbook]
        return Say.NONE_OF_THESE

    def verify(self, visit: Visit, acted: str | None) -> str | None:
        """Asked whether the fix for `acted` works: draws whether it really does, then what the user says (None:
        they leave without a word)."""
        b = self.behaviour
        right = matches(visit.phrasing.label, acted, self.playbooks)
        visit.works = self.chance(b.fix_works_if_right if right else b.fix_works_if_wrong)
        if self.chance(b.silent_if_works if visit.works else b.silent_if_broken):
            return None
        if visit.works:
            return Say.WORKS
        return Say.PARTLY if self.chance(b.partly) else Say.BROKEN

    def rate(self, visit: Visit) -> str | None:
        """Asked for a rating: a digit from 1 to 5, or None."""
        b = self.behaviour
        if not self.chance(b.rate_if_happy if visit.happy else b.rate_if_unhappy):
            return None
        ratings = HAPPY_RATINGS if visit.happy else UNHAPPY_RATINGS
        return str(self.rng.choices([r for r, _ in ratings], [w for _, w in ratings])[0])

    def settle(self, visit: Visit, outcome: str, category: str) -> str | None:
        """Asked whether the desk's `outcome` on a `category` request settles it (None: no answer)."""
        b = self.behaviour
        if not self.chance(b.check_answer):
            return None
        if self.playbooks.get(visit.phrasing.label, visit.phrasing.label) != category:
            probability = b.settled_if_misrouted
        else:
            probability = b.settled_if_approved if outcome == "approved" else b.settled_if_rejected
        visit.happy = self.chance(probability)
        return Say.SETTLED if visit.happy else Say.NOT_SETTLED

    def answer_team(self, user: SimUser, category: str, now_s: float) -> str | None:
        """A decider asked the user something about a `category` request at `now_s` (epoch s): their answer, with
        the figures it asks for from their account, or None."""
        if not self.chance(self.behaviour.answer_team):
            return None
        account = user.account
        months = max(1, round((now_s - (account.since or now_s)) / (30 * DAY_S)))
        template = TEAM_ANSWERS.get(category, TEAM_ANSWERS["subscription_benefits"])
        return template.format(more=max(5, account.seats // 2), seats=account.seats, plan=account.plan,
                               months=months)

    def rephrase(self, visit: Visit, pool: Sequence[Phrasing]) -> Phrasing | None:
        """Other words for the same problem (a phrasing of the same label not used yet), or None."""
        unused = [p for p in pool if p.text not in visit.tried]
        return self.rng.choice(unused) if unused else None


def _weekday(epoch_s: float) -> int:
    """Monday 0 .. Sunday 6 of a UTC instant (1970-01-01 was a Thursday)."""
    return int((epoch_s // DAY_S + 3) % 7)

