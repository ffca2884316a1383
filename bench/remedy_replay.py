"""Proof that remedy learning works through the real dialogue: stream simulated users with technical problems
through Firstline (its rule engine, DuckDB store, embeddings and the default knowledge pack), once with
learning on and once with it off, and compare how soon each system fixes the problem.

The hidden world. Every conversation is about a technical playbook with at least two remedies whose last
remedy is a safe default (telemetry points at none) and an earlier one aimed at a signal the simulated
infrastructure can show. Before the conversation, the fault behind that signal is injected, so the rules go
for the earlier remedy; but what fixes this user's problem is the last remedy with probability --p-work, and
any other with --p-other (drawn per conversation, the same for both systems). The simulated user confirms or
picks their own playbook when asked, gives up when it is not offered, and after each "is it working now?"
says yes if a remedy that ran in this conversation works in the world, else no. That verdict is all the
product learns from; no product code is changed.

Learning on is the product's default (`learn_from_confirmations`): each verdict counts for the remedy's
posterior, and a fix confirmed after a failed first try votes for a learned rule (two distinct users), which
shadows, goes live once at least five shadow cases agree 80% of the time, and is loaded by the rule engine.
Learning off records nothing (the defaults are still ordered by a Thompson sample, from an empty ledger).
Users come from a pool where a few write often, so the per-user daily cap and the distinct-users rule apply
as they would in service.

Per conversation it measures whether the problem was fixed, at which "is it working now?" (fixed at the first
check is the headline), the remediations run, hand-offs, and whether a learned rule fired (the store's
rules_fired); at the end, the learned rules by status and whether the working remedy leads the posteriors. A
live learned rule runs its fix in the same round as the remedy telemetry points at, not instead of it, so
learning shows in the questions a user answers and the hand-offs, not in the remediations run.

usage: .venv/bin/python bench/remedy_replay.py [--conversations 300] [--playbooks 8] [--users 40] [--skew 0.5]
       [--p-work 0.9] [--p-other 0.1] [--window 50] [--seed 0] [--threads 1] [--out bench/results/remedy_replay]
Writes <out>.json and <out>.png; prints a readable table and the JSON summary (last line).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.learning_replay import plot_on_off, rolling, share
from core.settings import Settings, load_settings
from core.taxonomy import Kind
from engine.actions.catalogue import ACTIONS
from engine.chat.dialogue import ConversationState, Exchange, Stage
from engine.infra.simulation import CLEARS, FAULTS, SimulatedInfrastructure
from engine.learning.ledger import LearningLedger
from engine.wiring import Parts, build, load_pack, open_index
from knowledge.base import KnowledgeBase
from knowledge.playbooks import Playbook, Remedy

ROOT = Path(__file__).resolve().parents[1]
Fix = tuple[str, str]  # (action, target)
TURN_S = 30.0  # simulated seconds between two messages of a user
GAP_S = (300.0, 1500.0)  # simulated seconds between two conversations, drawn uniformly
MAX_TURNS = 8
OPENERS = ("", "hi, ", "hello - ", "help: ", "urgent: ")
CLOSERS = ("", " since this morning", ", please help", " again today", "!!")
YES, NO, NONE_OFFERED = "yes", "no", "none of these"  # the buttons' values
FIXED, BROKEN = "yes, it works now", "no, it's still broken"
# What ends each fault when the world moves on to the next user's incident.
ENDED_BY = {fault: next(a for a, cleared in CLEARS.items() if fault in cleared) for fault in FAULTS}


@dataclass(frozen=True)
class Scenario:
    """One playbook of the hidden world: the fault telemetry shows, the remedies, and the one that works."""

    playbook: str
    fault: str  # name@service; it points the rules at an earlier remedy
    remedies: tuple[Fix, ...]
    working: Fix


@dataclass(frozen=True)
class Visit:
    """One conversation of the stream: who, about what, in which words, and what fixes it this time."""

    user: str
    playbook: str
    text: str
    works: frozenset[Fix]
    gap_s: float  # simulated time since the previous conversation


@dataclass(frozen=True)
class Outcome:
    """How one conversation went, as the user saw it."""

    resolved: bool
    checks: int  # "is it working now?" questions asked
    remedies: int  # remediation actions run
    handed_off: bool
    learned_fired: bool  # a learned rule fired in one of its decisions
    misrouted: bool  # the user's own playbook was never acted on
    turns: int

    @property
    def first_check(self) -> bool:
        return self.resolved and self.checks == 1


@dataclass
class Run:
    """One system's replay: per-conversation outcomes and what its ledger holds at the end."""

    outcomes: list[Outcome]
    ledger: dict[str, object]
    seconds: float


