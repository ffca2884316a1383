"""The pipeline for one message: validate -> match -> facts -> rules -> actions -> reply, every step recorded."""

from __future__ import annotations

import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.errors import InputError, NotFoundError
from core.taxonomy import BUSINESS, OUT_OF_SCOPE, Decision, Kind
from engine.actions.actuator import UNVERIFIED, ActionOutcome, ActionRequest, Actuator, conversation_requester
from engine.actions.catalogue import ACTIONS
from engine.chat.voice import Voice, either, within
from engine.decision.explain import decision_trace, explain_rule
from engine.decision.facts import Asking, FactBuilder, Infrastructure, outcome_fact
from engine.decision.ruleengine import Fact, Intent, RuleEngine, Run, Session
from engine.decision.rulesource import RuleSource
from engine.infra.topology import Topology
from engine.learning.ledger import LearningLedger
from engine.store.decisions import ActionRow, DecisionRecord, EscalationRequest, EventStore, HandOff
from knowledge.base import Band, KnowledgeBase, Match
from knowledge.playbooks import Playbook, Remedy
from rules.model import ENGINEERING

ESCALATION_STATUS = "created"


MAX_ROUNDS = 3  # rule rounds after remediations report back: a follow-up fix, then a hand-off at most


@dataclass(frozen=True)
class ActionResult:
    name: str
    target: str
    status: str
    detail: str = ""
    rule: str | None = None


@dataclass(frozen=True)
class Answer:
    """The decision for one message, in the shape of the published `ask --json` contract (see `contract`)."""

    conversation_id: str
    decision: Decision
    category: str
    playbook: str | None
    confidence: float
    escalation: EscalationRequest | None
    candidates: tuple[Mapping[str, Any], ...]
    rules_fired: tuple[str, ...]
    actions: tuple[ActionResult, ...]
    reply: str
    band: str
    errors: tuple[str, ...] = ()
    decision_id: str = ""
    trace: Mapping[str, Any] | None = None
    offered: tuple[str, ...] = ()  # playbooks a clarify reply offered, for the dialogue to read the answer
    escalation_id: str = ""  # the id the escalation is stored under (not in the published contract)

    def contract(self, explain: bool = False) -> dict[str, Any]:
        """The published `ask --json` object; with `explain`, also the decision's `trace`."""
        body = {
            "decision": self.decision,
            "category": self.category,
            "playbook": self.playbook,
            "confidence": round(self.confidence, 4),
            "escalation": asdict(self.escalation) if self.escalation else None,
            "candidates": [dict(c) for c in self.candidates],
            "rules_fired": list(self.rules_fired),
            "actions": [{"name": a.name, "target": a.target, "status": a.status} for a in self.actions],
            "reply": self.reply,
        }
        if explain:
            body["trace"] = dict(self.trace or {})
        return body


def clean_message(text: str, max_chars: int) -> str:
    """The message as we will store it, or an InputError a person can act on."""
    if not isinstance(text, str):
        raise InputError("a message must be text", code="not_text")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise InputError("the message is not valid UTF-8 text; send it as UTF-8", code="not_utf8")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()
    # Zero-width and other format characters alone are as empty as spaces (they are kept inside real text).
    if not "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip():
        raise InputError("the message is empty; describe what is going wrong", code="empty_message")
    if len(text) > max_chars:
        raise InputError(
            f"the message is {len(text):,} characters long; the limit is {max_chars:,}. "
            "Shorten it, or send the key part first",
            code="message_too_long",
        )
    return text


@dataclass(frozen=True)
class Message:
    """A user's message once accepted: validated text, in a conversation the user owns, already stored.
    `verified`: the host app vouched that the sender is `user_id` (a signed identity), so remedies that change
    the user's account may run for them; an anonymous or unproven sender gets those explained instead."""

    id: str
    conversation_id: str
    user_id: str
    channel: str
    text: str
    verified: bool = False


