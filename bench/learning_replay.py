"""Proof that the playbook base learns: stream a labelled set through it in order, give the feedback a user
would, and compare accuracy and answered share over time with the same system with learning off.

Each system starts from the same small seed (a few training examples per intent, plus some out-of-scope
ones) with bands calibrated on that seed. For each query the user sees the best playbook (answer band) or a
choice of the top three (clarify band), or a refusal (out of scope). A user whose problem was answered
confirms it; one who was answered wrongly says no and is offered the top three, like a clarify. Learning on,
every confirmed phrasing becomes an example of its playbook at once (`KnowledgeBase.add_examples`, as a
confirmed resolution does in the product); refusals teach nothing (they go to the curators' queue).

usage: .venv/bin/python bench/learning_replay.py [--data PATH] [--seed-per-intent 5] [--window 500]
       [--out bench/results/learning_replay] [--limit N]
Writes <out>.json and <out>.png; prints a readable table and the JSON summary (last line).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.taxonomy import OUT_OF_SCOPE
from knowledge.base import Band, KnowledgeBase
from knowledge.embedder import Embedder
from knowledge.evaluation import IN_SCOPE_CATEGORY, load_labelled
from knowledge.playbooks import Playbook

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json"
OOS = "oos"
CHOICES = 3


@dataclass
class Stream:
    """Per-query outcomes of one system, in stream order."""

    correct: list[bool] = field(default_factory=list)  # right first time: the best answer, or a due refusal
    answered: list[bool] = field(default_factory=list)  # answered outright (answer band)
    resolved: list[bool] = field(default_factory=list)  # the user got the right playbook, perhaps after a choice
    learned: int = 0


def seed_playbooks(train_texts, train_labels, per_intent: int, oos_seed: int, rng: random.Random):
    grouped: dict[str, list[str]] = {}
    for text, label in zip(train_texts, train_labels, strict=True):
        grouped.setdefault(label, []).append(text)
    playbooks = {}
    for label, texts in sorted(grouped.items()):
        chosen = rng.sample(texts, min(per_intent if label != OOS else oos_seed, len(texts)))
        category = OUT_OF_SCOPE if label == OOS else IN_SCOPE_CATEGORY
        playbooks[label] = Playbook(label, label, category, label, tuple(chosen))
    return playbooks


def replay(base: KnowledgeBase, texts, labels, vectors, learn: bool) -> Stream:
    stream = Stream()
    for text, truth, vector in zip(texts, labels, vectors, strict=True):
        match = base.match_vector(vector)
        offered = [c.playbook for c in match.candidates if c.category != OUT_OF_SCOPE][:CHOICES]
        refused = match.band is Band.OUT_OF_SCOPE
        best = match.best.playbook
        if truth == OOS:
            stream.correct.append(refused)
            stream.answered.append(match.band is Band.ANSWER)
            stream.resolved.append(refused)
            continue
        first_time = match.band is Band.ANSWER and best == truth
        # A wrong answer gets a "no", then the same choice a clarify would have offered.
        picked = not refused and (first_time or truth in offered)
        stream.correct.append(first_time)
        stream.answered.append(match.band is Band.ANSWER)
        stream.resolved.append(picked)
        if learn and picked:
            base.add_examples(truth, [text])
            stream.learned += 1
    return stream


def rolling(flags: list[bool], window: int) -> list[float]:
    values = np.array(flags, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    return [float((sums[i] - sums[max(0, i - window)]) / min(i, window)) for i in range(1, len(values) + 1)]


def share(flags: list[bool]) -> float:
    return float(np.mean(flags)) if flags else 0.0


def plot_on_off(series: dict[str, dict[str, list[float]]], panels: list[tuple[str, str, float | None]],
                window: int, xlabel: str, path: Path, title: str) -> None:
    """One panel per (key, label, y maximum or None), learning on solid against off dashed."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 1, 4), sharex=True)
    for axis, (key, label, top) in zip(axes, panels, strict=True):
        for name, style in (("learning_on", "-"), ("learning_off", "--")):
            axis.plot(series[name][key], style, label=name.replace("_", " "))
        axis.set_title(f"{label} (rolling {window})")
        axis.set_xlabel(xlabel)
        axis.set_ylim(0, top)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot(series: dict[str, dict[str, list[float]]], window: int, path: Path, title: str) -> None:
    plot_on_off(series, [("correct", "right first time", 1.0), ("answered", "answered outright", 1.0)], window,
                "queries streamed", path, title)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CLINC150 data_full.json or a labelled set")
    parser.add_argument("--seed-per-intent", type=int, default=5)
    parser.add_argument("--oos-seed", type=int, default=20, help="out-of-scope examples in the seed")
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--limit", type=int, default=0, help="stream only the first N queries (0: all)")
    parser.add_argument("--shuffle-seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "cache")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "learning_replay")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"learning_replay: {args.data} is missing; see docs/evaluation-data.md")

    rng = random.Random(args.shuffle_seed)
    train = load_labelled(args.data, "train", OOS)
    test = load_labelled(args.data, "test", OOS)
    order = list(range(len(test)))
    rng.shuffle(order)  # CLINC150's test split is grouped by intent; users are not
    if args.limit:
        order = order[: args.limit]
    texts, labels = [test.texts[i] for i in order], [test.labels[i] for i in order]
    playbooks = seed_playbooks(train.texts, train.labels, args.seed_per_intent, args.oos_seed, rng)

    embedder = Embedder(cache_dir=args.cache_dir)
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    encode_s = time.perf_counter() - started
    results, series = {}, {}
    for name, learn in (("learning_on", True), ("learning_off", False)):
        base = KnowledgeBase.build(playbooks, embedder, target_precision=0.95)
        t0 = time.perf_counter()
        stream = replay(base, texts, labels, vectors, learn)
        elapsed = time.perf_counter() - t0
        half = len(texts) // 2
        results[name] = {
            "right_first_time": round(share(stream.correct), 4),
            "right_first_time_first_half": round(share(stream.correct[:half]), 4),
            "right_first_time_second_half": round(share(stream.correct[half:]), 4),
            "answered_outright": round(share(stream.answered), 4),
            "answered_first_half": round(share(stream.answered[:half]), 4),
            "answered_second_half": round(share(stream.answered[half:]), 4),
            "resolved": round(share(stream.resolved), 4),
            "examples_learned": stream.learned,
            "examples_at_end": len(base.index),
            "ms_per_query": round(elapsed * 1000 / max(len(texts), 1), 3),
        }
        series[name] = {"correct": rolling(stream.correct, args.window),
                        "answered": rolling(stream.answered, args.window)}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "benchmark": "learning_replay", "data": str(args.data), "queries": len(texts),
        "seed_examples": sum(len(p.examples) for p in playbooks.values()), "seed_per_intent": args.seed_per_intent,
        "window": args.window, "encode_s": round(encode_s, 1), **results,
    }
    args.out.with_suffix(".json").write_text(json.dumps({**summary, "series": series}), encoding="utf-8")
    plot(series, args.window, args.out.with_suffix(".png"),
         f"{Path(args.data).name}: {len(texts)} queries from {summary['seed_examples']} seed examples")

    print(f"{'measure':<34}{'learning on':>14}{'learning off':>14}")
    for key in ("right_first_time", "right_first_time_first_half", "right_first_time_second_half",
                "answered_outright", "answered_first_half", "answered_second_half", "resolved"):
        print(f"{key.replace('_', ' '):<34}{results['learning_on'][key]:>14.1%}{results['learning_off'][key]:>14.1%}")
    print(f"{'examples at end':<34}{results['learning_on']['examples_at_end']:>14}"
          f"{results['learning_off']['examples_at_end']:>14}")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
