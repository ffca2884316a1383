"""How far people agree on the categories of `jtp-support/dev.tsv`: the ceiling a classifier is measured against.

usage: python bench/agreement.py [--set DEV.tsv] [--labels data/eval/annotations/dev_relabelled.tsv]

Two annotators who never saw the pack or the writer's labels sorted dev.tsv's messages again from the product
description, the 13 categories and the borderline conventions of dev's README (see
data/eval/annotations/README.md). Prints each annotator's agreement with the writer and with each other, per
category and per group (technical, business, out of scope), as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.taxonomy import kind_of  # noqa: E402

DEV = ROOT.parent / "shared" / "datasets" / "jtp-support" / "dev.tsv"
LABELS = ROOT / "data" / "eval" / "annotations" / "dev_relabelled.tsv"


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def agreement(first: list[str], second: list[str]) -> dict[str, float]:
    """Share of messages given the same category, and the same group, by two labellings."""
    pairs = list(zip(first, second, strict=True))
    return {"category": round(sum(a == b for a, b in pairs) / len(pairs), 4),
            "group": round(sum(kind_of(a) is kind_of(b) for a, b in pairs) / len(pairs), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEV)
    parser.add_argument("--labels", type=Path, default=LABELS)
    args = parser.parse_args()
    writer = [row["label"] for row in read(args.set)]
    relabelled = sorted(read(args.labels), key=lambda row: int(row["row"]))
    if [int(row["row"]) for row in relabelled] != list(range(len(writer))):
        raise SystemExit(f"{args.labels} must label every row of {args.set} once (rows 0..{len(writer) - 1})")
    a = [row["annotator_a"] for row in relabelled]
    b = [row["annotator_b"] for row in relabelled]
    print(json.dumps({"messages": len(writer), "a_vs_writer": agreement(a, writer),
                      "b_vs_writer": agreement(b, writer), "a_vs_b": agreement(a, b)}, indent=1))


if __name__ == "__main__":
    main()
