"""Decisions per second and decision latency with 10 to 5,000 rules; our layer against durable-rules alone.

Three measurements in one run:

1. Scale: a rule base of N learned rules (bench/synthetic.py), split into shards when it is large. Each
   decision has about 40 facts (a match, 27 metrics, the services, the conversation) and makes one learned
   rule fire. "Firstline" is `RuleEngine.run` plus the trace every decision stores. "durable-rules" is the
   same compiled shards on a bare durable-rules host: build the fact dicts, assert them in a fresh session,
   delete it, with actions that do nothing, so it does not chain. The difference is what our layer costs:
   routing, ids, bookkeeping per fact, `none` checks, templates, the proposals it asserts and the trace.
2. Design: 5,000 learned rules in shards beside the built-in rules, as the learning loop writes them back.
3. Changes at run time: a new rule base version swapped in and the old one deleted once drained, many times;
   the time a swap takes and the memory it leaves behind.

usage: python bench/rules_scale.py [--sizes 10 100 1000 5000] [--decisions 500] [--swaps 500]
Prints readable tables and a JSON object (last line).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import engine as durable

from bench import synthetic
from core.settings import PROJECT_ROOT
from engine.decision.ruleengine import Fact, RuleEngine, accept_rules, session_fact
from rules.compiler import TYPE_FIELD, compile_rules
from rules.loader import load_rules
from rules.model import RuleBase
from rules.shards import SHARD_CAPACITY, plan_shards

BUILTIN = PROJECT_ROOT / "rules" / "builtin"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(ms: list[float], batches: int = 5) -> dict[str, float]:
    """Throughput as the median over batches of decisions (the machine is shared), and latency percentiles."""
    size = max(1, len(ms) // batches)
    rates = [len(chunk) / (sum(chunk) / 1000) for chunk in (ms[i:i + size] for i in range(0, len(ms), size))]
    return {"decisions_per_s": round(statistics.median(rates), 1), "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(percentile(ms, 0.99), 3)}


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RawHost(durable.Host):
    """durable-rules with nothing of ours: no timer threads, actions that do nothing."""

    def _run(self) -> None:
        return

    def get_action(self, action_name: str):
        def action(closure) -> None:
            return None

        return action


def raw_shards(host: RawHost, rulebase: RuleBase, tag: str) -> tuple[list[str], object]:
    """Register the same shards the engine makes; return their names and the routing plan."""
    fact_types = list(rulebase.vocabulary.facts)
    plan = plan_shards(rulebase, SHARD_CAPACITY, reserved=len(fact_types) + 2)  # as the engine reserves
    names = []
    for index, shard in enumerate(plan.shards):
        names.append(f"raw_{tag}_{index}")
        host.register_rulesets({names[-1]: {**compile_rules(shard.rules), **accept_rules(fact_types)}})
    return names, plan


def time_ours(engine: RuleEngine, decisions: list[list[Fact]]) -> list[float]:
    out = []
    for facts in decisions:
        started = time.perf_counter()
        engine.run(facts).trace()
        out.append((time.perf_counter() - started) * 1000)
    return out


def time_raw(host: RawHost, names: list[str], plan, decisions: list[list[Fact]]) -> list[float]:
    out = []
    for facts in decisions:
        started = time.perf_counter()
        sid = uuid.uuid4().hex
        name = names[plan.shard_for(facts[0].fields["playbook"])]
        host.assert_facts(name, [session_fact(sid), *({**f.fields, TYPE_FIELD: f.type, "id": f"f{i}", "sid": sid}
                                                      for i, f in enumerate(facts, 1))])
        host.delete_state(name, sid)
        out.append((time.perf_counter() - started) * 1000)
    return out


def decisions_for(n: int, pack: synthetic.Pack, count: int, seed: int) -> list[list[Fact]]:
    """Decisions that each make one of the N learned rules apply."""
    rng = random.Random(seed)
    picked = [synthetic.learned(rng.randrange(n), pack) for _ in range(count)]
    return [synthetic.decision(pack, r.playbook, (r.service, r.metric)) for r in picked]


def scale(sizes: list[int], count: int, pack: synthetic.Pack, folder: Path) -> list[dict]:
    rows = []
    host = RawHost()
    for n in sizes:
        paths = synthetic.write_rules(folder / f"scale_{n}", n, pack, with_builtin=False)
        started = time.perf_counter()
        rulebase = load_rules(paths)
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        engine = RuleEngine(rulebase)
        register_s = time.perf_counter() - started
        names, plan = raw_shards(host, rulebase, str(n))
        decisions = decisions_for(n, pack, count, seed=n)
        time_ours(engine, decisions[:20]), time_raw(host, names, plan, decisions[:20])  # warm up
        ours, raw = time_ours(engine, decisions), time_raw(host, names, plan, decisions)
        row = {"rules": n, "shards": engine.shards, "load_s": round(load_s, 2), "register_s": round(register_s, 3),
               "firstline": summary(ours), "durable_rules": summary(raw)}
        row["overhead_p50_ms"] = round(row["firstline"]["p50_ms"] - row["durable_rules"]["p50_ms"], 3)
        row["overhead_ratio_p50"] = round(row["firstline"]["p50_ms"] / row["durable_rules"]["p50_ms"], 2)
        rows.append(row)
        print(f"scale {n}: {row}", file=sys.stderr)
    return rows


def designs(count: int, pack: synthetic.Pack, folder: Path) -> dict[str, dict]:
    n = 5000
    decisions = decisions_for(n, pack, count, seed=7)
    started = time.perf_counter()
    sharded = RuleEngine(load_rules(synthetic.write_rules(folder / "design", n, pack, with_builtin=True)))
    sharded_setup = time.perf_counter() - started
    time_ours(sharded, decisions[:20])
    out = {
        "rules_in_shards": {**summary(time_ours(sharded, decisions)), "setup_s": round(sharded_setup, 2),
                            "shards": sharded.shards, "rules": len(sharded.rulebase)},
    }
    print(f"designs: {out}", file=sys.stderr)
    return out


def swaps(count: int, pack: synthetic.Pack, folder: Path) -> dict[str, float]:
    """Swap between two versions of the built-in rules `count` times, deciding in between."""
    other = folder / "swap"
    other.mkdir()
    for path in BUILTIN.glob("*.yaml"):
        (other / path.name).write_text(path.read_text(encoding="utf-8").replace("salience: 5\n", "salience: 6\n"),
                                       encoding="utf-8")
    versions = [load_rules([BUILTIN]), load_rules([other])]
    engine = RuleEngine(versions[0])
    decisions = decisions_for(100, pack, 5, seed=3)
    for i in range(20):  # warm up allocators before measuring memory
        engine.swap(versions[i % 2])
    before = rss_mb()
    took = []
    for i in range(count):
        started = time.perf_counter()
        engine.swap(versions[(i + 1) % 2])
        took.append((time.perf_counter() - started) * 1000)
        for facts in decisions:
            engine.run(facts)
    after = rss_mb()
    return {"swaps": count, "swap_p50_ms": round(statistics.median(took), 2), "rss_before_mb": round(before, 1),
            "rss_after_mb": round(after, 1), "mb_per_swap": round((after - before) / count, 3),
            "rulesets_left": engine.registered_rulesets()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--swaps", type=int, default=500)
    args = parser.parse_args()
    pack = synthetic.default_pack()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Swaps first: their memory is measured before the large rule bases come and go.
        swap = swaps(args.swaps, pack, folder)
        result = {"benchmark": "rules_scale", "decisions": args.decisions,
                  "scale": scale(args.sizes, args.decisions, pack, folder),
                  "designs": designs(args.decisions, pack, folder), "swap": swap}
    print(f"{'rules':>6} {'shards':>6} | {'Firstline dec/s':>15} {'p50 ms':>7} {'p99 ms':>7} | "
          f"{'durable-rules dec/s':>19} {'p50 ms':>7} {'p99 ms':>7} | {'overhead p50':>12}")
    for row in result["scale"]:
        ours, raw = row["firstline"], row["durable_rules"]
        print(f"{row['rules']:>6} {row['shards']:>6} | {ours['decisions_per_s']:>15} {ours['p50_ms']:>7} "
              f"{ours['p99_ms']:>7} | {raw['decisions_per_s']:>19} {raw['p50_ms']:>7} {raw['p99_ms']:>7} | "
              f"{row['overhead_p50_ms']:>9} ms")
    print(f"\n{'5,000 learned rules':<28} {'dec/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'setup s':>8} {'shards':>6}")
    for name, row in result["designs"].items():
        print(f"{name:<28} {row['decisions_per_s']:>7} {row['p50_ms']:>7} {row['p99_ms']:>7} {row['setup_s']:>8} "
              f"{row['shards']:>6}")
    swap = result["swap"]
    print(f"\n{swap['swaps']} swaps: {swap['swap_p50_ms']} ms each (median), "
          f"RSS {swap['rss_before_mb']} -> {swap['rss_after_mb']} MB ({swap['mb_per_swap']} MB a swap), "
          f"{swap['rulesets_left']} ruleset(s) left registered")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
