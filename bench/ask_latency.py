"""Cost of answering a message: one model load, then per-message time for the whole pipeline, next to the
raw matching cost (encode + faiss search) measured in the same run.

usage: .venv/bin/python bench/ask_latency.py [--messages 100] [--json-only]
Prints a readable table and a JSON object (last line).
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
from engine.wiring import build, load_pack, open_index


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values), 2), "p95_ms": round(percentile(values, 0.95), 2),
            "mean_ms": round(statistics.fmean(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(environ={}, default_file=None, data_dir=Path(folder))
        _, playbooks = load_pack(settings)
        started = time.perf_counter()
        knowledge, report = open_index(settings, playbooks)
        knowledge.embedder.encode_one("warm up")
        load_s = time.perf_counter() - started
        texts = [e for p in sorted(playbooks.values(), key=lambda p: p.id) for e in p.examples]
        messages = [texts[(i * 37) % len(texts)] + " today" for i in range(args.messages)]

        raw = []
        for text in messages:
            t0 = time.perf_counter()
            knowledge.match(text)
            raw.append((time.perf_counter() - t0) * 1000)
        parts = build(settings, knowledge=knowledge)
        full = []
        try:
            for text in messages:
                t0 = time.perf_counter()
                parts.assistant.answer(text, "bench")
                full.append((time.perf_counter() - t0) * 1000)
        finally:
            parts.close()

    result = {
        "benchmark": "ask_latency",
        "messages": args.messages,
        "index_examples": report.examples,
        "model_load_and_index_s": round(load_s, 2),
        "baseline_match": summary(raw),
        "full_pipeline": summary(full),
        "median_ratio_full_over_match": round(statistics.median(full) / statistics.median(raw), 2),
    }
    print(f"{'stage':<28}{'median ms':>12}{'p95 ms':>10}")
    print(f"{'match (encode + search)':<28}{result['baseline_match']['median_ms']:>12}"
          f"{result['baseline_match']['p95_ms']:>10}")
    print(f"{'full pipeline (answer)':<28}{result['full_pipeline']['median_ms']:>12}"
          f"{result['full_pipeline']['p95_ms']:>10}")
    print(f"model load + index: {result['model_load_and_index_s']} s; "
          f"full/match median ratio: {result['median_ratio_full_over_match']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
