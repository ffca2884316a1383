"""Chat turn latency and throughput against the real server (waitress), next to the raw pipeline cost
(`Assistant.answer` in-process) measured in the same run.

Each simulated user opens a conversation and sends turns through `POST /api/v1/conversations/ID/messages`
with its own session cookie: a problem, then a reply to the question it gets, and so on. Runs with 1 user and
with 50 concurrent users; waitress serves with --threads threads in one process (DuckDB's single writer).

usage: .venv/bin/python bench/chat_load.py [--turns 4] [--users 1,50] [--threads 8] [--raw 40]
Prints a readable table and a JSON object (last line).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.settings import load_settings
from engine.wiring import build, load_pack, open_index
from web.server import BackgroundServer, make_server

SCRIPT = ["The dashboard is loading really slowly", "no, it's still slow", "yes it works now", "5",
          "the export", "My CSV export is empty, broken or fails", "yes", "4"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float], seconds: float | None = None) -> dict[str, float]:
    result = {"turns": len(values), "p50_ms": round(percentile(values, 0.5), 1),
              "p99_ms": round(percentile(values, 0.99), 1), "mean_ms": round(statistics.fmean(values), 1)}
    if seconds:
        result["turns_per_s"] = round(len(values) / seconds, 1)
    return result


def user(base: str, turns: int) -> list[float]:
    """One user's conversation; returns the latency of each turn in ms."""
    client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(path: str, body: dict) -> dict:
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with client.open(request, timeout=300) as response:
            return json.loads(response.read())

    conversation = post("/api/v1/conversations", {})["conversation_id"]
    latencies = []
    for text in (SCRIPT * (turns // len(SCRIPT) + 1))[:turns]:
        started = time.perf_counter()
        post(f"/api/v1/conversations/{conversation}/messages", {"text": text})
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=4, help="turns per user")
    parser.add_argument("--users", default="1,50", help="concurrent users per run, comma-separated")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--raw", type=int, default=40, help="in-process Assistant.answer calls")
    args = parser.parse_args()
    results: dict = {"threads": args.threads, "turns_per_user": args.turns, "runs": {}}
    with tempfile.TemporaryDirectory() as folder:
        # The limit is lifted: a load test is a flood by design.
        settings = load_settings(environ={}, default_file=None, data_dir=Path(folder), port=0,
                                 threads=args.threads, simulation_faults=["slow_queries"],
                                 rate_limit_messages=1_000_000, rate_limit_per_address=1_000_000,
                                 learn_from_confirmations=False)
        knowledge, _ = open_index(settings, load_pack(settings)[1])
        parts = build(settings, knowledge=knowledge)
        knowledge.embedder.encode_one("warm up")
        raw = []
        for n in range(args.raw):
            started = time.perf_counter()
            parts.assistant.answer(SCRIPT[(n * 4) % len(SCRIPT)], f"raw-{n}")
            raw.append((time.perf_counter() - started) * 1000)
        results["raw_pipeline"] = summary(raw)
        server = BackgroundServer(make_server(settings, parts)).start()
        try:
            for users in [int(u) for u in args.users.split(",")]:
                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=users) as pool:
                    latencies = [ms for one in pool.map(lambda _: user(server.url, args.turns), range(users))
                                 for ms in one]
                results["runs"][str(users)] = summary(latencies, time.perf_counter() - started)
        finally:
            server.stop()
            parts.close()
    print(f"waitress, 1 process, {args.threads} threads; {args.turns} turns per user")
    print(f"{'':<26}{'turns':>7}{'p50 ms':>10}{'p99 ms':>10}{'turns/s':>10}")
    print(f"{'Assistant.answer (raw)':<26}{raw and len(raw):>7}{results['raw_pipeline']['p50_ms']:>10}"
          f"{results['raw_pipeline']['p99_ms']:>10}{'':>10}")
    for users, row in results["runs"].items():
        print(f"{users + ' user(s) over HTTP':<26}{row['turns']:>7}{row['p50_ms']:>10}{row['p99_ms']:>10}"
              f"{row['turns_per_s']:>10}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
