"""Vector search at scale: exact (flat) against approximate (IVF) search, and query embedding throughput.

For 10k, 100k and 1M synthetic unit vectors (384 dimensions, drawn around 2,000 cluster centres so they
have the neighbourhood structure of real sentence embeddings): build time, index memory, single-query
search latency and recall@1 against exact search in the same run. Then the bundled model's encoding
throughput, one sentence at a time and batched.

usage: .venv/bin/python bench/index_scale.py [--sizes 10000,100000,1000000] [--queries 200] [--nprobe 4,16,64]
Prints a readable table and a JSON object (last line).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.embedder import Embedder
from knowledge.index import VectorIndex

DIMENSION = 384
CENTRES = 2000


def clustered(count: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centres), count)
    vectors = centres[picks] + 0.03 * rng.standard_normal((count, DIMENSION)).astype("float32")
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def timed_search(index: VectorIndex, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found, timings = [], []
    for query in queries:
        t0 = time.perf_counter()
        _, ids = index.search(query, 1)
        timings.append((time.perf_counter() - t0) * 1000)
        found.append(ids[0, 0])
    return np.array(found), timings


def index_bytes(index: VectorIndex) -> int:
    return int(faiss.serialize_index(index._index).size)


def scale(size: int, queries: int, nprobes: list[int], rng: np.random.Generator, centres: np.ndarray) -> list[dict]:
    vectors = clustered(size, rng, centres)
    probe = clustered(queries, rng, centres)
    ids = np.arange(size)
    rows = []
    t0 = time.perf_counter()
    exact = VectorIndex.build(ids, vectors, approximate_above=size + 1)
    exact_build = time.perf_counter() - t0
    truth, exact_ms = timed_search(exact, probe)
    rows.append({"size": size, "index": exact.kind, "build_s": round(exact_build, 2),
                 "memory_mb": round(index_bytes(exact) / 2**20, 1), "p50_ms": round(statistics.median(exact_ms), 3),
                 "p95_ms": round(float(np.percentile(exact_ms, 95)), 3), "recall_at_1": 1.0})
    del exact
    t0 = time.perf_counter()
    approximate = VectorIndex.build(ids, vectors, approximate_above=1)
    approximate_build = time.perf_counter() - t0
    memory = round(index_bytes(approximate) / 2**20, 1)
    for nprobe in nprobes:
        approximate._index.nprobe = nprobe
        found, timings = timed_search(approximate, probe)
        rows.append({"size": size, "index": approximate.kind, "build_s": round(approximate_build, 2),
                     "memory_mb": memory, "p50_ms": round(statistics.median(timings), 3),
                     "p95_ms": round(float(np.percentile(timings, 95)), 3),
                     "recall_at_1": round(float((found == truth).mean()), 4)})
    return rows


def embedding_throughput(sentences: int) -> dict:
    embedder = Embedder()
    texts = [f"my dashboard number {i} loads slowly since the update" for i in range(sentences)]
    embedder.encode_one("warm up")
    t0 = time.perf_counter()
    for text in texts:
        embedder.encode_one(text)
    single = sentences / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    embedder._encode(texts, False)
    batched = sentences / (time.perf_counter() - t0)
    return {"sentences": sentences, "one_at_a_time_per_s": round(single, 1), "batched_per_s": round(batched, 1),
            "batch_size": embedder.batch_size, "ratio_batched_over_single": round(batched / single, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobe", default="4,16,64")
    parser.add_argument("--sentences", type=int, default=300)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # single-query latency, as one request sees it
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((CENTRES, DIMENSION)).astype("float32")
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += scale(size, args.queries, [int(n) for n in args.nprobe.split(",")], rng, centres)
    throughput = embedding_throughput(args.sentences)
    print(f"{'vectors':>9} {'index':<26}{'build s':>9}{'MB':>9}{'p50 ms':>9}{'p95 ms':>9}{'recall@1':>10}")
    for r in rows:
        print(f"{r['size']:>9} {r['index']:<26}{r['build_s']:>9}{r['memory_mb']:>9}{r['p50_ms']:>9}"
              f"{r['p95_ms']:>9}{r['recall_at_1']:>10}")
    t = throughput
    print(f"embedding: {t['one_at_a_time_per_s']}/s one at a time, {t['batched_per_s']}/s batched "
          f"({t['ratio_batched_over_single']}x)")
    print(json.dumps({"benchmark": "index_scale", "search": rows, "embedding": throughput}))


if __name__ == "__main__":
    main()