@dataclass
class _Turn:
    """Working state of one decision while it is being made."""

    decision_id: str
    conversation_id: str
    user_id: str
    channel: str
    text: str
    match: Match
    playbook: Playbook | None
    facts: list[Fact] = field(default_factory=list)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    handoff: Intent | None = None
    progress: Callable[[str], None] | None = None
    also_escalated: list[EscalationRequest] = field(default_factory=list)  # other requests a person decides
    verified: bool = False  # the host app vouched for user_id (see Message)

    @property
    def technical(self) -> bool:
        return self.playbook is not None and self.playbook.kind is Kind.TECHNICAL


class Assistant:
    """Answers messages. Stateless between calls: everything it knows of a conversation is in the store."""

    def __init__(
        self,
        knowledge: KnowledgeBase,
        rules: RuleEngine,
        actuator: Actuator,
        infrastructure: Infrastructure,
        topology: Topology,
        store: EventStore,
        voice: Voice,
        max_message_chars: int,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        rule_source: RuleSource | None = None,
        clarify_gap: float = 0.05,
        learning: LearningLedger | None = None,
        deadlines_s: Mapping[str, float] | None = None,
    ) -> None:
        """`deadlines_s`: each business category's time to answer, in seconds (Settings.deadlines_s), which the
        reply that passes a request on tells the user in plain words."""
        self.knowledge = knowledge
        self.rules = rules
        self.actuator = actuator
        self.topology = topology
        self.store = store
        self.voice = voice
        self.max_message_chars = max_message_chars
        self.dry_run = dry_run
        self.clock = clock
        self.new_id = new_id
        self.rule_source = rule_source
        self.clarify_gap = clarify_gap
        self.deadlines_s = dict(deadlines_s or {})
        self.facts = FactBuilder(infrastructure, topology, store, clock,
                                 remedy_order=learning.order if learning is not None else None)

    def answer(
        self,
        text: str,
        user_id: str,
        conversation_id: str | None = None,
        channel: str = "cli",
        dry_run: bool | None = None,
        *,
        verified: bool = False,
    ) -> Answer:
        """Accept one message (see `accept`) and decide on it at once, committing the decision (`firstline ask`,
        the single-shot API). Raises InputError for a message that cannot be taken, NotFoundError for a
        conversation that is not the user's."""
        return self.respond(self.accept(text, user_id, conversation_id, channel, verified=verified), dry_run=dry_run)

    def accept(self, text: str, user_id: str, conversation_id: str | None = None, channel: str = "cli", *,
               verified: bool = False) -> Message:
        """Validate a message, check the conversation is the user's (a new one when None) and store the message
        before any work, so a crash later loses nothing accepted. `verified`: the host app vouched that the
        sender is `user_id` (see `Message`). Raises InputError (unusable text) or NotFoundError (someone else's
        conversation, or none)."""
        text = clean_message(text, self.max_message_chars)
        if conversation_id is None:
            conversation_id = self.new_id()
            self.store.start_conversation(conversation_id, user_id, channel)
        elif self.store.conversation_owner(conversation_id) != user_id:
            raise NotFoundError("no such conversation")
        message = Message(self.new_id(), conversation_id, user_id, channel, text, verified=verified)
        self.store.add_message(message.id, conversation_id, user_id, "user", text)
        return message

    def respond(
        self,
        message: Message,
        dry_run: bool | None = None,
        match: Match | None = None,
        progress: Callable[[str], None] | None = None,
        pending: list[tuple[str, Sequence[Any]]] | None = None,
    ) -> Answer:
        """Decide on an accepted message. The dialogue passes the `match` the user confirmed, a `progress`
        callback told before each remedy runs, and `pending`: a list the decision's statements are added to,
        for the dialogue to commit with the conversation's new state in one transaction (without it the
        decision is committed here, at once)."""
        started = time.perf_counter()
        dry_run = self.dry_run if dry_run is None else dry_run
        if self.rule_source is not None:
            self.rule_source.check()  # rule files edited while serving take effect from this decision on

        match = match or self.knowledge.match(message.text)
        best = self.knowledge.playbooks.get(match.best.playbook)
        turn = _Turn(self.new_id(), message.conversation_id, message.user_id, message.channel, message.text, match,
                     best, progress=progress, verified=message.verified)
        turn.facts = self.facts.build(Asking(message.user_id, message.conversation_id, message.channel,
                                             message.text), match, best)
        with self.rules.session() as session:
            session.add(turn.facts)
            answer = self._decide(turn, session, dry_run)
        # Rules fire again when remediations report back, so what fired is read once the session is done.
        answer = replace(answer, decision_id=turn.decision_id, rules_fired=tuple(f.rule for f in session.run.firings),
                         trace={"decision_id": turn.decision_id, **session.run.trace()},
                         escalation_id=self.new_id() if answer.escalation else "")
        statements = self._record(turn, session.run, answer, message.id, dry_run,
                                  (time.perf_counter() - started) * 1000)
        if pending is None:
            self.store.transaction(statements)
        else:
            pending.extend(statements)
        return answer

    def history(self, conversation_id: str, user_id: str) -> list[dict[str, Any]]:
        """The messages of one of `user_id`'s conversations; someone else's conversation does not exist."""
        if self.store.conversation_owner(conversation_id) != user_id:
            raise NotFoundError("no such conversation")
        rows = self.store.messages(conversation_id, user_id)
        return [{"role": role, "text": text, "at": at} for role, text, at in rows]

    def trace(self, decision_id: str, user_id: str | None = None, why_not: Sequence[str] = ()) -> dict[str, Any]:
        """A stored decision's trace (see `engine.decision.explain`); the web passes `user_id` to keep users apart."""
        return decision_trace(self.store, self.rules.rulebase, decision_id, user_id, why_not)

    def why_not(self, trace: Mapping[str, Any], rule_name: str) -> dict[str, Any]:
        """Why `rule_name` did or did not fire on the facts of `trace`."""
        return explain_rule(trace, self.rules.rulebase, rule_name)

    # -- deciding -----------------------------------------------------------------------------------

    def _decide(self, turn: _Turn, session: Session, dry_run: bool) -> Answer:
        answer = self._decide_main(turn, session, dry_run)
        return self._with_asides(turn, session.run, answer)

    def _decide_main(self, turn: _Turn, session: Session, dry_run: bool) -> Answer:
        run = session.run
        errors: list[str] = []
        common = self._common(turn, run)
        business, engineering = self._escalations(run.intents, errors)
        verbs = {intent.verb for intent in run.intents}
        if business is not None:
            return self._escalate(turn, run, business, errors, common)
        if engineering is not None and turn.technical:
            turn.handoff = engineering
            return self._handoff(turn, run, errors, common)
        if "clarify" in verbs and turn.match.band in (Band.NO_PROBLEM, Band.OTHER_LANGUAGE):
            # Nothing stated yet ("hi", "help", "?"), or a language we cannot read: ask, offer no guesses.
            situation = "ask_problem" if turn.match.band is Band.NO_PROBLEM else "english_only"
            return Answer(decision=Decision.CLARIFY, category=turn.match.best.category if situation == "english_only"
                          else OUT_OF_SCOPE, playbook=None, escalation=None,
                          actions=self._failed_rule_actions(run),
                          reply=self._reply(run) or self.voice.say(situation, turn.conversation_id),
                          errors=self._errors(run, errors), **common)
        if "clarify" in verbs:
            intent = next(i for i in run.intents if i.verb == "clarify")
            offered = self.offered(turn.match, intent.args.get("candidates") or ())
            return Answer(decision=Decision.CLARIFY, category=turn.match.best.category,
                          playbook=turn.match.best.playbook, escalation=None, actions=self._failed_rule_actions(run),
                          reply=self._reply(run) or self._clarify(turn, offered),
                          errors=self._errors(run, errors), offered=tuple(offered), **common)
        if "decline" in verbs:
            oos_playbook = turn.match.best.playbook if turn.match.best.category == OUT_OF_SCOPE else None
            return Answer(decision=Decision.DECLINE, category=OUT_OF_SCOPE, playbook=oos_playbook, escalation=None,
                          actions=self._failed_rule_actions(run),
                          reply=self._reply(run) or self.voice.say("decline", turn.conversation_id),
                          errors=self._errors(run, errors), **common)
        if "remediate" in verbs:
            if turn.technical:
                return self._remediate(turn, session, dry_run, errors, common)
            errors.append("rules asked to remediate a request that is not a technical problem; ignored")
        if turn.match.forbids_action and turn.technical and turn.playbook is not None:
            # The user said not to change anything: say what it looks like, and act only when they say so.
            return Answer(decision=Decision.CLARIFY, category=turn.playbook.category, playbook=turn.playbook.id,
                          escalation=None, actions=self._failed_rule_actions(run),
                          reply=self._reply(run) or self.voice.say("no_action", turn.conversation_id,
                                                                   subject=self.subject(turn.playbook.id)),
                          errors=self._errors(run, errors), offered=(turn.playbook.id,), **common)
        # No rule decided anything: ask rather than guess.
        return Answer(decision=Decision.CLARIFY, category=turn.match.best.category, playbook=None, escalation=None,
                      actions=self._failed_rule_actions(run),
                      reply=self._reply(run) or self.voice.say("unsure", turn.conversation_id),
                      errors=self._errors(run, errors), **common)

    def _with_asides(self, turn: _Turn, run: Run, answer: Answer) -> Answer:
        """The other requests of the message: a business one goes to a person (never dropped, whatever the main
        decision); a technical one is named, to be taken up once the main problem is done."""
        actions, lines = list(answer.actions), []
        escalated = set()
        for intent in (i for i in run.intents if i.verb == "escalate" and i.args.get("playbook")):
            playbook = self.knowledge.playbooks.get(str(intent.args["playbook"]))
            category = str(intent.args.get("category"))
            if playbook is None or category not in BUSINESS or playbook.id in escalated:
                continue
            if answer.decision == "escalate" and answer.playbook == playbook.id:
                continue  # the main request already went to a person
            escalated.add(playbook.id)
            aside = next((a for a in turn.match.asides if a.playbook == playbook.id), None)
            summary = str(intent.args.get("summary") or self._summary_of(playbook, aside.text if aside else turn.text))
            turn.also_escalated.append(EscalationRequest(category, summary, playbook.id, aside.text if aside else ""))
            actions.append(ActionResult("escalate", category, ESCALATION_STATUS, summary, intent.rule))
            lines.append(self.voice.say("aside_escalated", turn.conversation_id, subject=playbook.named,
                                        when=self.when(category)))
        for aside in turn.match.asides:
            handled = (answer.playbook, *answer.offered, *escalated)
            if aside.group == Kind.TECHNICAL.value and aside.playbook not in handled:
                lines.append(self.voice.say("aside_noted", turn.conversation_id,
                                            subject=self.subject(aside.playbook)))
                break  # one at a time: the dialogue takes it up next
        if not lines:
            return answer
        return replace(answer, actions=tuple(actions), reply=" ".join([answer.reply, *lines]))

    def subject(self, playbook_id: str | None) -> str:
        """A playbook's name as it reads inside a sentence, after "about" ("" for none): its `subject` (declared,
        or derived from its title), the voice's `{subject}`. Never the title itself, whose capitals and lists of
        symptoms read as pasted mid-sentence."""
        found = self.knowledge.playbooks.get(playbook_id or "")
        return found.named if found else ""

    title = subject  # the name the desk and older callers use for it

    def when(self, category: str) -> str:
        """When a person answers a request of `category`, in plain words: "within two days"."""
        return within(self.deadlines_s.get(category))

    def _summary_of(self, playbook: Playbook, text: str) -> str:
        """The one line the decider's queue shows: the playbook's short plain label, then the user's own words."""
        words = f"\u201c{' '.join(text.split())}\u201d"
        if playbook.escalation:
            return playbook.escalation.summary.format_map(
                {"message": words, "title": playbook.title, "subject": playbook.named, "product": self.voice.product})
        return f"{_capitalised(playbook.named)}: {words}"

    def _common(self, turn: _Turn, run: Run) -> dict[str, Any]:
        return {
            "conversation_id": turn.conversation_id,
            "candidates": tuple({"playbook": c.playbook, "category": c.category, "score": c.score}
                                for c in turn.match.candidates),
            "rules_fired": (),  # filled in when the session is done
            "band": turn.match.band.value,
            "confidence": turn.match.confidence,
        }

    def _escalations(self, intents: Sequence[Intent], errors: list[str]) -> tuple[Intent | None, Intent | None]:
        """The first escalation to a person (business) and the first hand-off to engineering, if any."""
        business = engineering = None
        for intent in (i for i in intents if i.verb == "escalate"):
            category = str(intent.args.get("category"))
            if intent.args.get("playbook"):
                continue  # another request of the same message (see _with_asides)
            if category in BUSINESS:
                business = business or intent
            elif category == ENGINEERING:
                engineering = engineering or intent
            else:
                errors.append(f"rule {intent.rule} escalated {category!r}, which is not a business category; ignored")
        return business, engineering

    def _escalate(self, turn: _Turn, run: Run, intent: Intent, errors: list[str], common: dict[str, Any]) -> Answer:
        category = str(intent.args["category"])
        playbook = turn.playbook
        summary = self._summary(intent, turn) + self._other_readings(turn)
        guidance = playbook.replies.get("guidance", ()) if playbook else ()
        subject = playbook.named if playbook else category.replace("_", " ")
        reply = self._reply(run) or self._passed_on(turn.conversation_id, guidance, subject, self.when(category))
        return Answer(decision=Decision.ESCALATE, category=category, playbook=turn.match.best.playbook,
                      escalation=EscalationRequest(category, summary),
                      actions=(ActionResult("escalate", category, ESCALATION_STATUS, summary, intent.rule),
                               *self._failed_rule_actions(run)),
                      reply=reply, errors=self._errors(run, errors), **common)

    def _other_readings(self, turn: _Turn) -> str:
        """The group was clear but the playbook less so: the decider sees the close business candidates too."""
        best = turn.match.best
        close = [c for c in turn.match.candidates[1:3]
                 if c.category in BUSINESS and c.score >= best.score - self.clarify_gap]
        if not close:
            return ""
        subjects = either([self.subject(c.playbook) for c in close])
        return f" (it may also be about {subjects})" if subjects else ""

    def _passed_on(self, seed: str, guidance: Sequence[str], subject: str, when: str) -> str:
        """The reply that passes a business request to a person, saying when to expect their answer: the
        playbook's own words (`guidance`) followed by `expect_answer` when they do not say it themselves."""
        reply = self.voice.say("escalate", seed, guidance, subject=subject, when=when)
        if when in reply:
            return reply
        return f"{reply} {self.voice.say('expect_answer', seed, when=when)}"

    def _handoff(self, turn: _Turn, run: Run, errors: list[str], common: dict[str, Any]) -> Answer:
        """Rules handed a technical problem to engineering before trying anything (say, after N failures)."""
        playbook = turn.playbook
        assert playbook is not None and turn.handoff is not None
        summary = str(turn.handoff.args.get("summary") or f"automated remedies did not fix: {playbook.id}")
        actions = (ActionResult("handoff", ENGINEERING, ESCALATION_STATUS, summary, turn.handoff.rule),
                   *self._failed_rule_actions(run))
        reply = self._reply(run) or self.voice.say("handoff", turn.conversation_id, subject=playbook.named)
        return Answer(decision=Decision.RESOLVE, category=playbook.category, playbook=playbook.id, escalation=None,
                      actions=actions, reply=reply, errors=self._errors(run, errors), **common)

    def _remediate(self, turn: _Turn, session: Session, dry_run: bool, errors: list[str],
                   common: dict[str, Any]) -> Answer:
        """Run what the rules asked for, tell the rules how it went, and run what they ask next."""
        playbook = turn.playbook
        assert playbook is not None
        done: set[tuple[str, str]] = set()
        pending = [i for i in session.run.intents if i.verb == "remediate"]
        for _ in range(MAX_ROUNDS):
            todo = []
            for intent in pending:
                key = (str(intent.args["name"]), str(intent.args["target"]))
                if key not in done:
                    done.add(key)
                    todo.append(intent)
            if not todo:
                break
            outcomes = [self._run_remedy(intent, playbook, turn, dry_run) for intent in todo]
            turn.outcomes += outcomes
            follow = session.add([outcome_fact(o.request.action, o.request.target, o.status, o.request.rule or "")
                                  for o in outcomes], origin="outcome")
            pending = [i for i in follow if i.verb == "remediate"]
        run = session.run
        _, turn.handoff = self._escalations(run.intents, [])
        actions = [ActionResult(o.request.action, o.request.target, o.status, o.detail, o.request.rule)
                   for o in turn.outcomes]
        if turn.handoff is not None:
            summary = str(turn.handoff.args.get("summary") or f"automated remedies did not fix: {playbook.id}")
            actions.append(ActionResult("handoff", ENGINEERING, ESCALATION_STATUS, summary, turn.handoff.rule))
        actions += self._failed_rule_actions(run)
        return Answer(decision=Decision.RESOLVE, category=playbook.category, playbook=playbook.id, escalation=None,
                      actions=tuple(actions), reply=self._reply(run) or self._resolution_reply(turn),
                      errors=self._errors(run, errors), **common)

    def _run_remedy(self, intent: Intent, playbook: Playbook, turn: _Turn, dry_run: bool) -> ActionOutcome:
        """One remedy through the actuator's gate, shared with the monitor and alerts. The person asking waits
        for the answer, so it is verified at once; a failure is theirs to hear about, and the rules (not the
        actuator) decide whether the next remedy or an engineer comes next."""
        request = self._request(intent, playbook, turn)
        if turn.progress is not None:
            turn.progress(self.voice.progress(request.action, request.target))
        try:
            return self.actuator.run(request, dry_run)
        except Exception as error:  # noqa: BLE001 - a remedy that raises is a failed action; the decision goes on
            now = self.clock()
            return ActionOutcome(request, None, "failed", f"{type(error).__name__}: {error}", now, now)

    def _request(self, intent: Intent, playbook: Playbook, turn: _Turn) -> ActionRequest:
        """The remediation a rule asked for; the playbook's remedy for the same action and target, if it has one,
        gives the explanation and the check."""
        name, target = str(intent.args["name"]), str(intent.args["target"])
        params = dict(intent.args.get("params") or {})
        remedy = _remedy(playbook, name, target)
        explain = remedy.explain if remedy else self.voice.action(name, target)
        verify = (remedy.verify.service, remedy.verify.metric) if remedy and remedy.verify else None
        spec = ACTIONS.get(name)  # an unknown name fails in the actuator, as an outcome
        return ActionRequest(name, target, conversation_requester(turn.conversation_id), explain=explain,
                             params=params or (dict(remedy.params) if remedy else {}), verify=verify, rule=intent.rule,
                             subject=turn.user_id if spec is not None and spec.per_user else "", settle_now=True,
                             hand_off_on_failure=False, verified=turn.verified)

    def _failed_rule_actions(self, run: Run) -> tuple[ActionResult, ...]:
        """Rule actions that raised (recorded, and the engine went on)."""
        return tuple(ActionResult(f.verb, f.rule, "failed", f.error, f.rule) for f in run.failures)

    def _errors(self, run: Run, errors: list[str]) -> tuple[str, ...]:
        return (*run.errors, *errors)

    def _reply(self, run: Run) -> str | None:
        """The text of the first `reply` a rule asked for, if any: it replaces the voice's reply."""
        return next((str(i.args["template"]) for i in run.intents if i.verb == "reply"), None)

    def _summary(self, intent: Intent, turn: _Turn) -> str:
        if intent.args.get("summary"):
            return str(intent.args["summary"])
        if turn.playbook is not None and turn.playbook.kind is Kind.BUSINESS:
            return self._summary_of(turn.playbook, turn.text)
        category = turn.match.best.category.replace("_", " ")
        return f"{_capitalised(category)}: \u201c{' '.join(turn.text.split())}\u201d"

    def offered(self, match: Match, asked: Sequence[str] = ()) -> list[str]:
        """The playbooks a clarify question offers: those a rule named, else the best candidate and any
        within `clarify_gap` of it (one alone is a yes-or-no confirmation)."""
        seen = [p for p in dict.fromkeys(asked) if p in self.knowledge.playbooks][:3]
        best = match.best.score
        for candidate in match.candidates if not seen else ():
            if candidate.category == OUT_OF_SCOPE or candidate.playbook in seen:
                continue
            if seen and (candidate.score < self.knowledge.calibration.t_low
                         or candidate.score < best - self.clarify_gap):
                break
            seen.append(candidate.playbook)
            if len(seen) == 3:
                break
        return seen

    def _clarify(self, turn: _Turn, seen: Sequence[str]) -> str:
        subjects = [self.subject(p) for p in seen]
        if len(subjects) == 1:
            return self.voice.say("confirm", turn.conversation_id, subject=subjects[0])
        return self.voice.say("clarify", turn.conversation_id, options=either(subjects))

    def _resolution_reply(self, turn: _Turn) -> str:
        """Say what happened, truthfully. A fix on the user's account refused because nobody vouched for who is
        asking is never "done": the reply says so and what they can do themselves, after whatever else ran."""
        playbook, seed = turn.playbook, turn.conversation_id
        assert playbook is not None
        refused = [o for o in turn.outcomes if o.status == UNVERIFIED]
        if not refused:
            return self._outcomes_reply(turn, turn.outcomes)
        ran = [o for o in turn.outcomes if o.status != UNVERIFIED]
        line = self.voice.say("unverified_also" if ran else "unverified", seed,
                              done=_join([o.request.explain for o in refused]), subject=playbook.named,
                              self_service=self._self_service(playbook, refused, seed))
        return f"{self._outcomes_reply(turn, ran)} {line}" if ran else line

    def _self_service(self, playbook: Playbook, refused: Sequence[ActionOutcome], seed: str) -> str:
        """What the user can do themselves instead of the refused remedies: each remedy's own words, else the
        voice's general advice (to open the chat signed in, where the host app can vouch for them)."""
        remedies = [_remedy(playbook, o.request.action, o.request.target) for o in refused]
        texts = [r.self_service.format_map({"product": self.voice.product}) for r in remedies
                 if r is not None and r.self_service]
        if len(texts) < len(remedies):
            texts.append(self.voice.say("sign_in_first", seed))
        return " ".join(dict.fromkeys(texts))

    def _outcomes_reply(self, turn: _Turn, outcomes: Sequence[ActionOutcome]) -> str:
        """What became of `outcomes`: a fix another report started is not "I already took care of this"."""
        playbook, seed = turn.playbook, turn.conversation_id
        assert playbook is not None
        done = _join([o.request.explain for o in outcomes])
        statuses = {o.status for o in outcomes}
        if statuses == {"dry_run"}:
            return self.voice.say("dry_run", seed, done=done, subject=playbook.named)
        if outcomes and all(o.joined for o in outcomes) and statuses <= {"succeeded", "verifying"}:
            if "verifying" in statuses:
                situation = "being_fixed"
            else:  # the same message sent twice at once joins its own fix: no "someone else" there
                situation = "joined" if any(o.by_someone_else for o in outcomes) else "already_on_it"
            return self.voice.say(situation, seed, done=done, subject=playbook.named)
        if statuses == {"skipped"}:
            if all(o.detail.startswith("cooling down") for o in outcomes):
                mine = not any(o.by_someone_else for o in outcomes)
                return self.voice.say("recently_done" if mine else "recently_done_other", seed, done=done,
                                      subject=playbook.named)
            return self.voice.say("held_back", seed, done=done, subject=playbook.named)
        if statuses & {"failed", "timed_out"}:
            # Only say engineers have it when a rule really handed it to them.
            if turn.handoff is not None:
                return self.voice.say("unresolved", seed, playbook.replies.get("unresolved", ()), done=done,
                                      subject=playbook.named)
            return self.voice.say("not_fixed", seed, done=done, subject=playbook.named)
        done = _join([o.request.explain for o in outcomes if o.status == "succeeded"]) or done
        return self.voice.say("resolved", seed, playbook.replies.get("resolved", ()), done=done, subject=playbook.named)

    # -- recording ----------------------------------------------------------------------------------

    def _record(self, turn: _Turn, run: Run, answer: Answer, message_id: str, dry_run: bool,
                ms: float) -> list[tuple[str, Sequence[Any]]]:
        """The statements that store the decision, its facts, actions, escalations, hand-off and reply."""
        facts = [(f.type, f.origin, dict(f.fields)) for f in run.facts.values()]
        rows = [ActionRow(seq, o.request.action, o.request.target, dict(o.request.params), o.request.rule,
                          o.status, o.detail, o.started_at, o.finished_at) for seq, o in enumerate(turn.outcomes, 1)]
        now = self.clock()
        rows += [ActionRow(len(rows) + k, f.verb, f.rule, {}, f.rule, "failed", f.error, now, now)
                 for k, f in enumerate(run.failures, 1)]
        handoff = None
        found = next((a for a in answer.actions if a.name == "handoff"), None)
        if found is not None:
            diagnostics = {
                "message": turn.text,
                "playbook": answer.playbook,
                "rule": found.rule,
                "actions": [{"name": o.request.action, "target": o.request.target, "status": o.status,
                             "detail": o.detail} for o in turn.outcomes],
                "unhealthy": [f.fields for f in turn.facts if f.type == "metric" and f.fields["status"] != "ok"],
                "hypotheses": [f.fields for f in run.asserted if f.type == "hypothesis"],
                "earlier_actions": [f.fields for f in turn.facts if f.type == "action"],
            }
            handoff = HandOff(ENGINEERING, found.detail, diagnostics)
        return self.store.decision_statements(
            DecisionRecord(
                id=turn.decision_id, message_id=message_id, conversation_id=turn.conversation_id,
                user_id=turn.user_id, decision=answer.decision, category=answer.category,
                playbook=answer.playbook, band=answer.band, confidence=answer.confidence,
                ruleset_version=run.ruleset_version, dry_run=dry_run, reply=answer.reply, latency_ms=ms,
                created_at=self.clock(),
                candidates=[(c.playbook, c.category, c.score) for c in turn.match.candidates],
                facts=facts, rules_fired=[(f.rule, dict(f.facts)) for f in run.firings], actions=rows,
                escalation=answer.escalation,
                also_escalated=tuple(turn.also_escalated),
                handoff=handoff,
                errors=answer.errors,
                trace=dict(answer.trace or {}),
                escalation_id=answer.escalation_id,
            ),
            self.new_id,
        )


def _remedy(playbook: Playbook, action: str, target: str) -> Remedy | None:
    """The playbook's remedy for `action` on `target`, if it has one (a learned or built-in rule may ask for
    another)."""
    return next((r for r in playbook.remedies if r.action == action and r.target == target), None)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _join(parts: list[str]) -> str:
    parts = [p for p in dict.fromkeys(parts) if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
