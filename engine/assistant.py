"""The pipeline for one message: validate -> match -> facts -> rules -> actions -> reply, every step recorded."""

from __future__ import annotations

import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import InputError
from core.taxonomy import BUSINESS, OUT_OF_SCOPE, Kind
from engine.remediation import Outcome, Remediator, RemedyRequest
from engine.ruleengine import Fact, Intent, RuleEngine, Run
from engine.store import ActionRow, DecisionRecord, EventStore
from engine.topology import Topology
from engine.voice import Voice
from knowledge.base import KnowledgeBase, Match
from knowledge.playbooks import Playbook

ESCALATION_STATUS = "created"
ENGINEERING = "engineering"


@dataclass(frozen=True)
class ActionResult:
    name: str
    target: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Answer:
    """The decision for one message, in the shape of the published `ask --json` contract (see `contract`)."""

    conversation_id: str
    decision: str  # resolve | clarify | escalate | decline
    category: str
    playbook: str | None
    confidence: float
    escalation: Mapping[str, str] | None
    candidates: tuple[Mapping[str, Any], ...]
    rules_fired: tuple[str, ...]
    actions: tuple[ActionResult, ...]
    reply: str
    band: str
    errors: tuple[str, ...] = ()

    def contract(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "category": self.category,
            "playbook": self.playbook,
            "confidence": round(self.confidence, 4),
            "escalation": dict(self.escalation) if self.escalation else None,
            "candidates": [dict(c) for c in self.candidates],
            "rules_fired": list(self.rules_fired),
            "actions": [{"name": a.name, "target": a.target, "status": a.status} for a in self.actions],
            "reply": self.reply,
        }


def clean_message(text: str, max_chars: int) -> str:
    """The message as we will store it, or an InputError a person can act on."""
    if not isinstance(text, str):
        raise InputError("a message must be text", code="not_text")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise InputError("the message is not valid UTF-8 text; send it as UTF-8", code="not_utf8")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()
    if not text:
        raise InputError("the message is empty; describe what is going wrong", code="empty_message")
    if len(text) > max_chars:
        raise InputError(
            f"the message is {len(text):,} characters long; the limit is {max_chars:,}. "
            "Shorten it, or send the key part first",
            code="message_too_long",
        )
    return text


@dataclass
class _Turn:
    """Working state of one decision while it is being made."""

    conversation_id: str
    user_id: str
    channel: str
    text: str
    match: Match
    playbook: Playbook | None
    facts: list[Fact] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