class Clock:
    """Simulated time, moved on by the replay; every reading is a millisecond later than the one before, so
    no two actions share an instant (the dialogue credits the verdict to a conversation's latest action)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the world -------------------------------------------------------------------------------------------


def scenarios(playbooks: Mapping[str, Playbook]) -> dict[str, Scenario]:
    """Every technical playbook whose last remedy is a safe default and an earlier one has a signal the
    simulation can show (and that remedy clears): the world where telemetry points at the wrong fix."""
    found = {}
    for playbook in playbooks.values():
        remedies = playbook.remedies
        if playbook.kind is not Kind.TECHNICAL or len(remedies) < 2 or remedies[-1].indicated_by is not None:
            continue
        fault = next(filter(None, map(_fault_for, remedies[:-1])), None)
        if fault is not None:
            fixes = tuple((r.action, r.target) for r in remedies)
            found[playbook.id] = Scenario(playbook.id, fault, fixes, fixes[-1])
    return found


def _fault_for(remedy: Remedy) -> str | None:
    """The simulated fault that makes the remedy's signal unhealthy and that the remedy clears."""
    signal = remedy.indicated_by
    if signal is None or signal.service != remedy.target:
        return None
    name = next((f for f in sorted(CLEARS.get(remedy.action, ())) if FAULTS[f].key_metric == signal.metric), None)
    return f"{name}@{signal.service}" if name else None


def make_stream(world: Mapping[str, Scenario], playbooks: Mapping[str, Playbook], conversations: int,
                users: int, p_work: float, p_other: float, rng: random.Random, skew: float = 0.5) -> list[Visit]:
    """The conversations, drawn once so that both systems meet the same users, words and luck. Users are
    drawn with weight rank ** -skew: a few write often, most rarely."""
    names = [f"user{i:03d}" for i in range(users)]
    weights = [rank ** -skew for rank in range(1, users + 1)]
    visits = []
    for _ in range(conversations):
        scenario = world[rng.choice(sorted(world))]
        example = rng.choice(playbooks[scenario.playbook].examples)
        text = f"{rng.choice(OPENERS)}{example}{rng.choice(CLOSERS)}"
        works = frozenset(fix for fix in scenario.remedies
                          if rng.random() < (p_work if fix == scenario.working else p_other))
        visits.append(Visit(rng.choices(names, weights)[0], scenario.playbook, text, works, rng.uniform(*GAP_S)))
    return visits


def stage_world(infrastructure: SimulatedInfrastructure, fault: str) -> None:
    """End the previous user's incident and start this one's (at full strength at once)."""
    wanted = tuple(fault.split("@"))
    for name, service in infrastructure.faults():
        if (name, service) != wanted:
            infrastructure.execute(ENDED_BY[name], service, {})
    if wanted not in infrastructure.faults():
        infrastructure.inject(fault, ramp_s=0)


# -- the user --------------------------------------------------------------------------------------------


