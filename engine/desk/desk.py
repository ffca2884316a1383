"""The escalation desk: the queue of business requests waiting for a person, each request's analysis (facts,
options, recommendation, precedents), and the decider's answer: approve, reject, or ask the user for more.

Rules the desk keeps (issue 15; the reference points are Airflow's human-in-the-loop operators, ServiceNow
approvals, GitHub environment reviews and StackStorm inquiries):
- deny by default: a request nobody decides within its category's time to answer closes as `expired`, never
  approved, and the user is told;
- a reason is required to reject, and to go against the recommendation or the precedent majority (kept in the
  record as `overruled`);
- the distinct approvers the decision policy asks for, each counted once; nobody decides their own request;
- one request at a time (no bulk action); a decision made on a page that no longer shows the request as it is
  (its digest changed) is refused;
- every step is appended to `escalation_events` with actor, time and reason;
- the user hears a decision, a question or an expiry in their conversation, and a notice written in the same
  transaction has it e-mailed to them if they have left the chat (engine/notify/).
Each action commits at once, behind a guard on the escalation's status, so two deciders (or a decider and the
expiry) acting together cannot both win.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from core.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from core.taxonomy import BUSINESS
from engine.chat.dialogue import ConversationState, Stage, versioned_state
from engine.chat.voice import Voice
from engine.desk.analysis import account_facts, capacity_measures, capacity_used, one_line, pricing_facts, tenure_days
from engine.desk.policy import DecisionPolicy, Guideline, request_figures
from engine.desk.recommendation import (
    GUIDELINE_MIN,
    PRECEDENTS_READ,
    Precedents,
    Recommendation,
    recommend,
    similar_cases,
)
from engine.infra.topology import Topology
from engine.store.conversations import Conversations
from engine.store.decisions import Account
from engine.store.escalations import (
    DECIDED,
    STATUS_FILTERS,
    UNDECIDED,
    EscalationRow,
    Escalations,
    EscalationStatus,
    EventKind,
    EventRow,
)
from engine.store.notifications import Notice, NoticeKind, Notifications


class EscalationOutcome(StrEnum):
    """What a person may decide on a business request."""

    APPROVED = "approved"
    REJECTED = "rejected"


OUTCOMES = tuple(o.value for o in EscalationOutcome)
MAX_REASON_CHARS = 2000
TELEMETRY_WINDOW_S = 30 * 86400.0  # capacity trends are fitted over the last 30 days of samples (or what exists)
WARN_AT = (0.5, 0.9)  # shares of the time to answer at which the queue warns


class Embedder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


class AccountBook(Protocol):
    def account(self, user_id: str) -> Account | None: ...

    def messages(self, conversation_id: str, user_id: str) -> list[tuple[str, str, float]]: ...


Series = Callable[[str, str, float], list[tuple[float, float]]]  # (service, metric, since) -> [(epoch s, value)]


@dataclass(frozen=True)
class Decider:
    """Who is deciding, and the categories they may decide (empty: all). `via`: desk, api or cli."""

    name: str
    categories: frozenset[str] = frozenset()
    via: str = "desk"

    def may_decide(self, category: str) -> bool:
        return not self.categories or category in self.categories


@dataclass(frozen=True)
class Analysis:
    row: EscalationRow
    facts: dict[str, Any]
    figures: dict[str, Any]
    guidelines: tuple[tuple[Guideline, bool], ...]  # (guideline touching the request, applies to its facts)
    precedents: Precedents
    recommendation: Recommendation
    approvers: tuple[str, ...]
    required: tuple[int, str]
    events: tuple[EventRow, ...]
    digest: str


class Desk:
    """The deciders' side of business escalations; stateless itself (everything lives in the store)."""

    def __init__(self, escalations: Escalations, conversations: Conversations, accounts: AccountBook,
                 series: Series, topology: Topology, policy: DecisionPolicy, embedder: Embedder, voice: Voice,
                 title: Callable[[str], str], deadlines_s: Mapping[str, float], *,
                 must_include: Callable[[str], Sequence[str]] = lambda _playbook: (),
                 clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.escalations = escalations
        self.chats = conversations
        self.accounts = accounts
        self.series = series
        self.topology = topology
        self.policy = policy
        self.embedder = embedder
        self.voice = voice
        self.title = title
        self.deadlines_s = dict(deadlines_s)
        self.must_include = must_include
        self.clock = clock
        self.new_id = new_id

    # -- reading ------------------------------------------------------------------------------------

    def due_at(self, row: EscalationRow) -> float:
        """When the request closes as expired if nobody decides it, or (asked) if the user does not answer
        (epoch s): the deadline it was given when raised; the setting for requests raised before deadlines were
        stored."""
        return row.due_at if row.due_at is not None else row.created_at + self.window_s(row)

    def window_s(self, row: EscalationRow) -> float:
        """The time to answer the request was given, in seconds."""
        return row.window_s if row.window_s is not None else self.deadlines_s[row.category]

    def queue(self, decider: Decider, status: str = "open", category: str | None = None) -> list[dict[str, Any]]:
        """The requests `decider` may decide, by status group (open, decided, expired, all, or one status) and
        category: open ones by deadline, soonest first; others newest first. InputError for an unknown filter."""
        self.expire_due()
        statuses = _status_filter(status)
        if category is not None and category not in BUSINESS:
            raise InputError(f"unknown category {category!r}; one of {', '.join(BUSINESS)}", code="invalid_query")
        categories = [c for c in BUSINESS if decider.may_decide(c) and (category is None or c == category)]
        rows = self.escalations.find([s.value for s in statuses], categories)
        now = self.clock()
        undecided = [r for r in rows if r.status in UNDECIDED]
        closed = [r for r in rows if r.status not in UNDECIDED]
        ordered = sorted(undecided, key=lambda r: (self.due_at(r), r.id)) + sorted(
            closed, key=lambda r: (-r.created_at, r.id))
        return [self._queue_row(r, now) for r in ordered]

    def detail(self, escalation_id: str, decider: Decider, *, viewed: bool = True) -> dict[str, Any]:
        """Everything the detail page shows, in its order: facts, options, recommendation, precedents, the
        record, and the digest a decision must carry back. Records the view (and a changed recommendation)."""
        self.expire_due()
        row = self._readable(escalation_id, decider)
        analysis = self._analyse(row)
        self._note_view(analysis, decider, viewed)
        return self._detail_json(analysis, decider)

    # -- acting -------------------------------------------------------------------------------------

    def decide(self, escalation_id: str, decider: Decider, outcome: str, reason: str,
               digest: str | None = None, not_business: bool = False) -> dict[str, Any]:
        """Approve or reject one request. Returns {"id", "status", "approvals", "approvals_required", "message"};
        an approval short of the approvers required is recorded and leaves the request open. `not_business`
        marks a rejected request as no business decision at all (it should not have come to a person; the
        false-escalation metric counts it). Raises
        NotFoundError (unknown id), ForbiddenError (another category, or the decider's own request),
        ConflictError (expired, withdrawn by the user, already decided, already approved by this decider, stale
        digest) and InputError (unknown outcome; missing reason where one is required)."""
        if outcome == "declined":
            outcome = "rejected"  # the first API's word
        if outcome not in OUTCOMES:
            raise InputError("`outcome` must be \"approved\" or \"rejected\"", code="invalid_body")
        reason = _reason(reason)
        analysis = self._actionable(escalation_id, decider, digest)
        against = self.against(analysis, outcome)
        if outcome == "rejected" and not reason:
            raise InputError("a reason is required to reject a request: it is kept in the record and told to the "
                             "user", code="reason_required")
        if against and not reason:
            raise InputError(f"a reason is required to decide against {' and '.join(against)}", code="reason_required")
        if not_business and outcome != "rejected":
            raise InputError("only a rejected request can be marked as not a business decision: reject it, say "
                             "why, and tick the mark", code="invalid_body")
        now = self.clock()
        if outcome == "approved":
            if _same_person(decider.name, analysis.approvers):
                raise ConflictError(f"you have already approved this request; an approval counts once per person "
                                    f"({len(analysis.approvers)} of {analysis.required[0]})", code="already_approved")
            if len(analysis.approvers) + 1 < analysis.required[0]:
                return self._approval(analysis, decider, reason, now)
        return self._close(analysis, decider, EscalationStatus(outcome), reason, against, now, not_business)

    def ask(self, escalation_id: str, decider: Decider, question: str, digest: str | None = None) -> dict[str, Any]:
        """Post `question` into the user's conversation; the request waits for their answer (status `asked`),
        which comes back to the desk. Raises as `decide` does; InputError for an empty question."""
        question = _reason(question)
        if not question:
            raise InputError("`question` is required: what should the user tell you?", code="invalid_body")
        analysis = self._actionable(escalation_id, decider, digest)
        row, now = analysis.row, self.clock()
        seed = f"{row.id}:asked:{len(analysis.events)}"
        prompt = self.voice.say("team_question", seed, title=self.title(row.playbook))
        event = EventRow(self.new_id(), row.id, now, decider.name, EventKind.ASKED, reason=question,
                         detail={"via": decider.via})
        state, version = self._conversation(row)
        state.stage, state.escalation_id, state.asked = Stage.AWAITING_DECISION, row.id, True
        # The deciders' clock stops while the user is asked; the user has a whole window to answer.
        statements = [self.escalations.pause_sql(row.id, self.due_at(row) - now, now + self.window_s(row)),
                      self.escalations.event_sql(event),
                      self.chats.message_sql(self.new_id(), row.conversation_id, row.user_id, "team", question, now),
                      self.chats.message_sql(self.new_id(), row.conversation_id, row.user_id, "assistant", prompt,
                                             now),
                      self._state_sql(row, state, version, now),
                      _notice_sql(event, row, NoticeKind.ASKED, question)]
        self.escalations.apply(statements, self.escalations.status_guard(
            row.id, UNDECIDED, EscalationStatus.ASKED, "this request changed while you were asking; reload it"))
        return {"id": row.id, "status": EscalationStatus.ASKED.value, "message": "Your question was posted to the "
                "user's conversation; their answer will appear in this request's record."}

    def expire_due(self) -> list[str]:
        """Close every undecided request past its time to answer as `expired` (never approved) and tell its
        user; returns their ids. Safe to call from several threads: each closes behind a status guard."""
        now, expired = self.clock(), []
        for row in self.escalations.find([s.value for s in UNDECIDED], list(BUSINESS)):
            if self.due_at(row) <= now:
                try:
                    self._expire(row, now)
                    expired.append(row.id)
                except ConflictError:
                    continue  # decided or expired by someone else meanwhile
        return expired

    # -- consistency --------------------------------------------------------------------------------

    @staticmethod
    def against(analysis: Analysis, outcome: str) -> list[str]:
        """What deciding `outcome` goes against: the recommendation, the precedent majority, or neither."""
        found = []
        recommended = analysis.recommendation.outcome
        if recommended and recommended != outcome:
            found.append(f"the recommendation ({recommended})")
        majority = analysis.precedents.majority
        if majority and majority != outcome:
            found.append(f"the precedent majority ({analysis.precedents.line.rstrip('.')})")
        return found

    # -- internals ----------------------------------------------------------------------------------

    def _readable(self, escalation_id: str, decider: Decider) -> EscalationRow:
        row = self.escalations.get(escalation_id)
        if row is None or row.category not in BUSINESS:
            raise NotFoundError(f"no escalation with id {escalation_id!r}; the queue (/desk/ or GET "
                                "/api/v1/escalations?status=all) lists them")
        if not decider.may_decide(row.category):
            allowed = ", ".join(sorted(decider.categories))
            raise ForbiddenError(f"you decide {allowed} requests only; this one is {row.category}")
        return row

    def _actionable(self, escalation_id: str, decider: Decider, digest: str | None) -> Analysis:
        self.expire_due()
        row = self._readable(escalation_id, decider)
        if row.status is EscalationStatus.EXPIRED:
            raise ConflictError(f"this request expired at {_when(self.due_at(row))} and was closed as expired (not "
                                "approved); the user was told and may ask again", code="expired")
        if row.status is EscalationStatus.WITHDRAWN:
            raise ConflictError("the user took this request back (they said it was not what they asked; their words "
                                "are in the request's history): there is nothing to decide", code="withdrawn")
        if row.status in DECIDED:
            decided = next((e for e in reversed(self.escalations.events(row.id)) if e.kind is EventKind.DECIDED), None)
            who = f" by {decided.actor} at {_when(decided.at_s)}" if decided else ""
            raise ConflictError(f"this request was already {row.status.value}{who}", code="already_decided")
        if _same_person(decider.name, (row.user_id,)):
            raise ForbiddenError("you raised this request yourself; another decider must decide it")
        analysis = self._analyse(row)
        if digest is not None and digest != analysis.digest:
            raise ConflictError("this request changed since your page was loaded (a new message, answer, approval "
                                "or precedent); reload it and decide again", code="stale_page")
        return analysis

    def _analyse(self, row: EscalationRow) -> Analysis:
        now = self.clock()
        account = self.accounts.account(row.user_id)
        messages = self.accounts.messages(row.conversation_id, row.user_id)
        events = tuple(self.escalations.events(row.id))
        figures = _figures(row, events)
        capacity = self._capacity(row, account, figures, now) if row.category == "hosting_capacity" else None
        facts_for_policy = _policy_facts(account, figures, capacity, now)
        vector = self.embedder.encode_queries([row.request or row.summary])[0]
        guidelines = self._guidelines(row, vector, facts_for_policy)
        precedents = self._precedents(row, vector)
        recommendation = recommend([g for g, applies in guidelines if applies], precedents)
        approvers = tuple({e.actor.casefold(): e.actor for e in events if e.kind is EventKind.APPROVAL}.values())
        required = self.policy.for_category(row.category).approvers_required(facts_for_policy)
        facts = self._facts(row, account, messages, figures, guidelines, capacity, now)
        digest = _digest(row, messages, events, recommendation, precedents, required)
        return Analysis(row, facts, figures, guidelines, precedents, recommendation, approvers, required, events,
                        digest)

    def _guidelines(self, row: EscalationRow, vector: np.ndarray, facts: Mapping[str, Any]
                    ) -> tuple[tuple[Guideline, bool], ...]:
        """The guidelines of the request's category that touch it (named for its playbook, or alike in meaning
        when tied to none), each with whether its conditions hold."""
        every = self.policy.guidelines(row.category)
        loose = [g for g in every if not g.playbooks]
        alike = set()
        if loose:
            similarity = self.embedder.encode([g.text for g in loose]) @ vector.reshape(-1)
            alike = {g.id for g, s in zip(loose, similarity, strict=True) if s >= GUIDELINE_MIN}
        touching = [g for g in every if (row.playbook in g.playbooks) or g.id in alike]
        return tuple((g, g.applies(facts)) for g in touching)

    def _precedents(self, row: EscalationRow, vector: np.ndarray) -> Precedents:
        decided = self.escalations.precedents(row.category, row.id, PRECEDENTS_READ)
        if not decided:
            return Precedents((), 0)
        return similar_cases(vector, decided, self.embedder.encode_queries([p.request for p in decided]))

    def _facts(self, row: EscalationRow, account: Account | None, messages: Sequence[tuple[str, str, float]],
               figures: Mapping[str, Any], guidelines: Sequence[tuple[Guideline, bool]],
               capacity: dict[str, Any] | None, now: float) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "request": row.request or row.summary,
            "messages": [{"role": role, "text": text, "at": at} for role, text, at in messages],
            "account": account_facts(row.user_id, account, now),
            "figures": dict(figures),
            "policy": [{"id": g.id, "text": g.text, "applies": applies, "conditions": g.when.describe(),
                        "recommends": g.recommend} for g, applies in guidelines],
            "needed": list(self.must_include(row.playbook)),
        }
        if capacity is not None:
            facts["capacity"] = capacity
        if row.category in ("pricing", "subscription_benefits"):
            facts["pricing"] = pricing_facts(account, self.escalations.priced_accounts(row.user_id))
        return facts

    def _capacity(self, row: EscalationRow, account: Account | None, figures: Mapping[str, Any],
                  now: float) -> dict[str, Any]:
        measures = self.policy.for_category(row.category).capacity_measures
        series = {m: self.series(m[0], m[1], now - TELEMETRY_WINDOW_S) for m in measures}
        total = self.escalations.total_seats()
        added = figures.get("quantity")
        found = capacity_measures(measures, self.topology, series, now, added, total)
        return {"measures": [asdict(m) for m in found], "used": capacity_used(found), "total_seats": total,
                "asked_for": added,
                "seats": account.seats if account else None,
                "estimate": ("The estimate with the request assumes load grows in proportion to seats: "
                             f"{total:,} seats today plus the {added:,.0f} asked for") if added and total else None}

    def _note_view(self, analysis: Analysis, decider: Decider, viewed: bool) -> None:
        now, row, events = self.clock(), analysis.row, []
        if viewed:
            events.append(EventRow(self.new_id(), row.id, now, decider.name, EventKind.VIEWED,
                                   detail={"via": decider.via}))
        last = next((e for e in reversed(analysis.events) if e.kind is EventKind.RECOMMENDED), None)
        rec = analysis.recommendation.to_json()
        if viewed and row.status in UNDECIDED and (last is None or (last.outcome, last.detail.get("confidence")) !=
                                        (rec["outcome"] or "", rec["confidence"])):
            events.append(EventRow(self.new_id(), row.id, now, "desk", EventKind.RECOMMENDED, rec["outcome"] or "",
                                   "; ".join(rec["reasons"]), {"confidence": rec["confidence"],
                                                               "precedents": analysis.precedents.line}))
        self.escalations.record(events)

    def _approval(self, analysis: Analysis, decider: Decider, reason: str, now: float) -> dict[str, Any]:
        row = analysis.row
        count, (required, why) = len(analysis.approvers) + 1, analysis.required
        event = EventRow(self.new_id(), row.id, now, decider.name, EventKind.APPROVAL, "approved", reason,
                         {"via": decider.via, "approvals": count, "required": required})
        self.escalations.apply([self.escalations.event_sql(event)], self.escalations.approvals_guard(
            row.id, UNDECIDED, row.status, len(analysis.approvers),
            "another decider acted on this request at the same moment; reload it and decide again"))
        return {"id": row.id, "status": row.status.value, "approvals": count, "approvals_required": required,
                "message": f"Your approval is recorded ({count} of {required}: {why}); another decider must "
                           "approve it before the user is told."}

    def _close(self, analysis: Analysis, decider: Decider, status: EscalationStatus, reason: str,
               against: Sequence[str], now: float, not_business: bool = False) -> dict[str, Any]:
        row = analysis.row
        rec = analysis.recommendation
        events = []
        if status is EscalationStatus.APPROVED:
            events.append(EventRow(self.new_id(), row.id, now, decider.name, EventKind.APPROVAL, "approved", reason,
                                   {"via": decider.via, "approvals": len(analysis.approvers) + 1,
                                    "required": analysis.required[0]}))
        approvers = [*analysis.approvers, decider.name] if status is EscalationStatus.APPROVED else [decider.name]
        events.append(EventRow(self.new_id(), row.id, now, decider.name, EventKind.DECIDED, status.value, reason,
                               {"via": decider.via, "deciders": approvers, "recommended": rec.outcome,
                                "confidence": round(rec.confidence, 2), "precedents": analysis.precedents.line}))
        if against:
            events.append(EventRow(self.new_id(), row.id, now, decider.name, EventKind.OVERRULED, status.value,
                                   reason, {"against": list(against)}))
        if not_business:
            events.append(EventRow(self.new_id(), row.id, now, decider.name, EventKind.NOT_BUSINESS, "", reason,
                                   {"category": row.category}))
        seed = f"{row.id}:decided"
        told = self.voice.say(status.value, seed, title=self.title(row.playbook), decision=reason)
        state, version = self._conversation(row)
        decided = next(e for e in events if e.kind is EventKind.DECIDED)
        statements = [*(self.escalations.event_sql(e) for e in events),
                      self.escalations.decision_sql(row.id, ", ".join(approvers), status, reason, now),
                      self.chats.message_sql(self.new_id(), row.conversation_id, row.user_id, "team", told, now),
                      _notice_sql(decided, row, NoticeKind(status.value), told)]
        if state.stage is Stage.AWAITING_DECISION and state.escalation_id == row.id:
            # Only a user still waiting on this request is asked if it settles it; one who moved on to another
            # problem, or whose request was named aside, is told the answer without being interrupted.
            check = self.voice.say("did_that_answer_declined" if status is EscalationStatus.REJECTED
                                   else "did_that_answer", seed)
            statements.append(self.chats.message_sql(self.new_id(), row.conversation_id, row.user_id, "assistant",
                                                     check, now))
            state.stage, state.asked = Stage.CHECKING_ANSWER, False
            statements.append(self._state_sql(row, state, version, now))
        self.escalations.apply(statements, self.escalations.approvals_guard(
            row.id, UNDECIDED, status, len(analysis.approvers),
            "this request was decided, approved or expired while you were deciding; reload it"))
        return {"id": row.id, "status": status.value, "approvals": len(approvers) if status.value == "approved" else 0,
                "approvals_required": analysis.required[0],
                "message": f"The request is {status.value}; the user has been told in their conversation."}

    def _expire(self, row: EscalationRow, now: float) -> None:
        hours = self.window_s(row) / 3600
        unanswered = row.status is EscalationStatus.ASKED
        reason = (f"the user did not answer the team's question within {hours:g} h" if unanswered else
                  f"no decision within {hours:g} h") + "; closed as expired (not approved)"
        event = EventRow(self.new_id(), row.id, now, "system", EventKind.EXPIRED, "expired", reason,
                         {"due_at": self.due_at(row)})
        told = self.voice.say("expired_unanswered" if unanswered else "expired", f"{row.id}:expired",
                              title=self.title(row.playbook))
        state, version = self._conversation(row)
        statements = [self.escalations.event_sql(event),
                      self.chats.message_sql(self.new_id(), row.conversation_id, row.user_id, "assistant", told, now),
                      _notice_sql(event, row, NoticeKind.EXPIRED_UNANSWERED if unanswered else NoticeKind.EXPIRED,
                                  told)]
        if state.stage is Stage.AWAITING_DECISION and state.escalation_id == row.id:
            statements.append(self._state_sql(row, ConversationState(turn=state.turn), version, now))
        self.escalations.apply(statements, self.escalations.status_guard(
            row.id, UNDECIDED, EscalationStatus.EXPIRED, "decided meanwhile"))

    def _conversation(self, row: EscalationRow) -> tuple[ConversationState, int | None]:
        return versioned_state(self.chats, row.conversation_id)

    def _state_sql(self, row: EscalationRow, state: ConversationState, version: int | None,
                   now: float) -> tuple[str, Sequence[Any]]:
        # A plain statement, not the transaction's guard: if the user's own turn saved the state meanwhile, theirs
        # stands (the dialogue notices the request was decided when they next write).
        sql, params, _ = self.chats.state_guard(row.conversation_id, row.user_id, state.stage, state.payload(), now,
                                                version)
        return sql, params

    def _queue_row(self, row: EscalationRow, now: float) -> dict[str, Any]:
        account = self.accounts.account(row.user_id)
        due, span = self.due_at(row), self.window_s(row)
        # The share of the deciders' time used: while the user is asked, what was used when the question went out.
        left = row.remaining_s if row.status is EscalationStatus.ASKED and row.remaining_s is not None else due - now
        share = min(1.0, max(0.0, 1.0 - left / span)) if span else 1.0
        warning = None
        if row.status is EscalationStatus.OPEN:
            warning = "90%" if share >= WARN_AT[1] else "50%" if share >= WARN_AT[0] else None
        # The queue's approvers-required reads the request's own words and the account (no telemetry: a capacity
        # rule may need more, which the request's page shows).
        events = self.escalations.events(row.id)
        facts = _policy_facts(account, _figures(row, events), None, now)
        approvals = len({e.actor.casefold() for e in events if e.kind is EventKind.APPROVAL})
        topic = self.title(row.playbook) or row.summary.split(":", 1)[0].strip().lower() or row.category
        closing = next((e for e in reversed(events) if e.kind in (EventKind.DECIDED, EventKind.EXPIRED)), None)
        decision = None if closing is None or row.status in UNDECIDED else {
            "outcome": closing.outcome, "reason": closing.reason, "by": closing.actor, "at": closing.at_s}
        return {"id": row.id, "category": row.category, "topic": topic,
                "request": one_line(row.request or row.summary), "summary": row.summary, "status": row.status.value,
                "created_at": row.created_at, "due_at": due,
                "remaining_s": round(due - now, 1) if row.status in UNDECIDED else None,
                "decider_remaining_s": round(left, 1) if row.status in UNDECIDED else None,
                "elapsed_share": round(share, 3), "warning": warning,
                "who": account_facts(row.user_id, account, now), "conversation_id": row.conversation_id,
                "approvals": approvals, "decision": decision,
                "approvals_required": self.policy.for_category(row.category).approvers_required(facts)[0]}

    def _detail_json(self, analysis: Analysis, decider: Decider) -> dict[str, Any]:
        row, now = analysis.row, self.clock()
        queue = self._queue_row(row, now)
        required, why = analysis.required
        recommendation = analysis.recommendation.to_json()
        return {
            "escalation": queue,
            "facts": analysis.facts,
            "options": [
                {"outcome": "approved", "label": "Approve",
                 "effect": ("the user is told at once, with your reason" if required == 1 else
                            f"needs {required} different people to approve ({why}); the user is told when the last "
                            "one does"),
                 "goes_against": self.against(analysis, "approved")},
                {"outcome": "rejected", "label": "Reject", "effect": "a reason is required; the user is told it",
                 "goes_against": self.against(analysis, "rejected")},
                {"outcome": "ask", "label": "Ask the user for more information",
                 "effect": "your question is posted in their conversation; their answer comes back here"},
            ],
            "approvals": {"required": required, "why": why, "by": list(analysis.approvers)},
            "recommendation": recommendation,
            "precedents": analysis.precedents.to_json(),
            "record": [{"at": e.at_s, "actor": e.actor, "kind": e.kind.value, "outcome": e.outcome,
                        "reason": e.reason, "detail": e.detail} for e in analysis.events],
            "may_decide": (row.status in UNDECIDED and decider.may_decide(row.category)
                           and not _same_person(decider.name, (row.user_id, *analysis.approvers))),
            "digest": analysis.digest,
        }


