"""A month of traffic through the real parts in simulated time (`firstline simulate`).

The parts are the ones the server runs (`engine.wiring.build`) on the configured data folder (`parts.py`), with
a clock that only moves forward, from event to event of one agenda: users opening conversations and answering
the assistant through the same `Dialogue` the web chat uses, faults injected into the simulated infrastructure
while the real monitor ticks and heals, deciders answering business requests through the real `Desk`, and the
desk's expiry. Every random choice comes from one `random.Random(seed)`, and ids from a counter, so a seed on a
fresh data folder gives the same run every time. What is simulated, and with which numbers, is listed in the
report's `assumptions` (`report.py`, and docs/simulation.md): the figures are only as good as those.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import ConflictError, FirstlineError, InputError
from core.taxonomy import BUSINESS
from engine.access.administration import Administration
from engine.chat.dialogue import Exchange, Stage, versioned_state
from engine.desk.desk import Decider, Desk
from engine.healing.monitor import Monitor
from engine.store.decisions import Decisions
from engine.store.escalations import UNDECIDED, EscalationStatus
from engine.traffic.deciders import NOT_BUSINESS, Deciders, DeskPolicy, Step
from engine.traffic.faults import Fault, FaultPolicy, manual_fix, schedule
from engine.traffic.messages import Phrasing, category_of
from engine.traffic.parts import Product, RunSpec, SimulatedClock
from engine.traffic.report import SimulationReport
from engine.traffic.users import DAY_S, HOUR_S, Behaviour, Say, SimUser, Users, Visit, make_users, poisson

log = logging.getLogger("firstline.simulate")

CHANNEL = "web"  # simulated users chat as the web page's users do
UNRESOLVED = frozenset({"silent_broken", "not_fixed", "handed_off", "declined", "not_this", "unclear", "gave_up"})
Progress = Callable[[int, SimulationReport], None]  # (days done, the report so far)


@dataclass
class _Request:
    """A business request as the deciders follow it."""

    id: str
    category: str
    conversation_id: str
    decider: str
    step: Step
    waiting_answer: bool = False  # asked the user; decide once they answer


class Simulation:
    """One run: `run()` drives `parts` from `spec.start_s` to `spec.end_s` and returns the report."""

    def __init__(self, parts: Product, clock: SimulatedClock, spec: RunSpec, phrasings: Sequence[Phrasing], *,
                 behaviour: Behaviour | None = None, desk_policy: DeskPolicy | None = None,
                 fault_policy: FaultPolicy | None = None, progress: Progress | None = None) -> None:
        if parts.desk is None or parts.healing is None:
            raise FirstlineError("the simulation needs the parts with their desk and healing (engine.wiring.build)")
        self.parts, self.clock, self.spec = parts, clock, spec
        self.desk: Desk = parts.desk
        self.monitor: Monitor = parts.healing.monitor
        self.interval_s = self.monitor.interval_s
        self.phrasings = list(phrasings)
        self.by_label: dict[str, list[Phrasing]] = {}
        for phrasing in self.phrasings:
            self.by_label.setdefault(phrasing.label, []).append(phrasing)
        playbooks = parts.assistant.knowledge.playbooks
        self.categories = {pid: p.category for pid, p in playbooks.items()}
        self.titles = {pid: p.title for pid, p in playbooks.items()}
        self.rng = random.Random(spec.seed)
        self.behaviour = behaviour or Behaviour()
        self.desk_policy = desk_policy or DeskPolicy()
        self.fault_policy = fault_policy or FaultPolicy()
        self.users = Users(self.rng, self.behaviour, self.categories)
        self.deciders = Deciders(self.rng, self.desk_policy)
        self.progress = progress or (lambda _day, _report: None)
        self.report = SimulationReport(spec.seed, spec.days, spec.users, spec.start_s, spec.end_s)
        self._agenda: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._visits: dict[str, Visit] = {}  # by conversation id
        self._requests: dict[str, _Request] = {}  # by escalation id
        self._expired_seen: set[str] = set()
        self._active: list[tuple[Fault, str]] = []  # injected faults not cleared yet, with the service hit
        self._watch_until = 0.0
        self._tick_token = 0
        self._population: list[SimUser] = []

    # -- the agenda ---------------------------------------------------------------------------------

    def _at(self, when_s: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._agenda, (max(when_s, self.clock()), next(self._order), action))

    def run(self) -> SimulationReport:
        started = time.perf_counter()
        spec, report = self.spec, self.report
        population = self._population = make_users(self.rng, spec.users, spec.start_s, self.behaviour)
        admin = Administration(self.parts.tokens, Decisions(self.parts.store), self.parts.users, self.clock)
        for user in population:
            a = user.account
            admin.set_account(user.id, a.plan, a.seats, a.role, a.organisation, a.since, a.monthly_price)
        for fault in schedule(self.rng, self.fault_policy, spec.start_s, spec.days):
            self._at(fault.at_s, functools.partial(self._inject, fault))
        for day in range(spec.days):
            self._at(spec.start_s + day * DAY_S, functools.partial(self._new_day, day, population))
        self._at(spec.start_s, lambda: self._tick(0))
        self._at(spec.start_s + self.desk_policy.poll_h * HOUR_S, self._poll_desk)
        while self._agenda and self._agenda[0][0] < spec.end_s:
            at, _, action = heapq.heappop(self._agenda)
            self.clock.move_to(at)
            action()
        self.clock.move_to(spec.end_s)
        self._collect()
        report.assumptions = self.assumptions()
        report.wall_s = time.perf_counter() - started
        self.progress(spec.days, report)
        return report

    def assumptions(self) -> list[str]:
        labels = Counter(p.label for p in self.phrasings)
        return [
            *self.behaviour.assumptions(), *self.desk_policy.assumptions(),
            *self.fault_policy.assumptions(self.interval_s),
            f"messages: {len(self.phrasings)} labelled phrasings, {len(labels)} labels; the assistant is the real "
            "one, on the configured pack, rules, policy and settings (with the simulated infrastructure and adapter, "
            "whatever is configured)",
            "clock: simulated; the assistant answers instantly in simulated time, and it learns from confirmations "
            "as configured (the data folder keeps what it learned)",
        ]

    # -- users --------------------------------------------------------------------------------------

    def _new_day(self, day: int, population: Sequence[SimUser]) -> None:
        if day:
            self.progress(day, self.report)
        for at, user in self.users.arrivals(population, self.clock()):
            self._at(at, functools.partial(self._open, user))

    def _open(self, user: SimUser, phrasing: Phrasing | None = None, *, returning: bool = False,
              tried: tuple[str, ...] = (), complaint: bool = False) -> None:
        phrasing = phrasing or self.rng.choice(self.phrasings)
        visit = Visit(user, phrasing, returning=returning, tried=(*tried, phrasing.text))
        self.report.returning += returning
        self.report.complaints += complaint
        self._say(visit, phrasing.text)

    def _say(self, visit: Visit, text: str) -> None:
        """One user message through the dialogue, then the user's next move."""
        user, report = visit.user, self.report
        if visit.done:
            return  # the conversation ended meanwhile (a request expired before the user answered the desk)
        visit.turns += 1
        try:
            exchange = self.parts.dialogue.turn(text, user.id, visit.conversation_id, CHANNEL, verified=user.verified)
        except FirstlineError as error:
            log.warning("simulated turn refused (%s, %s): %s", user.id, visit.conversation_id, error)
            report.errors += 1
            self._leave(visit, "error")
            return
        if visit.conversation_id is None:
            visit.conversation_id = exchange.conversation_id
            self._visits[exchange.conversation_id] = visit
            report.conversations += 1
        report.user_messages += 1
        report.assistant_replies += len(exchange.replies)
        if exchange.answer is not None:
            report.decisions[exchange.answer.decision] += 1
        if exchange.understood and exchange.understood.startswith("rating:"):
            report.ratings += 1
            report.rating_total += int(exchange.understood.split(":", 1)[1])
        self._react(visit, exchange)

    def _later(self, visit: Visit, text: str | None, outcome: str, after_s: float | None = None) -> None:
        """The user says `text` after a while, or leaves (`outcome`) when it is None."""
        if text is None:
            self._leave(visit, outcome)
        else:
            self._at(self.clock() + (self.users.gap_s() if after_s is None else after_s),
                     lambda: self._say(visit, text))

    def _react(self, visit: Visit, exchange: Exchange) -> None:
        """What the user does with what the assistant said."""
        stage, answer = exchange.stage, exchange.answer
        if answer is not None and any(a.name == "handoff" for a in answer.actions):
            visit.outcome = "handed_off"  # what the user leaves with, whatever they rate
        # Waiting on the desk, or asked for a rating, is not a conversation going round in circles.
        settled = stage in (Stage.AWAITING_DECISION, Stage.CHECKING_ANSWER, Stage.RATING)
        if visit.turns >= self.behaviour.max_turns and not settled:
            self._leave(visit, "gave_up")
            return
        assert visit.conversation_id is not None
        state = versioned_state(self.parts.dialogue.chats, visit.conversation_id)[0]
        if stage is Stage.CONFIRMING:
            self._later(visit, self.users.confirm(visit, state.options[0]), "gave_up")
        elif stage is Stage.CHOOSING:
            self._later(visit, self.users.choose(visit, state.options, self.titles), "gave_up")
        elif stage is Stage.VERIFYING:
            text = self.users.verify(visit, state.playbook)
            visit.happy = visit.happy or text == Say.WORKS
            self._later(visit, text, "silent_fixed" if visit.works else "silent_broken")
        elif stage is Stage.RATING:
            visit.happy = visit.happy and visit.outcome != "handed_off"
            self._later(visit, self.users.rate(visit), self._ending(visit))
        elif stage is Stage.AWAITING_DECISION:
            if not state.asked and not visit.news and self.users.chance(self.behaviour.ask_for_news):
                visit.news = True  # once
                self._at(self.clock() + self.users.hours(self.behaviour.news_gap_h), lambda: self._news(visit))
        elif stage is Stage.OPEN:
            self._open_again(visit, exchange)

    def _open_again(self, visit: Visit, exchange: Exchange) -> None:
        """Back at the start: rated, refused, declined or asked to say more; the user may try other words."""
        answer = exchange.answer
        rated = bool(exchange.understood and exchange.understood.startswith("rating:"))
        if rated or visit.happy or visit.outcome in ("settled", "not_settled"):
            self._leave(visit, self._ending(visit))
        elif answer is None:
            self._leave(visit, "not_this")  # said no to what was offered, and nothing else was
        elif answer.decision in ("decline", "clarify"):
            outcome = "declined" if answer.decision == "decline" else "unclear"
            label = visit.phrasing.label
            other = None
            if category_of(label, self.categories) != "out_of_scope" and \
                    self.users.chance(self.behaviour.rephrase_after_refusal):
                other = self.users.rephrase(visit, self.by_label[label])
            if other is None:
                self._leave(visit, outcome)
            else:
                visit.tried = (*visit.tried, other.text)
                self._later(visit, other.text, outcome)
        else:
            self._leave(visit, "answered")  # answered with nothing to check (no fix to verify)

    def _ending(self, visit: Visit) -> str:
        """How a user who got to the end of the conversation leaves it."""
        if visit.outcome in ("handed_off", "settled", "not_settled"):
            return visit.outcome
        return "fixed" if visit.happy else "not_fixed"

    def _leave(self, visit: Visit, outcome: str) -> None:
        """The user is done with this conversation; one whose problem is still there may come back about it."""
        if visit.done:
            return
        visit.outcome, visit.done = outcome, True
        self.report.outcomes[outcome] += 1
        label = visit.phrasing.label
        if outcome in UNRESOLVED and not visit.returning and \
                category_of(label, self.categories) != "out_of_scope" and \
                self.users.chance(self.behaviour.return_if_unresolved):
            other = self.users.rephrase(visit, self.by_label[label]) or visit.phrasing
            self._at(self.clock() + self.users.hours(self.behaviour.return_gap_h),
                     lambda: self._open(visit.user, other, returning=True, tried=visit.tried))

    def _news(self, visit: Visit) -> None:
        assert visit.conversation_id is not None
        state = versioned_state(self.parts.dialogue.chats, visit.conversation_id)[0]
        if not visit.done and state.stage is Stage.AWAITING_DECISION and not state.asked:
            self._say(visit, Say.NEWS)

    # -- the desk -----------------------------------------------------------------------------------

    def _poll_desk(self) -> None:
        """A decider looks at the open requests: plans the new ones, and picks up those the user has answered.
        The desk's expiry is checked at each request's deadline (the server checks every minute)."""
        self._at(self.clock() + self.desk_policy.poll_h * HOUR_S, self._poll_desk)
        now = self.clock()
        # The rows the queue lists (escalations.find: one query; the queue page's figures are not needed here).
        for row in self.desk.escalations.find([s.value for s in UNDECIDED]):
            found = self._requests.get(row.id)
            if found is None:
                plan = self.deciders.plan(self.desk.window_s(row))
                found = _Request(row.id, row.category, row.conversation_id, self.deciders.pick(), plan.step)
                self._requests[found.id] = found
                self._at(self.desk.due_at(row) + 1, self._expire_now)
                if plan.step is not Step.EXPIRE:
                    act = self._ask if plan.step is Step.ASK else self._decide
                    self._at(max(now, row.created_at + plan.after_s), functools.partial(act, found))
            elif found.waiting_answer and row.status is EscalationStatus.OPEN:
                found.waiting_answer = False  # the user answered: the decider's clock runs again
                self._at(self.desk.due_at(row) + 1, self._expire_now)
                self._at(now + self.deciders.after_answer_s(), functools.partial(self._decide, found))

    def _misrouted(self, request: _Request) -> bool:
        """The request's message was, in truth (its label), no business request."""
        visit = self._visits.get(request.conversation_id)
        return visit is not None and category_of(visit.phrasing.label, self.categories) not in BUSINESS

    def _decider(self, name: str) -> Decider:
        return Decider(name, frozenset(), "desk")

    def _decide(self, request: _Request, name: str | None = None) -> None:
        decider = self._decider(name or request.decider)
        try:
            detail = self.desk.detail(request.id, decider)  # opening the request's page, as a decider does
            outcome, reason = self.deciders.outcome(detail["recommendation"]["outcome"])
            not_business = name is None and self._misrouted(request) and self.deciders.spots_not_business()
            if not_business:
                outcome, reason = "rejected", NOT_BUSINESS
            if name is not None:
                outcome = "approved"  # the second approver of an approval
            done = self.desk.decide(request.id, decider, outcome, reason, detail["digest"], not_business)
        except ConflictError:
            self.report.desk_conflicts += 1  # expired (or decided) before the decider got to it
            return
        except InputError as error:
            log.warning("simulated decision refused (%s): %s", request.id, error)
            self.report.errors += 1
            return
        if done["status"] in (EscalationStatus.OPEN.value, EscalationStatus.ASKED.value):
            second = self.deciders.other(decider.name)
            self._at(self.clock() + self.deciders.second_approval_s(),
                     lambda: self._decide(request, second))
            return
        self._told(request, done["status"])

    def _ask(self, request: _Request) -> None:
        decider = self._decider(request.decider)
        try:
            detail = self.desk.detail(request.id, decider)
            self.desk.ask(request.id, decider, self.deciders.question(request.category), detail["digest"])
        except ConflictError:
            self.report.desk_conflicts += 1
            return
        except InputError as error:
            log.warning("simulated question refused (%s): %s", request.id, error)
            self.report.errors += 1
            return
        request.waiting_answer = True
        self.report.questions_asked += 1
        asked = self.desk.escalations.get(request.id)
        if asked is not None:
            self._at(self.desk.due_at(asked) + 1, self._expire_now)  # unanswered, it expires then
        visit = self._visits.get(request.conversation_id)
        if visit is None:
            return
        text = self.users.answer_team(visit.user, request.category, self.clock())
        if text is not None:
            self._at(self.clock() + self.users.hours(self.behaviour.answer_team_gap_h),
                     lambda: self._answer_team(visit, text))

    def _answer_team(self, visit: Visit, text: str) -> None:
        if not visit.done:
            self.report.questions_answered += 1
            self._say(visit, text)

    def _told(self, request: _Request, outcome: str) -> None:
        """The desk posted its decision into the user's conversation: they read it later, and may say whether it
        settles their request."""
        visit = self._visits.get(request.conversation_id)
        if visit is None or visit.conversation_id is None:
            return
        stage, _ = self.parts.dialogue.status(visit.conversation_id, visit.user.id)
        if stage is not Stage.CHECKING_ANSWER:
            if not visit.done:
                self._leave(visit, f"told_{outcome}")
            return
        text = self.users.settle(visit, outcome, request.category)
        if text is None:
            self._leave(visit, f"told_{outcome}")
            return
        visit.outcome = "settled" if visit.happy else "not_settled"
        self._later(visit, text, "", self.users.hours(self.behaviour.check_answer_gap_h))

    def _expire_now(self) -> None:
        """The desk's expiry, then the users of every request that expired (here or inside another desk call)."""
        self.desk.expire_due()
        for row in self.desk.escalations.find([EscalationStatus.EXPIRED.value]):
            if row.id in self._expired_seen:
                continue
            self._expired_seen.add(row.id)
            visit = self._visits.get(row.conversation_id)
            if visit is not None and not visit.done:
                self._leave(visit, "expired")

    # -- the infrastructure -------------------------------------------------------------------------

    def _inject(self, fault: Fault) -> None:
        now = self.clock()
        service = self.parts.infrastructure.inject(fault.fault, ramp_s=fault.ramp_s)
        self._active.append((fault, service))
        self.report.faults_injected += 1
        self._watch_until = max(self._watch_until, now + self.fault_policy.watch_s)
        self._tick_token += 1  # from now on the monitor looks at its own interval
        token = self._tick_token
        self._at(now, lambda: self._tick(token))
        pool = self.by_label.get(fault.complaint, [])
        if pool:
            felt = now + fault.ramp_s / 2
            for _ in range(poisson(self.rng, self.spec.users * self.fault_policy.complaints_per_user)):
                user = self.rng.choice(self._population)
                phrasing = self.rng.choice(pool)
                self._at(felt + self.rng.uniform(0, self.fault_policy.complaint_within_s),
                         functools.partial(self._open, user, phrasing, complaint=True))

    def _tick(self, token: int) -> None:
        if token != self._tick_token:
            return  # a newer chain of ticks took over
        try:
            self.monitor.tick()
        except FirstlineError as error:  # as the server's loop does: a failed tick is logged, the next one runs
            log.error("monitor tick failed: %s", error)
            self.report.errors += 1
        self._check_faults()
        assert self.parts.healing is not None
        busy = bool(self._active) or self.clock() < self._watch_until or bool(self.parts.healing.ledger.verifying())
        self._at(self.clock() + (self.interval_s if busy else self.fault_policy.quiet_tick_s),
                 lambda: self._tick(token))

    def _check_faults(self) -> None:
        now, present = self.clock(), self.parts.infrastructure.faults()
        for fault, service in list(self._active):
            if (fault.name, service) not in present:
                self.report.faults_healed += 1
            elif now - fault.at_s >= self.fault_policy.give_up_s:
                self.parts.infrastructure.execute(manual_fix(fault.name), service, {})
                self.report.faults_by_hand += 1
            else:
                continue
            self._active.remove((fault, service))
            self._watch_until = max(self._watch_until, now + self.fault_policy.watch_s)

    # -- the end ------------------------------------------------------------------------------------

    def _collect(self) -> None:
        """What the store holds of this run: remediations and escalations, and what was still going on."""
        report, spec = self.report, self.spec
        assert self.parts.healing is not None
        for row in self.parts.healing.ledger.remediations():
            if spec.start_s <= row.started_at <= spec.end_s:
                report.remediations[str(row.status)] += 1
                report.remediations_from_chat += row.requester.startswith("conversation:")
        for escalation in self.desk.escalations.find():
            if escalation.conversation_id in self._visits:
                report.escalations[escalation.status.value] += 1
        report.faults_open = len(self._active)
        going_on = sum(1 for visit in self._visits.values() if not visit.done)
        if going_on:
            report.outcomes["in_progress_at_end"] += going_on