def reply(exchange: Exchange, state: ConversationState, visit: Visit, applied: set[Fix],
          titles: Mapping[str, str]) -> str | None:
    """What the user says next, or None when they are done (fixed, handed off, or not understood)."""
    if exchange.stage is Stage.CONFIRMING:
        return YES if state.options[0] == visit.playbook else NO
    if exchange.stage is Stage.CHOOSING:
        return titles[visit.playbook] if visit.playbook in state.options else NONE_OFFERED
    if exchange.stage is Stage.VERIFYING:
        return FIXED if applied & visit.works else BROKEN
    return None


def converse(parts: Parts, visit: Visit, clock: Clock) -> Outcome:
    """One whole conversation, the user answering every question until it ends."""
    titles = {p.id: p.title for p in parts.dialogue.knowledge.playbooks.values()}
    text: str | None = visit.text
    conversation, applied = None, set()
    checks = remedies = turns = 0
    resolved = handed_off = reached = False
    while text is not None and turns < MAX_TURNS:
        clock.advance(TURN_S)
        # The replayed users chat from inside the product, signed in: the host app vouches for them.
        exchange = parts.dialogue.turn(text, visit.user, conversation, verified=True)
        conversation, turns = exchange.conversation_id, turns + 1
        resolved |= text == FIXED
        answer = exchange.answer
        if answer is not None:
            ran = [a for a in answer.actions if a.name in ACTIONS and a.status in ("succeeded", "failed")]
            applied |= {(a.name, a.target) for a in ran if a.status == "succeeded"}
            remedies += len(ran)
            handed_off |= any(a.name == "handoff" for a in answer.actions)
            reached |= answer.decision == "resolve" and answer.playbook == visit.playbook
            checks += exchange.stage is Stage.VERIFYING
        stage, payload, _ = parts.dialogue.chats.state(conversation)
        state = ConversationState.load(stage, payload)
        text = reply(exchange, state, visit, applied, titles)
    return Outcome(resolved, checks, remedies, handed_off, _learned_fired(parts, conversation), not reached, turns)


def _learned_fired(parts: Parts, conversation: str | None) -> bool:
    ledger = parts.dialogue.learning.ledger
    return conversation is not None and ledger is not None and ledger.records.learned_fired_in(conversation)


# -- the systems -----------------------------------------------------------------------------------------


def settings_for(data_dir: Path, learn: bool) -> Settings:
    """The product's defaults, learning on or off. Rule files are checked at every decision rather than
    every 2 s of wall time, so a rule goes live at the same conversation however fast the machine is."""
    return load_settings(environ={}, default_file=None, data_dir=data_dir, learn_from_confirmations=learn,
                         rules_reload_s=1e-6)


def sequential_ids(prefix: str) -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers):08d}"


def replay(settings: Settings, knowledge: KnowledgeBase, world: Mapping[str, Scenario],
           stream: Sequence[Visit]) -> Run:
    """Stream the conversations through one freshly built system; its store lives in `settings.data_dir`."""
    clock = Clock()
    parts = build(settings, clock=clock, knowledge=knowledge)
    # Seeded ids: the Thompson sample is seeded by conversation id, so the run repeats exactly.
    parts.dialogue.new_id = parts.assistant.new_id = sequential_ids("c")
    started = time.perf_counter()
    try:
        outcomes = []
        for visit in stream:
            stage_world(parts.infrastructure, world[visit.playbook].fault)
            clock.advance(visit.gap_s)
            outcomes.append(converse(parts, visit, clock))
        learned = ledger_report(parts.dialogue.learning.ledger, world, {v.playbook for v in stream})
    finally:
        parts.close()  # also takes the phrasings learned into `knowledge` out again
    return Run(outcomes, learned, time.perf_counter() - started)