def cli_decider(users: Any, tokens: Any, name: str) -> Decider:
    """The decider `--as NAME` names on the command line: a decider's staff account that is not disabled (with
    its categories), else the user of a live decider API token (every category). InputError otherwise.
    `users` is an `engine.access.users.UserBook`, `tokens` a `TokenBook` (duck-typed: the desk room sits below
    access)."""
    staff = users.get(name)
    if staff is not None:
        if staff.disabled or staff.role.value != "decider":
            raise InputError(f"{name!r} is not an active decider (firstline user list shows who is)",
                             code="invalid_body")
        return Decider(name, frozenset(staff.categories), "cli")
    if any(t.user_id == name and t.role == "decider" and not t.revoked for t in tokens.listing()):
        return Decider(name, frozenset(), "cli")
    raise InputError(f"{name!r} is not a decider: create one with `firstline user create {name} --role decider`",
                     code="invalid_body")


def _notice_sql(event: EventRow, row: EscalationRow, kind: NoticeKind, text: str) -> tuple[str, Sequence[Any]]:
    """The notice that tells the user, written with the step that causes it (so it exists exactly when the step
    was committed) and named after that step's event; engine/notify/ e-mails it if they have left the chat."""
    return Notifications.notice_sql(Notice(event.id, row.user_id, row.conversation_id, kind, row.id, text,
                                           event.at_s))


