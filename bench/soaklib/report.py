"""The soak's readable report: the request table, memory, what was sent and stored, and each check."""

from __future__ import annotations

import json
from typing import Any


def report(results: dict[str, Any]) -> None:
    requests = results.get("requests")
    if not requests:
        return
    print(f"soak: {results['traffic_s']} s of traffic, seed {results['seed']}, {results['chat_workers']} chat workers; "
          f"index {results['index']['build_s']} s ({'rebuilt' if results['index']['rebuilt'] else 'reused'}), "
          f"server up in {results['start_s']} s; machine: {results['machine']['cores']} cores, 1-min load median "
          f"{results['machine']['load_1min_median']}, max {results['machine']['load_1min_max']}")
    print(f"{'endpoint':<60}{'requests':>9}  {'p50 ms':>8}{'p95 ms':>9}  statuses")
    for endpoint, row in requests["by_endpoint"].items():
        statuses = " ".join(f"{s}:{n}" for s, n in row["by_status"].items())
        print(f"{endpoint:<60}{row['requests']:>9}  {row['p50_ms'] or '-':>8}{row['p95_ms'] or '-':>9}  {statuses}")
    print(f"{'all':<60}{requests['total']:>9}  {'':>17}  "
          + " ".join(f"{s}:{n}" for s, n in requests["by_status"].items()))
    m = results["memory"]
    print(f"server RSS: first {m['first_mb']} MB, start (after {m['warmup_s']:g} s) {m['start_mb']} MB, end "
          f"{m['end_mb']} MB, max {m['max_mb']} MB, second-half slope {m['second_half_slope_mb_per_min']} MB/min, "
          f"bound {m['bound_mb']} MB; threads {m['threads_start']} -> {m['threads_end']} (max {m['threads_max']}), "
          f"open files {m['fds_start']} -> {m['fds_end']} (max {m['fds_max']}), CPU {m['cpu_s']} s")
    print("chat: " + ", ".join(f"{k} {v}" for k, v in results["chat"].items()))
    print("alerts by kind: " + "; ".join(f"{k} {v}" for k, v in results["alerts"].items()))
    print("scrape source: " + ", ".join(f"{k} {v}" for k, v in results["scrape_source"].items()))
    print("GET /metrics while the source is down: " + "; ".join(
        f"{p['outage']} {p['status']} {p['code'] or ''}".strip() for p in results["metrics_during_outages"]))
    db = results["database"]
    print(f"store: {db['user_messages_stored']} user messages, {db['decisions']} decisions, {db['alerts_stored']} "
          f"alerts, {db['notifications_stored']} notifications ({db['summarised_stored']} summarised, "
          f"{db['truncated_stored']} truncated, {db['derived_fingerprints']} fingerprints derived), "
          f"{db['dead_letters']} dead letters, {db['incidents']} incidents ({db['storm_handoffs']} with a hand-off), "
          f"{db['handoffs']} hand-offs, {db['escalations']} escalations, {db['learned_rules']} learned rules")
    print("remediations: " + ", ".join(f"{k} {v}" for k, v in db["remediations"].items()))
    if "telemetry_problems" in db:
        print("telemetry problems stored: " + ", ".join(f"{k} {v}" for k, v in db["telemetry_problems"].items()))
    print("server: " + json.dumps({k: v for k, v in results["server"].items() if k != "stacks"}))
    if "stacks" in results["server"]:
        print("the server's threads when it would not stop:\n" + "\n".join(
            results["server"]["stacks"].splitlines()[:60]))
    for check in results["checks"]:
        mark = {True: "PASS", False: "FAIL", None: "----"}[check["passed"]]
        print(f"  {mark}  {check['name']}: {check['detail']}")
    for error in results["bench_errors"]:
        print(f"script error: {error}")
    print("passed" if results["passed"] else "FAILED")