def ledger_report(ledger: LearningLedger | None, world: Mapping[str, Scenario], seen: set[str]) -> dict[str, object]:
    """What the ledger learned: rules by status, and for how many playbooks the working remedy now has the
    best posterior and a live rule."""
    assert ledger is not None
    rules = ledger.rules()
    live = {(r.provenance["fix"]["playbook"], r.provenance["fix"]["action"], r.provenance["fix"]["target"])
            for r in rules if r.status == "active"}
    ranked_first = [p for p in sorted(seen) if _best(ledger, world[p]) == world[p].working]
    outcomes = ledger.records.outcome_count()
    return {
        "outcomes_recorded": int(outcomes),
        "rules_by_status": dict(sorted(Counter(r.status for r in rules).items())),
        "working_remedy_ranked_first": len(ranked_first),
        "working_remedy_live_rule": sum((p, *world[p].working) in live for p in seen),
        "rules": [{"name": r.name, "status": r.status, "reason": r.reason} for r in rules],
    }


def _best(ledger: LearningLedger, scenario: Scenario) -> Fix | None:
    """The remedy with the highest posterior mean; None while the leader is tied (nothing learned)."""
    means = sorted(((ledger.confidence(scenario.playbook, *fix), fix) for fix in scenario.remedies), reverse=True)
    return means[0][1] if means[0][0] > means[1][0] else None


# -- the report ------------------------------------------------------------------------------------------


def summarize(run: Run) -> dict[str, object]:
    outcomes = run.outcomes
    half = len(outcomes) // 2
    until_fixed = [o.remedies for o in outcomes if o.resolved]
    checks = [o.checks for o in outcomes if o.resolved]
    halves = {"": outcomes, "_first_half": outcomes[:half], "_second_half": outcomes[half:]}
    summary: dict[str, object] = {}
    for suffix, part in halves.items():
        summary[f"fixed_first_check{suffix}"] = round(share([o.first_check for o in part]), 4)
        summary[f"remedies_mean{suffix}"] = round(_mean([o.remedies for o in part]), 3)
        summary[f"handed_off{suffix}"] = round(share([o.handed_off for o in part]), 4)
        summary[f"learned_rule_fired{suffix}"] = round(share([o.learned_fired for o in part]), 4)
    summary.update({
        "resolved": round(share([o.resolved for o in outcomes]), 4),
        "checks_mean": round(_mean([o.checks for o in outcomes]), 3),
        "checks_until_fixed_median": float(statistics.median(checks)) if checks else 0.0,
        "remedies_until_fixed_median": float(statistics.median(until_fixed)) if until_fixed else 0.0,
        "remedies_until_fixed_mean": round(_mean(until_fixed), 3),
        "misrouted": round(share([o.misrouted for o in outcomes]), 4),
        "turns_mean": round(_mean([o.turns for o in outcomes]), 3),
        "ms_per_conversation": round(run.seconds * 1000 / max(len(outcomes), 1), 1),
        **{k: v for k, v in run.ledger.items() if k != "rules"},
    })
    return summary


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else 0.0


def series(run: Run, window: int) -> dict[str, list[float]]:
    return {"fixed_first_check": rolling([o.first_check for o in run.outcomes], window),
            "remedies": rolling([o.remedies for o in run.outcomes], window),
            "handed_off": rolling([o.handed_off for o in run.outcomes], window)}


def plot(curves: dict[str, dict[str, list[float]]], window: int, path: Path, title: str) -> None:
    panels = [("fixed_first_check", "fixed at the first check", 1.0),
              ("remedies", "remedies run per conversation", None),
              ("handed_off", "handed off to engineering", 1.0)]
    plot_on_off(curves, panels, window, "conversations streamed", path, title)


ROWS = (("fixed_first_check", "%"), ("fixed_first_check_first_half", "%"), ("fixed_first_check_second_half", "%"),
        ("resolved", "%"), ("checks_mean", "f"), ("checks_until_fixed_median", "f"),
        ("remedies_mean", "f"), ("remedies_mean_second_half", "f"),
        ("remedies_until_fixed_median", "f"), ("handed_off", "%"), ("handed_off_second_half", "%"),
        ("learned_rule_fired_second_half", "%"), ("misrouted", "%"), ("outcomes_recorded", "d"),
        ("working_remedy_ranked_first", "d"), ("working_remedy_live_rule", "d"), ("ms_per_conversation", "f"))


