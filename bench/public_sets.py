"""Matching on public data sets, measured with the command a tenant would use: `firstline eval --train ... --test ...`
at the default settings (the out-of-scope background included), one set after another in the same run.

usage: .venv/bin/python bench/public_sets.py [--datasets DIR] [--only NAME ...] [--extra ARG ...]

DIR (default ../shared/datasets) holds, as their sources ship them:
  clinc150/data_full.json                          github.com/clinc/oos-eval (data/), CC BY 3.0
  braun2017/{AskUbuntu,WebApplications}Corpus.json github.com/sebischair/NLU-Evaluation-Corpora, CC BY-SA 3.0
  banking77/{train,test}.csv                       github.com/PolyAI-LDN/task-specific-datasets
                                                   (banking_data/), CC BY 4.0
  hint3/{sofmattress,curekart,powerplay11}_{train,test}.csv
                                                   github.com/hellohaptik/HINT3 (dataset/v1/), ODbL / DbCL
Sets whose files are missing are skipped and listed. `--extra` passes flags on to every `firstline eval`
(e.g. `--extra=--fine-tune-epochs=3`). Writes bench/results/public_sets.json and prints a table.
HINT3's training sets have no out-of-scope rows and its test sets are 42-72% out of scope; its measure is the
multi-class MCC with out of scope as a class (best published: 0.638 / 0.603 / 0.425).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HINT3_OOS = "NO_NODES_DETECTED"


def sets(folder: Path) -> dict[str, list[str]]:
    """Name -> the `firstline eval` arguments of each set."""
    found = {
        "clinc150": ["--train", str(folder / "clinc150" / "data_full.json")],
        "banking77": ["--train", str(folder / "banking77" / "train.csv"), "--test",
                      str(folder / "banking77" / "test.csv")],
        "askubuntu": ["--train", str(folder / "braun2017" / "AskUbuntuCorpus.json")],
        "webapplications": ["--train", str(folder / "braun2017" / "WebApplicationsCorpus.json")],
    }
    for bot in ("sofmattress", "curekart", "powerplay11"):
        found[f"hint3_{bot}"] = ["--train", str(folder / "hint3" / f"{bot}_train.csv"), "--test",
                                 str(folder / "hint3" / f"{bot}_test.csv"), "--oos-label", HINT3_OOS]
    return found


def run(arguments: list[str], extra: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "firstline"), "eval", *arguments, *extra, "--json"],
                          capture_output=True, text=True, env=env, check=False, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--extra", action="append", default=[])
    args = parser.parse_args()
    report, missing = {}, []
    for name, arguments in sets(args.datasets).items():
        if args.only and name not in args.only:
            continue
        files = [Path(a) for a in arguments if a.endswith((".json", ".csv"))]
        if not all(f.exists() for f in files):
            missing.append(name)
            continue
        report[name] = run(arguments, args.extra)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "public_sets.json").write_text(json.dumps({"sets": report, "missing": missing}, indent=1) + "\n",
                                          encoding="utf-8")
    print(f"{'set':<18}{'in-scope acc':>14}{'OOS recall':>12}{'MCC':>8}{'accuracy':>10}{'wall s':>8}")
    for name, r in report.items():
        if "error" in r:
            print(f"{name:<18} error: {r['error']}")
            continue
        oos = "n/a" if r["oos_recall"] is None else f"{r['oos_recall']:.1%}"
        print(f"{name:<18}{r['in_scope_accuracy']:>14.1%}{oos:>12}{r['mcc']:>8.3f}{r['accuracy']:>10.1%}"
              f"{r['wall_s']:>8.0f}")
    if missing:
        print(f"skipped (files missing under {args.datasets}): {', '.join(missing)}")


if __name__ == "__main__":
    sys.exit(main())