def _figures(row: EscalationRow, events: Sequence[EventRow]) -> dict[str, float | None]:
    """The figures of the request and of the user's answers to the desk's questions (policy's `request_figures`)."""
    return request_figures(" ".join([row.request] + [e.reason for e in events if e.kind is EventKind.ANSWERED]))


def _same_person(name: str, names: Sequence[str]) -> bool:
    """Names compared as people write them: "Dana" and "dana" are one approver (and one requester)."""
    return name.casefold() in {n.casefold() for n in names}


def _policy_facts(account: Account | None, figures: Mapping[str, Any], capacity: Mapping[str, Any] | None,
                  now: float) -> dict[str, Any]:
    """The facts decision-policy conditions test (engine.desk.policy.FACTS); None where unknown."""
    return {"plan": account.plan if account else None, "seats": account.seats if account else None,
            "tenure_days": tenure_days(account, now), "monthly_price": account.monthly_price if account else None,
            "capacity_used": capacity["used"] if capacity else None, **figures}


def _status_filter(status: str) -> tuple[EscalationStatus, ...]:
    if status not in STATUS_FILTERS:
        raise InputError(f"unknown status {status!r}; one of {', '.join(STATUS_FILTERS)}", code="invalid_query")
    return STATUS_FILTERS[status]


def _reason(text: object) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InputError("the reason must be text", code="invalid_body")
    text = text.strip()
    if len(text) > MAX_REASON_CHARS:
        raise InputError(f"the text is {len(text):,} characters long; the limit is {MAX_REASON_CHARS:,}",
                         code="invalid_body")
    return text


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _digest(row: EscalationRow, messages: Sequence[tuple[str, str, float]], events: Sequence[EventRow],
            recommendation: Recommendation, precedents: Precedents, required: tuple[int, str]) -> str:
    """What the page showed, in 32 hex digits: the status, the conversation, what happened (views aside), the
    recommendation, the precedents and the approvers required. Any change makes a form carrying the old one stale."""
    shown = {"status": row.status.value, "messages": [[r, t, a] for r, t, a in messages],
             "events": [e.id for e in events if e.kind not in (EventKind.VIEWED, EventKind.RECOMMENDED)],
             "recommendation": [recommendation.outcome, round(recommendation.confidence, 2)],
             "precedents": [c.precedent.id for c in precedents.cases], "required": required[0]}
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()[:32]