def print_table(results: dict[str, dict[str, object]]) -> None:
    print(f"{'measure':<34}{'learning on':>14}{'learning off':>14}")
    formats = {"%": "{:>14.1%}", "f": "{:>14.2f}", "d": "{:>14d}"}
    for key, kind in ROWS:
        cells = [formats[kind].format(results[name][key]) for name in ("learning_on", "learning_off")]
        print(f"{key.replace('_', ' '):<34}{''.join(cells)}")
    for name in ("learning_on", "learning_off"):
        print(f"learned rules, {name.replace('_', ' ')}: {results[name]['rules_by_status'] or 'none'}")


def choose_world(playbooks: Mapping[str, Playbook], count: int, rng: random.Random) -> dict[str, Scenario]:
    eligible = scenarios(playbooks)
    chosen = sorted(eligible) if count <= 0 else sorted(rng.sample(sorted(eligible), min(count, len(eligible))))
    return {p: eligible[p] for p in chosen}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--playbooks", type=int, default=8, help="playbooks in the world (0: every eligible one)")
    parser.add_argument("--users", type=int, default=40, help="size of the user pool")
    parser.add_argument("--skew", type=float, default=0.5, help="user i writes with weight i ** -skew")
    parser.add_argument("--p-work", type=float, default=0.9, help="chance the playbook's last remedy fixes it")
    parser.add_argument("--p-other", type=float, default=0.1, help="chance any other remedy fixes it")
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the embeddings")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "remedy_replay")
    return parser.parse_args()


def run_both(args: argparse.Namespace) -> tuple[dict[str, Scenario], list[Visit], dict[str, Run], dict[str, object]]:
    """Draw the world and the stream, build the index once, and replay learning off, then on."""
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        _, playbooks = load_pack(settings_for(Path(folder), True))
        world = choose_world(playbooks, args.playbooks, rng)
        stream = make_stream(world, playbooks, args.conversations, args.users, args.p_work, args.p_other, rng,
                             args.skew)
        started = time.perf_counter()
        knowledge, _ = open_index(settings_for(Path(folder) / "index", True), playbooks)
        facts = {"eligible_playbooks": len(scenarios(playbooks)), "index_s": round(time.perf_counter() - started, 1)}
        # Learning off first: it adds nothing to the shared index, so learning on starts from the same one.
        runs = {name: replay(settings_for(Path(folder) / name, learn), knowledge, world, stream)
                for name, learn in (("learning_off", False), ("learning_on", True))}
    return world, stream, runs, facts


def main() -> None:
    args = arguments()
    import torch

    # One short text at a time gains nothing from more threads, and loses badly when the other cores are busy.
    torch.set_num_threads(args.threads)
    world, stream, runs, facts = run_both(args)
    results = {name: summarize(runs[name]) for name in ("learning_on", "learning_off")}
    curves = {name: series(run, args.window) for name, run in runs.items()}
    summary = {
        "benchmark": "remedy_replay", "conversations": len(stream), "users": len({v.user for v in stream}),
        "playbooks": len(world), **facts, "skew": args.skew, "p_work": args.p_work, "p_other": args.p_other,
        "seed": args.seed, "window": args.window, **results,
    }
    detail = {"world": {p: {"fault": s.fault, "remedies": s.remedies, "working": s.working} for p, s in world.items()},
              "rules": {name: run.ledger["rules"] for name, run in runs.items()}, "series": curves}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**summary, **detail}), encoding="utf-8")
    plot(curves, args.window, args.out.with_suffix(".png"),
         f"{len(stream)} conversations, {len(world)} playbooks, {summary['users']} users: the last remedy works "
         f"{args.p_work:.0%}, the others {args.p_other:.0%}")
    print_table(results)
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
