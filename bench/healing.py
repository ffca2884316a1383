"""Self-healing over many seeds: prevention rate, time to recovery and false actions per scenario, for the
predictive detector and, in the same run, the threshold-only baseline.

usage: .venv/bin/python bench/healing.py [--seeds 20] [--first-seed 1] [--minutes 60] [--json-only]
Prints a readable table and a JSON object (last line). Each run is a full simulated scenario through the real
monitor, rules, safety gate and ledger (in-memory DuckDB); a seed fixes the noise, the fault's start and speed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import load_settings
from engine.decision.ruleengine import RuleEngine
from engine.healing.scenarios import SCENARIOS, ScenarioReport, run_scenario
from engine.wiring import load_pack, load_rulebase

MODES = ("predictive", "threshold")


def measure(reports: list[ScenarioReport]) -> dict[str, float | int | None]:
    faulty = [r for r in reports if r.fault is not None]
    recoveries = [r.time_to_recovery_s for r in faulty if r.time_to_recovery_s is not None]
    leads = [r.lead_time_s for r in faulty if r.lead_time_s is not None]
    return {
        "runs": len(reports),
        "prevented": sum(r.prevented for r in faulty),
        "prevention_rate": round(sum(r.prevented for r in faulty) / len(faulty), 3) if faulty else None,
        "recovered": len(recoveries),
        "median_time_to_recovery_s": statistics.median(recoveries) if recoveries else None,
        "median_lead_time_s": statistics.median(leads) if leads else None,
        "median_user_impact_s": statistics.median(r.user_impact_s for r in reports),
        "false_actions": sum(r.false_actions for r in reports),
        "actions": sum(len(r.executed) for r in reports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(environ={}, default_file=None, data_dir=Path(folder))
        topology, _ = load_pack(settings)
        rules = RuleEngine(load_rulebase(settings, topology))
        results: dict[str, dict[str, dict]] = {}
        started = time.perf_counter()
        for scenario in SCENARIOS:
            results[scenario] = {}
            for mode in MODES:
                reports = [run_scenario(scenario, args.minutes, seed, settings, topology, rules,
                                        predictive=mode == "predictive")
                           for seed in range(args.first_seed, args.first_seed + args.seeds)]
                results[scenario][mode] = measure(reports)
        seconds = time.perf_counter() - started
    runs = len(SCENARIOS) * len(MODES) * args.seeds
    if not args.json_only:
        print(f"{runs} simulated runs of {args.minutes:g} minutes in {seconds:.0f} s ({seconds / runs:.2f} s a run)")
        print(f"{'scenario':<18} {'detection':<11} {'prevented':>10} {'recovery (median)':>18} "
              f"{'lead (median)':>14} {'impact (median)':>16} {'false actions':>14}")
        for scenario, modes in results.items():
            for mode, m in modes.items():
                rate = f"{m['prevented']}/{m['runs']}" if m["prevention_rate"] is not None else "-"
                print(f"{scenario:<18} {mode:<11} {rate:>10} {_s(m['median_time_to_recovery_s']):>18} "
                      f"{_s(m['median_lead_time_s']):>14} {_s(m['median_user_impact_s']):>16} "
                      f"{m['false_actions']:>14}")
    print(json.dumps({"seeds": args.seeds, "first_seed": args.first_seed, "minutes": args.minutes,
                      "seconds": round(seconds, 1), "results": results}))


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s"


if __name__ == "__main__":
    main()