class Assistant:
    """Answers messages. Stateless between calls: everything it knows of a conversation is in the store."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        rules: RuleEngine,
        remediator: Remediator,
        topology: Topology,
        store: EventStore,
        voice: Voice,
        max_message_chars: int,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.knowledge = knowledge
        self.rules = rules
        self.remediator = remediator
        self.topology = topology
        self.store = store
        self.voice = voice
        self.max_message_chars = max_message_chars
        self.dry_run = dry_run
        self.clock = clock
        self.new_id = new_id

    def answer(
        self,
        text: str,
        user_id: str,
        conversation_id: str | None = None,
        channel: str = "cli",
        dry_run: bool | None = None,
    ) -> Answer:
        started = time.perf_counter()
        text = clean_message(text, self.max_message_chars)
        dry_run = self.dry_run if dry_run is None else dry_run
        if conversation_id is None:
            conversation_id = self.new_id()
            self.store.start_conversation(conversation_id, user_id, channel)
        elif self.store.conversation_owner(conversation_id) != user_id:
            raise InputError("no such conversation", code="not_found")
        message_id = self.new_id()
        # The user's message is written before any work, so a crash later loses nothing accepted.
        self.store.add_message(message_id, conversation_id, user_id, "user", text)

        match = self.knowledge.match(text)
        best = self.knowledge.playbooks.get(match.best.playbook)
        turn = _Turn(conversation_id, user_id, channel, text, match, best)
        turn.facts = self._facts(turn)
        run = self.rules.run(turn.facts)
        answer = self._act(turn, run, dry_run)
        self._record(turn, run, answer, message_id, dry_run, (time.perf_counter() - started) * 1000)
        return answer

    def history(self, conversation_id: str, user_id: str) -> list[dict[str, Any]]:
        """The messages of one of `user_id`'s conversations; someone else's conversation does not exist."""
        if self.store.conversation_owner(conversation_id) != user_id:
            raise InputError("no such conversation", code="not_found")
        rows = self.store.messages(conversation_id, user_id)
        return [{"role": role, "text": text, "at": at} for role, text, at in rows]

    # -- facts --------------------------------------------------------------------------------------

    def _facts(self, turn: _Turn) -> list[Fact]:
        match, playbook = turn.match, turn.playbook
        telemetry = self.remediator.infrastructure.observe()
        unhealthy: set[tuple[str, str]] = set()
        facts = [Fact("message", {"text": turn.text, "length": len(turn.text)})]
        for service, values in telemetry.items():
            for metric, value in values.items():
                bad = self.topology.is_unhealthy(service, metric, value)
                if bad:
                    unhealthy.add((service, metric))
                limit = self.topology.services[service].limits[metric]
                facts.append(Fact("metric", {"service": service, "name": metric, "value": value, "limit": limit,
                                             "status": "unhealthy" if bad else "ok"}))
            facts.append(Fact("service", {"name": service, "healthy": not any(s == service for s, _ in unhealthy)}))
        remedies = playbook.remedies if playbook else ()
        since = self.clock() - self.remediator.cooldown_s
        defaults = 0
        indicated = 0
        for rank, remedy in enumerate(remedies, 1):
            signal = remedy.indicated_by
            failed = self.store.failed_recently(turn.user_id, remedy.action, remedy.target, since)
            if signal is None:
                defaults += 1
            elif (signal.service, signal.metric) in unhealthy and not failed:
                indicated += 1
            facts.append(Fact("remedy", {
                "rank": rank, "action": remedy.action, "target": remedy.target,
                "signal_service": signal.service if signal else "", "signal_metric": signal.metric if signal else "",
                "default_rank": defaults if signal is None else 0, "failed_recently": failed,
            }))
        facts.insert(1, Fact("match", {
            "playbook": match.best.playbook, "title": playbook.title if playbook else "",
            "category": match.best.category, "kind": playbook.kind.value if playbook else Kind.OUT_OF_SCOPE.value,
            "band": match.band.value, "confidence": round(match.confidence, 4), "score": match.best.score,
            "indicated_remedies": indicated,
        }))
        facts.append(Fact("conversation", {"attempt": self.store.user_turns(turn.conversation_id),
                                           "channel": turn.channel}))
        return facts

    # -- actions and reply --------------------------------------------------------------------------

    def _act(self, turn: _Turn, run: Run, dry_run: bool) -> Answer:
        verbs = {intent.verb for intent in run.intents}
        errors = list(run.errors)
        match, playbook = turn.match, turn.playbook
        candidates = tuple({"playbook": c.playbook, "category": c.category, "score": c.score}
                           for c in match.candidates)
        common = {
            "conversation_id": turn.conversation_id,
            "candidates": candidates,
            "rules_fired": tuple(f.rule for f in run.firings),
            "band": match.band.value,
            "confidence": match.confidence,
        }
        seed = turn.conversation_id
        escalations = [i for i in run.intents if i.verb == "escalate"]
        if escalations:
            intent = escalations[0]
            category = str(intent.args.get("category") or match.best.category)
            if category in BUSINESS:
                summary = self._summary(intent, turn)
                guidance = playbook.replies.get("guidance", ()) if playbook else ()
                reply = self.voice.say("escalate", seed, guidance, title=playbook.title if playbook else category)
                return Answer(decision="escalate", category=category, playbook=match.best.playbook,
                              escalation={"category": category, "summary": summary},
                              actions=(ActionResult("escalate", category, ESCALATION_STATUS, summary),),
                              reply=reply, errors=tuple(errors), **common)
            errors.append(f"rule {intent.rule} escalated {category!r}, which is not a business category; ignored")
        if "clarify" in verbs:
            return Answer(decision="clarify", category=match.best.category, playbook=match.best.playbook,
                          escalation=None, actions=(), reply=self._clarify(turn), errors=tuple(errors), **common)
        if "decline" in verbs:
            oos_playbook = match.best.playbook if match.best.category == OUT_OF_SCOPE else None
            return Answer(decision="decline", category=OUT_OF_SCOPE, playbook=oos_playbook, escalation=None,
                          actions=(), reply=self.voice.say("decline", seed), errors=tuple(errors), **common)
        remedies = [i for i in run.intents if i.verb == "remediate"]
        if remedies and playbook is not None:
            turn.outcomes = [self.remediator.run(self._request(i, playbook), dry_run) for i in remedies]
            actions = [ActionResult(o.request.action, o.request.target, o.status, o.detail) for o in turn.outcomes]
            if any(o.status == "failed" for o in turn.outcomes):
                # The reply tells the user engineers have it, so that must be true: the hand-off is recorded.
                actions.append(ActionResult("handoff", ENGINEERING, ESCALATION_STATUS, playbook.title))
            return Answer(decision="resolve", category=playbook.category, playbook=playbook.id, escalation=None,
                          actions=tuple(actions), reply=self._resolution_reply(turn), errors=tuple(errors),
                          **common)
        # No rule decided anything: ask rather than guess.
        return Answer(decision="clarify", category=match.best.category, playbook=None, escalation=None, actions=(),
                      reply=self.voice.say("unsure", seed), errors=tuple(errors), **common)

    def _request(self, intent: Intent, playbook: Playbook) -> RemedyRequest:
        fact = intent.args.get("remedy")
        if fact is not None:
            remedy = playbook.remedies[int(fact["rank"]) - 1]
            verify = (remedy.verify.service, remedy.verify.metric) if remedy.verify else None
            return RemedyRequest(remedy.action, remedy.target, remedy.explain, remedy.params, verify, intent.rule)
        action, target = str(intent.args["action"]), str(intent.args["target"])
        return RemedyRequest(action, target, f"ran {action} on {target}", dict(intent.args.get("params") or {}),
                             None, intent.rule)

    def _summary(self, intent: Intent, turn: _Turn) -> str:
        if intent.args.get("summary"):
            return str(intent.args["summary"])
        playbook = turn.playbook
        if playbook and playbook.escalation:
            return playbook.escalation.summary.format_map(
                {"message": turn.text, "title": playbook.title, "product": self.voice.product})
        return f"{turn.match.best.category}: {turn.text}"

    def _clarify(self, turn: _Turn) -> str:
        seen: list[str] = []
        for candidate in turn.match.candidates:
            if candidate.category == OUT_OF_SCOPE or candidate.playbook in seen:
                continue
            if candidate.score < self.knowledge.calibration.t_low and seen:
                break
            seen.append(candidate.playbook)
            if len(seen) == 3:
                break
        titles = [self.knowledge.playbooks[p].title.rstrip(".").lower() for p in seen]
        options = titles[0] if len(titles) == 1 else ", ".join(titles[:-1]) + " or " + titles[-1]
        return self.voice.say("clarify", turn.conversation_id, options=options)

    def _resolution_reply(self, turn: _Turn) -> str:
        playbook, outcomes, seed = turn.playbook, turn.outcomes, turn.conversation_id
        assert playbook is not None
        done = _join([o.request.explain for o in outcomes])
        statuses = {o.status for o in outcomes}
        if statuses == {"dry_run"}:
            return self.voice.say("dry_run", seed, done=done, title=playbook.title)
        if statuses == {"skipped"}:
            return self.voice.say("recently_done", seed, done=done, title=playbook.title)
        if "failed" in statuses:
            return self.voice.say("unresolved", seed, playbook.replies.get("unresolved", ()), done=done,
                                  title=playbook.title)
        done = _join([o.request.explain for o in outcomes if o.status == "succeeded"]) or done
        return self.voice.say("resolved", seed, playbook.replies.get("resolved", ()), done=done, title=playbook.title)

    # -- recording ----------------------------------------------------------------------------------

    def _record(self, turn: _Turn, run: Run, answer: Answer, message_id: str, dry_run: bool, ms: float) -> None:
        facts = [(f.type, "input", dict(f.fields)) for f in turn.facts]
        facts += [(f.type, "rule", dict(f.fields)) for f in run.asserted]
        rows = [ActionRow(seq, o.request.action, o.request.target, dict(o.request.params), o.request.rule,
                          o.status, o.detail, o.started_at, o.finished_at) for seq, o in enumerate(turn.outcomes, 1)]
        escalation = answer.escalation
        handoff = None
        if any(a.name == "handoff" for a in answer.actions):
            diagnostics = {
                "message": turn.text,
                "playbook": answer.playbook,
                "actions": [{"name": o.request.action, "target": o.request.target, "status": o.status,
                             "detail": o.detail} for o in turn.outcomes],
                "unhealthy": [f.fields for f in turn.facts if f.type == "metric" and f.fields["status"] != "ok"],
            }
            handoff = (ENGINEERING, f"automated remedies did not fix: {answer.playbook}", diagnostics)
        self.store.record_decision(
            DecisionRecord(
                id=self.new_id(), message_id=message_id, conversation_id=turn.conversation_id,
                user_id=turn.user_id, decision=answer.decision, category=answer.category,
                playbook=answer.playbook, band=answer.band, confidence=answer.confidence,
                ruleset_version=run.ruleset_version, dry_run=dry_run, reply=answer.reply, latency_ms=ms,
                created_at=self.clock(),
                candidates=[(c.playbook, c.category, c.score) for c in turn.match.candidates],
                facts=facts, rules_fired=[(f.rule, dict(f.bindings)) for f in run.firings], actions=rows,
                escalation=(escalation["category"], escalation["summary"]) if escalation else None,
                handoff=handoff,
                errors=answer.errors,
            ),
            self.new_id,
        )


def _join(parts: list[str]) -> str:
    parts = [p for p in dict.fromkeys(parts) if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
