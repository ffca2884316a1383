"""How fast the metric views answer on big event stores: every line of the seed's table at 1 M and 10 M
conversations, against a plain count of the conversations table in the same run.

The store is a real Firstline store (the migrations and the metric views of `engine/store/`), filled with
generated rows in the shapes the product writes: per conversation 1-4 user messages, 1-3 decisions (answers,
clarifications, escalations, declines), the user's verdicts, ratings on about a third, hand-offs, business
escalations with their decisions, and faults with remediations. The shares are fixed and seeded (DuckDB's
`hash` of the row number), so two runs build the same store. Each query runs `--repeats` times on a warm
database; the table gives the median and its ratio to the count(*) baseline.

usage: python bench/metrics_scale.py [--sizes 1000000 10000000] [--repeats 5] [--out bench/results/metrics_scale.json]
Prints a readable table and writes the JSON (also its last line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.analytics.metrics import METRICS
from engine.store.analyst import AnalystQueries
from engine.store.database import DuckDBStore

DAYS = 90
START = dt.datetime(2026, 9, 1, tzinfo=dt.UTC).timestamp()
NOW = START + DAYS * 86400.0
SQL_FILE = Path(__file__).with_suffix(".sql")  # the generator and the reads; SQL lives outside Python here


def sections() -> tuple[list[str], str, str]:
    """(the generating statements, the row-count query, the baseline query) of SQL_FILE."""
    text = SQL_FILE.read_text(encoding="utf-8")
    generate, rows = text.split("-- @rows", 1)
    rows, baseline = rows.split("-- @baseline", 1)
    statements = [s.strip() for s in generate.split(";\n") if s.strip()]

    def query(section: str) -> str:  # the query under the section's heading line
        return section.split("\n", 1)[1].strip().rstrip(";")
    return statements, query(rows), query(baseline)


def fill(store: DuckDBStore, conversations: int) -> None:
    """Generate the rows of `conversations` conversations spread over DAYS days."""
    statements, _, _ = sections()
    for sql in statements:
        store.transaction([(sql.format(n=conversations, users=max(1, conversations // 5), days=DAYS, start=START),
                            ())])


def timed(console: AnalystQueries, sql: str, repeats: int) -> float:
    """The median time, in ms, of `repeats` runs of `sql` through the analysts' console (the path every figure
    takes: statement checks, a read-only transaction, the row cap)."""
    runs = []
    params = {"since": "2026-01-01"} if ":since" in sql else {}
    for _ in range(repeats):
        started = time.perf_counter()
        console.run(sql, params)
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def measure(size: int, repeats: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        store = DuckDBStore(Path(folder) / "scale.duckdb", clock=lambda: NOW)
        console = AnalystQueries(store, clock=lambda: NOW, time_limit_s=600.0, row_cap=1000)
        started = time.perf_counter()
        fill(store, size)
        built_s = time.perf_counter() - started
        _, count_rows, baseline_sql = sections()
        found = console.run(count_rows).to_json()
        rows = dict(zip(found["columns"], found["rows"][0], strict=True))
        timed(console, baseline_sql, 1)  # warm the file
        baseline = timed(console, baseline_sql, repeats)
        queries = {m.key: timed(console, m.sql, repeats) for m in METRICS}
        size_mb = sum(p.stat().st_size for p in Path(folder).glob("scale.duckdb*")) / 1e6
        store.close()
    return {"conversations": size, "rows": rows, "build_s": round(built_s, 1), "file_mb": round(size_mb, 1),
            "baseline_ms": round(baseline, 2),
            "metrics_ms": {k: round(v, 1) for k, v in queries.items()},
            "ratio_to_baseline": {k: round(v / baseline, 1) if baseline else None for k, v in queries.items()},
            "slowest_ms": round(max(queries.values()), 1), "all_lines_ms": round(sum(queries.values()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results/metrics_scale.json"))
    args = parser.parse_args()
    results = [measure(size, args.repeats) for size in args.sizes]
    keys = [m.key for m in METRICS]
    print(f"median of {args.repeats} runs, ms (ratio to SELECT count(*) on the same store)")
    print(f"{'metric':30}" + "".join(f"{r['conversations']:>24,}" for r in results))
    print(f"{'count(*) baseline':30}" + "".join(f"{r['baseline_ms']:>24}" for r in results))
    for key in keys:
        print(f"{key:30}" + "".join(f"{r['metrics_ms'][key]:>14} ({r['ratio_to_baseline'][key]:>6}x)"  # type: ignore[index]
                                    for r in results))
    print(f"{'whole table':30}" + "".join(f"{r['all_lines_ms']:>24}" for r in results))
    print(f"{'store build s / file MB':30}" + "".join(f"{r['build_s']:>15} / {r['file_mb']:>6}" for r in results))
    report = {"bench": "metrics_scale", "repeats": args.repeats, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
