"""Thousands of learned rules, through the learning ledger itself.

For each size N, in a fresh DuckDB store:

1. learn: N rules, each proposed by two distinct users' confirmations and validated as a rule file would be
   (`LearningLedger.record_resolution`), then approved; the time per proposal.
2. confirm: the bookkeeping one confirmed fix costs with N rules stored (what the dialogue does: count the
   outcome, review the live rules of that playbook, score its shadow rules); against N = 0, same run.
3. publish: export the active rules, load them with the built-in rules, register the shards.
4. decide: a decision's latency with N learned rules live against the built-in rules alone (the baseline,
   same run), and whether the learned rule that applies fired.

usage: .venv/bin/python bench/learned_scale.py [--sizes 100 1000 3000] [--confirmations 200] [--decisions 300]
Prints a readable table and a JSON object (last line).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import synthetic
from core.settings import PROJECT_ROOT
from engine.actions.catalogue import action_targets
from engine.decision.ruleengine import RuleEngine
from engine.infra.topology import load_topology
from engine.learning.ledger import Fix, LearningLedger, Policy, rule_validator
from engine.store import DuckDBStore
from rules.loader import load_rules

BUILTIN = sorted((PROJECT_ROOT / "rules" / "builtin").glob("*.yaml"))


def fix_of(k: int, pack: synthetic.Pack) -> Fix:
    r = synthetic.learned(k, pack)
    return Fix(r.playbook, r.action, r.target, r.service, r.metric)


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3) if samples else 0.0


def learn(ledger: LearningLedger, n: int, pack: synthetic.Pack) -> list[float]:
    """N rules from two users' votes each; returns the seconds of each proposing vote."""
    took = []
    for k in range(n):
        fix = fix_of(k, pack)
        ledger.record_resolution(fix, f"c{k}a", f"u{k}a")
        started = time.perf_counter()
        rule = ledger.record_resolution(fix, f"c{k}b", f"u{k}b")
        took.append(time.perf_counter() - started)
        assert rule is not None and rule.status == "proposed", rule
        # One in ten stays in shadow (scored on every confirmation of its playbook); the rest go live.
        ledger.set_status(rule.name, "shadow" if k % 10 == 0 else "active", "bench", "bench")
    return took


def confirm(ledger: LearningLedger, count: int, pack: synthetic.Pack, rng: random.Random) -> list[float]:
    """The ledger work of one confirmed fix, as `Dialogue._count_outcome` does it."""
    took = []
    for i in range(count):
        playbook = rng.choice(pack.playbooks)
        service, _ = rng.choice(pack.signals)
        started = time.perf_counter()
        ledger.record_outcome(playbook, "restart_service", service, f"confirm{i}", f"v{i}", True)
        ledger.review_active(playbook)
        for rule in ledger.rules("shadow", playbook):
            ledger.record_shadow_case(rule.name, f"confirm{i}", rule.provenance["fix"]["target"] == service)
        took.append(time.perf_counter() - started)
    return took


def decide(engine: RuleEngine, decisions: list[tuple[list, str | None]]) -> tuple[list[float], float]:
    took, hits, expected = [], 0, 0
    for facts, rule_name in decisions:
        started = time.perf_counter()
        run = engine.run(facts)
        run.trace()
        took.append(time.perf_counter() - started)
        if rule_name is not None:
            expected += 1
            hits += rule_name in [f.rule for f in run.firings]
    return took, (hits / expected if expected else 1.0)


def one_size(n: int, args: argparse.Namespace, pack: synthetic.Pack, known, folder: Path) -> dict:
    store = DuckDBStore(folder / f"learned_{n}.duckdb")
    try:
        ledger = LearningLedger(store, Policy(), validate=rule_validator(*known))
        learned = learn(ledger, n, pack)
        rng = random.Random(n)
        confirm(ledger, 20, pack, rng)  # warm up
        confirmations = confirm(ledger, args.confirmations, pack, rng)
        started = time.perf_counter()
        exported = ledger.export(folder / f"active_{n}.yaml")
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        rulebase = load_rules([*BUILTIN, folder / f"active_{n}.yaml"], known[0], known_playbooks=known[1])
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        engine = RuleEngine(rulebase)
        register_s = time.perf_counter() - started
        live = {fix_of(k, pack).rule_name: k for k in range(n) if k % 10}
        picks = [rng.choice(sorted(live)) for _ in range(args.decisions)] if live else []
        decisions = [(synthetic.decision(pack, fix_of(live[name], pack).playbook,
                                         (fix_of(live[name], pack).service, fix_of(live[name], pack).metric)), name)
                     for name in picks]
        decide(engine, decisions[:20])  # warm up
        decide_s, fired_share = decide(engine, decisions)
        return {"rules": n, "active": exported, "shards": engine.shards,
                "propose_p50_ms": median_ms(learned), "confirm_p50_ms": median_ms(confirmations),
                "export_s": round(export_s, 3), "load_s": round(load_s, 2), "register_s": round(register_s, 2),
                "decide_p50_ms": median_ms(decide_s), "learned_rule_fired": round(fired_share, 4)}
    finally:
        store.close()


def baseline(args: argparse.Namespace, pack: synthetic.Pack, known, folder: Path) -> dict:
    """No learned rules: the confirmation bookkeeping and a decision with the built-in rules alone."""
    store = DuckDBStore(folder / "baseline.duckdb")
    try:
        ledger = LearningLedger(store, Policy(), validate=rule_validator(*known))
        rng = random.Random(0)
        confirm(ledger, 20, pack, rng)
        confirmations = confirm(ledger, args.confirmations, pack, rng)
    finally:
        store.close()
    engine = RuleEngine(load_rules(BUILTIN, known[0], known_playbooks=known[1]))
    decisions = [(synthetic.decision(pack, rng.choice(pack.playbooks), rng.choice(pack.signals)), None)
                 for _ in range(args.decisions)]
    decide(engine, decisions[:20])
    decide_s, _ = decide(engine, decisions)
    return {"rules": 0, "confirm_p50_ms": median_ms(confirmations), "decide_p50_ms": median_ms(decide_s),
            "shards": engine.shards}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--confirmations", type=int, default=200)
    parser.add_argument("--decisions", type=int, default=300)
    args = parser.parse_args()
    pack = synthetic.default_pack()
    topology = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")
    playbooks = frozenset(p.stem for p in (PROJECT_ROOT / "data" / "playbooks").rglob("*.yaml"))
    known = (action_targets(topology), playbooks)
    with tempfile.TemporaryDirectory() as folder:
        base = baseline(args, pack, known, Path(folder))
        rows = [one_size(n, args, pack, known, Path(folder)) for n in args.sizes]
    for row in rows:
        row["confirm_ratio_to_baseline"] = round(row["confirm_p50_ms"] / base["confirm_p50_ms"], 2)
        row["decide_ratio_to_baseline"] = round(row["decide_p50_ms"] / base["decide_p50_ms"], 2)
    print(f"baseline (built-in rules only): confirm p50 {base['confirm_p50_ms']} ms, "
          f"decide p50 {base['decide_p50_ms']} ms")
    header = ("rules", "active", "shards", "propose_p50_ms", "confirm_p50_ms", "confirm_ratio_to_baseline",
              "export_s", "load_s", "register_s", "decide_p50_ms", "decide_ratio_to_baseline", "learned_rule_fired")
    print("  ".join(f"{h:>12}" for h in header))
    for row in rows:
        print("  ".join(f"{row[h]!s:>12}" for h in header))
    print(json.dumps({"baseline": base, "sizes": rows}))


if __name__ == "__main__":
    main()
