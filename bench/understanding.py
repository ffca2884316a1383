"""How well the default pack understands messages nobody tuned it on, measured exactly as a tenant would:
`firstline ask --json --dry-run --file` on each labelled set, then the first-turn figures of issue 12.

usage: .venv/bin/python bench/understanding.py [SET.tsv ...] [--data-dir DIR]
Default sets: ../shared/datasets/jtp-support/dev.tsv and data/eval/independent/{h1,h2}.tsv (`text<TAB>label`),
and data/eval/independent/hard.tsv (`text<TAB>kind<TAB>label<TAB>also`). Writes bench/results/understanding.json
and prints it. Each set is answered by a fresh `firstline ask` process (one model load each) on a fresh data
folder holding a copy of one index built at the start, so nothing recorded for one set reaches another.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.taxonomy import Kind, kind_of  # noqa: E402

DEFAULT_SETS = (ROOT.parent / "shared" / "datasets" / "jtp-support" / "dev.tsv",
                ROOT / "data" / "eval" / "independent" / "h1.tsv",
                ROOT / "data" / "eval" / "independent" / "h2.tsv",
                ROOT / "data" / "eval" / "independent" / "hard.tsv")
NOT_REMEDIES = ("escalate", "handoff")


def read_set(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def ask(texts: list[str], data_dir: Path) -> list[dict]:
    """One `firstline ask --json --dry-run --file` run; one answer per text, in order."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as handle:
        handle.write("\n".join(t.replace("\n", " ") for t in texts) + "\n")
        file = handle.name
    env = {**os.environ, "FIRSTLINE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"}
    try:
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "firstline"), "ask", "--json", "--dry-run", "--file",
                               file], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    finally:
        os.unlink(file)
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if len(answers) != len(texts):
        raise SystemExit(f"expected {len(texts)} answers, got {len(answers)}")
    return answers


def acted(answer: dict) -> bool:
    return any(a["name"] not in NOT_REMEDIES for a in answer["actions"])


def figures(labels: list[str], answers: list[dict]) -> dict:
    """The issue's first-turn figures: category accuracy, what each group got, clarifying questions."""
    groups: dict[str, Counter] = {g.value: Counter() for g in Kind}
    for label, answer in zip(labels, answers, strict=True):
        tally = groups[kind_of(label).value]
        tally[answer["decision"]] += 1
        tally["acted_on"] += acted(answer)
        tally["total"] += 1
    in_scope = [a for label, a in zip(labels, answers, strict=True) if kind_of(label) is not Kind.OUT_OF_SCOPE]
    technical, business, oos = (groups[k.value] for k in (Kind.TECHNICAL, Kind.BUSINESS, Kind.OUT_OF_SCOPE))
    return {
        "messages": len(labels),
        "category_accuracy": round(sum(a["category"] == label for label, a in zip(labels, answers, strict=True))
                                   / len(labels), 4),
        "technical": {"total": technical["total"], "fixed_first_turn": technical["resolve"],
                      "clarified": technical["clarify"], "escalated": technical["escalate"],
                      "declined": technical["decline"]},
        "business": {"total": business["total"], "to_a_person": business["escalate"],
                     "to_a_person_share": round(business["escalate"] / max(business["total"], 1), 4),
                     "clarified": business["clarify"], "turned_away": business["decline"],
                     "answered_as_technical": business["resolve"]},
        "out_of_scope": {"total": oos["total"], "declined": oos["decline"],
                         "declined_share": round(oos["decline"] / max(oos["total"], 1), 4),
                         "acted_on": oos["acted_on"], "escalated": oos["escalate"], "clarified": oos["clarify"]},
        "first_turn_clarify_share_in_scope": round(sum(a["decision"] == "clarify" for a in in_scope)
                                                   / max(len(in_scope), 1), 4),
    }


def hard_figures(rows: list[dict[str, str]], answers: list[dict]) -> dict:
    """Per kind of hard phrasing: how often the main request's group was right, and what went wrong."""
    result: dict[str, dict] = {}
    for row, answer in zip(rows, answers, strict=True):
        tally = result.setdefault(row["kind"], Counter())
        tally["total"] += 1
        tally["acted_on"] += acted(answer)
        if row["label"] == "none":
            tally["asked_what_is_wrong"] += answer["decision"] == "clarify" and answer["playbook"] is None
            continue
        tally["category_right"] += answer["category"] == row["label"]
        group = kind_of(row["label"])
        expected = {Kind.TECHNICAL: "resolve", Kind.BUSINESS: "escalate", Kind.OUT_OF_SCOPE: "decline"}[group]
        tally["group_decision_right"] += answer["decision"] == expected
        if row.get("also"):
            named = {a["target"] for a in answer["actions"] if a["name"] == "escalate"}
            tally["second_request_escalated"] += kind_of(row["also"]) is Kind.BUSINESS and row["also"] in named
            tally["second_request_business"] += kind_of(row["also"]) is Kind.BUSINESS
    return {kind: dict(sorted(t.items())) for kind, t in sorted(result.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path, default=[p for p in DEFAULT_SETS if p.exists()])
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as warm:
        ask(["warm up: build the index once"], Path(warm))  # each set then starts from a copy of it
        for path in args.sets:
            rows = read_set(path)
            with tempfile.TemporaryDirectory() as folder:
                for part in ("index", "cache"):
                    shutil.copytree(Path(warm) / part, Path(folder) / part)
                answers = ask([r["text"] for r in rows], Path(folder))
            if "kind" in rows[0]:
                report[path.name] = hard_figures(rows, answers)
            else:
                report[path.name] = figures([r["label"] for r in rows], answers)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "understanding.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name, result in report.items():
        print(f"\n{name}")
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
