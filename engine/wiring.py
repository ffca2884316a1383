"""Builds a working assistant from settings: the one place that knows how the parts fit together."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.errors import ConfigurationError, TelemetryError
from core.settings import Settings
from engine.access.identity import IdentityBook
from engine.access.secret import server_secret
from engine.access.sessions import SessionBook
from engine.access.tokens import TokenBook
from engine.access.users import UserBook
from engine.actions.actuator import Actuator
from engine.actions.adapters import AdapterRouter, build_router
from engine.actions.catalogue import ACTIONS, action_targets
from engine.actions.safety import SafetyPolicy
from engine.chat.assistant import Assistant
from engine.chat.dialogue import Dialogue
from engine.chat.lexicon import load_lexicon
from engine.chat.understanding import ReplyReader, load_reply_examples
from engine.chat.voice import Voice, load_voice
from engine.decision.pack import load_pack, load_rulebase, rule_paths
from engine.decision.ruleengine import RuleEngine
from engine.decision.rulesource import RuleSource
from engine.desk.desk import Desk
from engine.desk.handoffs import HandoffDesk
from engine.desk.policy import DecisionPolicy, load_decision_policy
from engine.healing.detection import DetectionConfig, Detector
from engine.healing.healer import Event, Healer
from engine.healing.monitor import Monitor
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.telemetry import ScrapeSource, SimulationSource, Snapshot, TelemetrySource, checked
from engine.infra.topology import Topology, load_topology
from engine.learning.curation import Curation, RuleReview
from engine.learning.ledger import LearningLedger, Policy, rule_parser, rule_validator
from engine.learning.loop import LearningLoop
from engine.notify.links import NoticeLinks
from engine.notify.mail import Letterhead
from engine.notify.presence import Presence
from engine.notify.sender import Sender, SendPolicy
from engine.notify.smtp import SmtpConfig, SmtpTransport
from engine.store import (
    Conversations,
    Decisions,
    DuckDBStore,
    Escalations,
    Handoffs,
    HealingLedger,
    Notifications,
    Privacy,
    StaffSessions,
    StaffUsers,
    Tokens,
)
from engine.store.analyst import AnalystQueries
from knowledge.background import load_background
from knowledge.base import BuildReport, KnowledgeBase, Scoring, open_knowledge
from knowledge.embedder import Embedder
from knowledge.finetune import Recipe, tuned_model
from knowledge.language import language_of
from knowledge.playbooks import Playbook

# The chat's telemetry facts come from the monitor's stored readings while they are at most this many of its
# intervals old: one missed read is tolerated, three mean the source is down (the monitor says why).
STALE_READINGS = 3


def load_policy(settings: Settings, topology: Topology, playbooks: Mapping[str, Playbook]) -> DecisionPolicy:
    """The escalation desk's decision policy file, checked against the playbooks and the services' metrics."""
    services = {name: tuple(spec.limits) for name, spec in topology.services.items()}
    return load_decision_policy(settings.decision_policy_file, playbooks, services)


def open_index(settings: Settings, playbooks: dict[str, Playbook], force: bool = False,
               progress: bool = False) -> tuple[KnowledgeBase, BuildReport]:
    embedder = Embedder(settings.model_path, settings.cache_dir, settings.embed_batch_size)
    if settings.fine_tune_epochs:
        model_path, _ = tuned_model(playbooks, embedder.model_path, settings.cache_dir / "models",
                                    Recipe(epochs=settings.fine_tune_epochs), progress=progress)
        embedder = embedder.with_model(model_path)
    return open_knowledge(playbooks, embedder, settings.index_dir, settings.answer_precision, force, progress,
                          Scoring(settings.scoring), settings.refusal_recall, load_background(settings.background_dir),
                          settings.act_precision)


@dataclass
class Healing:
    """The self-healing parts: telemetry source, adapters, ledger, the actuator every remediation goes through,
    the healer and the (not yet started) monitor."""

    source: TelemetrySource
    router: AdapterRouter
    ledger: HealingLedger
    healer: Healer
    monitor: Monitor
    actuator: Actuator
    telemetry: _Telemetry

    def close(self) -> None:
        self.monitor.stop()
        self.router.close()

    def current(self) -> Snapshot:
        """The telemetry now, for /metrics: while the monitor runs, its last reading if it is recent (a scrape of
        /metrics never waits on the source, nor holds a server thread while it hangs); else a read of the source.
        TelemetryError when there is none."""
        if not self.monitor.running:
            return self.source.read()
        reading = self.monitor.last_snapshot
        stale_after_s = STALE_READINGS * self.monitor.interval_s
        if reading is None or self.monitor.clock() - reading.at > stale_after_s or self.monitor.last_error:
            why = self.monitor.last_error or f"no reading in the last {stale_after_s:g} s"
            raise TelemetryError(f"{self.source.name}: {why}", source=self.source.name)
        return reading


def open_healing(settings: Settings, on_event: Callable[[Event], None] | None = None,
                 clock: Callable[[], float] = time.time) -> tuple[Healing, DuckDBStore]:
    """The monitor alone (`firstline heal`): no model, no web server; the caller closes both."""
    topology = load_topology(settings.infrastructure_file, {name: spec.needs for name, spec in ACTIONS.items()})
    rules = RuleEngine(load_rulebase(settings, topology))
    infrastructure = SimulatedInfrastructure(topology, settings.simulation_seed, clock)
    for fault in settings.simulation_faults:
        infrastructure.inject(fault)
    router = build_router(settings, infrastructure, topology)
    store = DuckDBStore(settings.database_path, clock)
    try:
        return build_healing(settings, topology, infrastructure, store, rules, clock, router, on_event), store
    except BaseException:
        store.close()
        raise


@dataclass
class Parts:
    """What `build` made, for callers that need more than the assistant (the web app, tests)."""

    assistant: Assistant
    store: DuckDBStore
    infrastructure: SimulatedInfrastructure
    build_report: BuildReport
    dialogue: Dialogue
    tokens: TokenBook
    curation: Curation
    sessions: SessionBook
    users: UserBook  # staff who sign in with a password (the desk's deciders)
    analyst: AnalystQueries  # the analysts' read-only SQL on the same connection (`firstline sql`)
    healing: Healing | None = None
    learning: LearningLoop | None = None
    desk: Desk | None = None
    outreach: Outreach | None = None  # reaching users when a person answered: hand-offs, the outbox, presence

    def close(self) -> None:
        if self.healing is not None:
            self.healing.close()
        self.dialogue.close()
        self.store.close()


@dataclass
class Outreach:
    """Reaching users when a person answered: engineering's hand-offs, the outbox's sender, where users were last
    seen on the chat, the identities (with e-mail addresses) host apps vouch for, and the signed links back."""

    handoffs: HandoffDesk
    sender: Sender
    presence: Presence
    identities: IdentityBook
    links: NoticeLinks


def build_outreach(settings: Settings, store: DuckDBStore, voice: Voice, conversations: Conversations,
                   clock: Callable[[], float] = time.time,
                   new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> Outreach:
    """The parts that reach users later, on `store`; the mail server from the settings (none: e-mail is off).
    ConfigurationError when e-mail is on but cannot work as configured."""
    notifications = Notifications(store)
    smtp = SmtpConfig.from_settings(settings)
    transport = SmtpTransport(smtp) if smtp is not None else None
    # Signed with the key the web app signs sessions with, so the server opens what `firstline notify` sent.
    links = NoticeLinks(server_secret(settings.secret_key, settings.data_dir), settings.notify_link_ttl_s, clock)
    letterhead = Letterhead(smtp.sender, voice.product, smtp.public_url, links) if smtp is not None else None
    sender = Sender(notifications, transport, letterhead, SendPolicy.from_settings(settings), clock)
    return Outreach(HandoffDesk(Handoffs(store), conversations, voice, clock, new_id), sender,
                    Presence(notifications, clock), IdentityBook(notifications, clock), links)


def open_outreach(settings: Settings, clock: Callable[[], float] = time.time) -> tuple[Outreach, DuckDBStore]:
    """Hand-offs and the outbox alone (`firstline handoffs`, `firstline notify` with no server running): no model;
    the caller closes the store."""
    SmtpConfig.from_settings(settings)  # a mistake in the mail settings stops here, before the database opens
    topology = load_topology(settings.infrastructure_file, {name: spec.needs for name, spec in ACTIONS.items()})
    voice = load_voice(settings.replies_file, topology.product)
    store = DuckDBStore(settings.database_path, clock)
    try:
        return build_outreach(settings, store, voice, Conversations(store), clock), store
    except BaseException:
        store.close()
        raise


class _Telemetry:
    """What the chat's facts and the actuator's at-once verification read: the configured telemetry.

    The chat reads what the monitor last read and stored while the monitor runs (a turn never waits on a slow
    or hanging exporter, and a scraped source gets trends from its stored history too); the actuator's
    verification, and a process without a running monitor (`firstline ask`), read the source itself."""

    def __init__(self, source: TelemetrySource, simulated: SimulatedInfrastructure, clock: Callable[[], float],
                 ledger: HealingLedger, monitor: Callable[[], Monitor], stale_after_s: float) -> None:
        self.source = source
        self.simulated = simulated
        self.clock = clock
        self.ledger = ledger
        self.monitor = monitor  # late-bound: the monitor is built after the actuator that reads this
        self.stale_after_s = stale_after_s  # older than this, the monitor's last reading says nothing about now

    def recent(self, window_s: float, step_s: float) -> list[tuple[float, dict[str, dict[str, float]]]]:
        """Samples for the rules' trends, oldest first, never empty: the simulation's history; the monitor's
        stored readings of a scraped source; or one reading of it when no monitor runs."""
        now = self.clock()
        if isinstance(self.source, SimulationSource):
            # The same checks as every reading (a simulated leak past 100% is no sample for a trend either).
            topology = self.simulated.topology
            return [(at, {service: dict(values) for service, values in
                          checked(Snapshot(at, sample), topology).metrics.items()})
                    for at, sample in self.simulated.recent(window_s, step_s)]
        if not self.monitor().running:
            return [(now, self.observe() or {})]
        stored = self.ledger.snapshots(self.source.name, now - window_s)
        if not stored or now - stored[-1][0] > self.stale_after_s:
            # The monitor could not read the source lately (it logs why): no telemetry rather than stale values.
            return [(now, {})]
        return stored

    def observe(self) -> dict[str, dict[str, float]] | None:
        """A reading of the source now, for a check right after an action; None when it cannot be read (the
        caller goes on without it rather than failing a user's turn). While the monitor runs and has had no
        reading lately, the source is down: None at once, rather than a user's turn waiting out its timeout. A
        source that fails here first (it began hanging between two ticks) costs this one turn its timeout, and
        wakes the monitor, whose failed read spares the turns after it."""
        monitor = self.monitor()
        if monitor.running and not isinstance(self.source, SimulationSource):
            if monitor.last_error is not None:
                return None  # its last read failed (and was logged): this one would wait on the same source
            if not self.ledger.snapshots(self.source.name, self.clock() - self.stale_after_s, limit=1):
                return None
        try:
            return {service: dict(values) for service, values in self.source.read().metrics.items()}
        except TelemetryError as error:
            logging.getLogger("firstline.telemetry").warning("telemetry for a check after an action: %s", error)
            if monitor.running:
                monitor.wake()  # it reads again now and records the failure: the next turns do not wait on it
            return None


def telemetry_source(settings: Settings, topology: Topology, infrastructure: SimulatedInfrastructure,
                     clock: Callable[[], float] = time.time) -> TelemetrySource:
    if settings.telemetry_source == "scrape":
        if not settings.scrape_url:
            raise ConfigurationError("telemetry_source=scrape needs FIRSTLINE_SCRAPE_URL (a /metrics URL)",
                                     key="scrape_url")
        return ScrapeSource(settings.scrape_url, topology, settings.scrape_timeout_s, clock)
    return SimulationSource(infrastructure)


def build_healing(settings: Settings, topology: Topology, infrastructure: SimulatedInfrastructure,
                  store: DuckDBStore, rules: RuleEngine, clock: Callable[[], float] = time.time,
                  router: AdapterRouter | None = None, on_event: Callable[[Event], None] | None = None,
                  new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> Healing:
    """Source, adapters, ledger, healer and monitor, sharing the chat's rule engine and event store."""
    router = router or build_router(settings, infrastructure, topology)
    source = telemetry_source(settings, topology, infrastructure, clock)
    ledger = HealingLedger(store, new_id)
    policy = SafetyPolicy.from_settings(settings)
    # The monitor is built last (it needs the healer, which needs the actuator, which needs the telemetry).
    telemetry = _Telemetry(source, infrastructure, clock, ledger, lambda: monitor,
                           STALE_READINGS * settings.monitor_interval_s)
    actuator = Actuator(router, ledger, topology, policy, telemetry.observe, clock, new_id, on_event)
    healer = Healer(topology, rules, actuator, ledger, policy, clock, on_event)
    detector = Detector(topology, DetectionConfig.from_settings(settings))
    monitor = Monitor(source, detector, healer, ledger, settings.monitor_interval_s, clock,
                      alert_wait_s=settings.alert_wait_s)
    return Healing(source, router, ledger, healer, monitor, actuator, telemetry)


def build(
    settings: Settings,
    progress: bool = False,
    clock: Callable[[], float] = time.time,
    knowledge: KnowledgeBase | None = None,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> Parts:
    """Load and check everything (data files first, so errors come before the slow model load), then wire.

    A ready `knowledge` base may be passed in (tests share one); otherwise it is loaded or built. `new_id` makes
    every id (conversations, decisions, actions): tests pass a counter, so what is seeded by a conversation (the
    order of remedies tried, the words of a reply) is the same on every run.
    """
    topology, playbooks = load_pack(settings)
    rulebase = load_rulebase(settings, topology, playbooks)
    decision_policy = load_policy(settings, topology, playbooks)
    SmtpConfig.from_settings(settings)  # a mistake in the mail settings stops start-up before the model loads
    voice = load_voice(settings.replies_file, topology.product)
    load_reply_examples(settings.reply_examples_file)  # checked at start, as `firstline check` does
    reply_words = load_lexicon(settings.reply_words_file)
    infrastructure = SimulatedInfrastructure(topology, settings.simulation_seed, clock)
    for fault in settings.simulation_faults:
        infrastructure.inject(fault)
    router = build_router(settings, infrastructure, topology)  # an unknown adapter stops start-up here
    store = DuckDBStore(settings.database_path, clock)  # before the model: a locked file should fail fast
    try:
        return _wire(settings, progress, clock, knowledge, new_id, topology, playbooks, rulebase, decision_policy,
                     voice, reply_words, infrastructure, router, store)
    except BaseException:  # a stop (Ctrl+C, SIGTERM) during the model's load too: nothing is left open
        store.close()
        router.close()
        raise


def _wire(settings: Settings, progress: bool, clock: Callable[[], float], knowledge: KnowledgeBase | None,
          new_id: Callable[[], str], topology: Topology, playbooks, rulebase, decision_policy: DecisionPolicy,
          voice: Voice, reply_words, infrastructure: SimulatedInfrastructure, router: AdapterRouter,
          store: DuckDBStore) -> Parts:
    """`build`'s second half, on the open store: the model, the index and every part that uses them."""
    if knowledge is None:
        knowledge, report = open_index(settings, playbooks, progress=progress)
    else:
        report = BuildReport(False, len(knowledge.index), len(knowledge.playbooks), knowledge.index.kind, 0.0,
                             knowledge.calibration)
    language_of("warm up")  # load the language identifier now, not during a user's first turn
    known = (action_targets(topology), frozenset(playbooks))
    ledger = LearningLedger(store, Policy.from_settings(settings), clock, validate=rule_validator(*known))
    engine = RuleEngine(rulebase)
    rule_source = RuleSource(rule_paths(settings), lambda: load_rulebase(settings, topology, playbooks), engine,
                             settings.rules_reload_s, clock)
    healing = build_healing(settings, topology, infrastructure, store, engine, clock, router, new_id=new_id)
    assistant = Assistant(
        knowledge=knowledge,
        rules=engine,
        actuator=healing.actuator,
        infrastructure=healing.telemetry,
        topology=topology,
        store=Decisions(store, settings.deadlines_s),
        voice=voice,
        max_message_chars=settings.max_message_chars,
        dry_run=settings.dry_run,
        clock=clock,
        rule_source=rule_source,
        clarify_gap=settings.clarify_gap,
        learning=ledger,
        new_id=new_id,
        deadlines_s=settings.deadlines_s,
    )
    conversations = Conversations(store)
    learning = LearningLoop(knowledge, conversations, ledger, settings.learn_from_confirmations,
                            settings.learned_rules_dir / "active.yaml", clock, new_id)
    dialogue = Dialogue(assistant, ReplyReader(reply_words, knowledge.embedder), learning,
                        conversations=conversations, escalations=Escalations(store), privacy=Privacy(store),
                        clock=clock, new_id=new_id)
    curation = Curation(RuleReview(ledger, rule_parser(*known)), lambda: knowledge.playbooks,
                        lambda: knowledge.examples.values(), learning.teach, learning.publish,
                        settings.data_dir / "drafts", assistant.trace, assistant.why_not)
    sessions = SessionBook(StaffSessions(store), settings.staff_idle_s, settings.staff_session_max_s, clock)
    desk = build_desk(settings, decision_policy, topology, store, healing.ledger, assistant, conversations, clock,
                      new_id)
    outreach = build_outreach(settings, store, voice, conversations, clock, new_id)
    return Parts(assistant, store, infrastructure, report, dialogue, TokenBook(Tokens(store), clock), curation,
                 sessions, UserBook(StaffUsers(store), clock),
                 AnalystQueries(store, clock, settings.analyst_time_limit_s, settings.analyst_row_cap,
                                settings.analyst_max_result_mb, settings.analyst_concurrency), healing,
                 learning, desk=desk, outreach=outreach)


def build_desk(settings: Settings, policy: DecisionPolicy, topology: Topology, store: DuckDBStore,
               ledger: HealingLedger, assistant: Assistant, conversations: Conversations,
               clock: Callable[[], float] = time.time, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> Desk:
    """The escalation desk over the chat's store, telemetry and voice."""
    playbooks = assistant.knowledge.playbooks

    def must_include(playbook_id: str) -> tuple[str, ...]:
        found = playbooks.get(playbook_id)
        return found.escalation.must_include if found and found.escalation else ()

    return Desk(Escalations(store), conversations, assistant.store, ledger.series, topology, policy,
                assistant.knowledge.embedder, assistant.voice, assistant.title, settings.deadlines_s,
                must_include=must_include, clock=clock, new_id=new_id)
