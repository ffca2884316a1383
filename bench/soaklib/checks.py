"""After the traffic: every conversation read back as its user, the DuckDB file read through `firstline sql`, the
memory figures, and the checks made of them."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.soaklib.context import Context
from bench.soaklib.ledger import Conversation, Ledger
from bench.soaklib.scrape import SOURCE_DOWN
from bench.soaklib.server import Server
from engine.store.audit import AUDIT_COUNTS, AUDIT_QUERIES  # SQL lives in the store

RSS_BOUND = (1.25, 50.0)  # end RSS <= start RSS * 1.25 + 50 MB
# What /metrics answers while its telemetry source cannot be read (a TelemetryError, web/errors.py), so that
# Prometheus marks the target down; any other 5xx of it, a 500 included, is a fault of the server.
SOURCE_DOWN_STATUS = "503"
# What the receiver answers each kind of notification with (docs/self-healing.md).
ALERT_EXPECTED = {"firing": 200, "resolved": 200, "repeat": 200, "empty_fingerprint": 200, "large": 200,
                  "storm": 200, "malformed_json": 400, "schema_error": 400, "lone_surrogate": 400,
                  "wrong_content_type": 400, "no_token": 401, "wrong_role": 403, "oversized": 413}


def read_back(ctx: Context) -> dict[str, Any]:
    """Every conversation read back through the API as its user: its accepted user messages, in order."""
    lost, extra, gone_but_deleted, checked = [], 0, 0, 0
    with ctx.ledger.lock:
        items = list(ctx.ledger.conversations.items())
        owners = dict(ctx.ledger.owners)

    def one(item: tuple[str, Conversation]) -> tuple[str, list[str], int, str]:
        conversation_id, conv = item
        reply = owners[conv.owner].call("GET", f"/api/v1/conversations/{conversation_id}/messages",
                                        "GET /api/v1/conversations/{id}/messages (read-back)")
        if conv.deleted:
            return conversation_id, [], 0, "deleted" if reply.status == 404 else f"deleted but {reply.status}"
        if reply.status != 200:
            return conversation_id, list(conv.texts), 0, f"status {reply.status}"
        stored = [m["text"] for m in reply.json()["messages"] if m["role"] == "user"]
        missing, at = [], 0
        for text in conv.texts:  # every accepted text, in order
            try:
                at = stored.index(text, at) + 1
            except ValueError:
                missing.append(text)
        return conversation_id, missing, len(stored) - (len(conv.texts) - len(missing)), "ok"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, items))
    for conversation_id, missing, more, how in results:
        if how == "deleted":
            gone_but_deleted += 1
            continue
        checked += 1
        extra += more
        if missing or how != "ok":
            lost.append({"conversation": conversation_id, "missing": missing[:5], "how": how})
    return {"conversations": len(items), "read": checked, "deleted_and_gone": gone_but_deleted,
            "lost": lost[:20], "conversations_with_loss": len(lost),
            "messages_lost": sum(len(x["missing"]) for x in lost), "stored_not_accepted": extra}


def check_database(server: Server, ledger: Ledger) -> dict[str, Any]:
    """The DuckDB file after the server stopped, through `firstline sql`."""
    rows = server.sql(AUDIT_QUERIES["user_messages"])
    stored: dict[str, Counter[str]] = defaultdict(Counter)
    for conversation_id, text in rows:
        stored[conversation_id][text] += 1
    lost, deleted_left = 0, 0
    for conversation_id, conv in ledger.conversations.items():
        if conv.deleted:
            deleted_left += sum(stored.get(conversation_id, Counter()).values())
            continue
        lost += sum((Counter(conv.texts) - stored.get(conversation_id, Counter())).values())
    alerts = {tuple(r) for r in server.sql(AUDIT_QUERIES["alert_keys"])}
    missing_alerts = ledger.alert_keys - alerts
    notifications = server.sql(AUDIT_QUERIES["notification_figures"])[0]
    tables = {r[0] for r in server.sql(AUDIT_QUERIES["tables"])}
    dead = {}
    if "dead_letters" in tables:
        dead = {r[0]: (r[1], r[2]) for r in server.sql(AUDIT_QUERIES["dead_letters"])}
    refusals_missing = [r for r in ledger.refusals if not r["dead_letter"] or r["dead_letter"] not in dead
                        or dead[r["dead_letter"]][0] != r["status"]]
    figures: dict[str, Any] = {
        "user_messages_stored": len(rows), "messages_lost": lost, "deleted_users_messages_left": deleted_left,
        "alerts_stored": len(alerts), "alert_keys_accepted": len(ledger.alert_keys),
        "alerts_missing": len(missing_alerts), "alerts_missing_examples": sorted(missing_alerts)[:5],
        "notifications_stored": int(notifications[0]), "notifications_accepted": ledger.notifications_accepted,
        "summarised_stored": int(notifications[1]), "summarised_expected": ledger.summarised_expected,
        "truncated_stored": int(notifications[2]), "truncated_sent": ledger.truncated_sent,
        "derived_fingerprints": int(notifications[3]),
        "dead_letter_table": "dead_letters" in tables, "dead_letters": len(dead), "refusals": len(ledger.refusals),
        "refusals_not_kept": refusals_missing[:10], "refusals_not_kept_count": len(refusals_missing),
    }
    for name, query in AUDIT_COUNTS.items():
        figures[name] = int(server.sql(query)[0][0])
    figures["remediations"] = {f"{r[0]} {r[1]}": int(r[2]) for r in server.sql(
        AUDIT_QUERIES["remediations_by_requester"])}
    figures["signals"] = {f"{r[0]} {r[1]}": int(r[2]) for r in server.sql(
        AUDIT_QUERIES["signals_by_kind"])}
    if "telemetry_problems" in tables:
        figures["telemetry_problems"] = {r[0]: int(r[1]) for r in server.sql(
            AUDIT_QUERIES["telemetry_problems_by_reason"])}
    return figures


def memory_figures(samples: list[tuple[float, float, int, int, float]], warmup_s: float,
                   duration: float) -> dict[str, Any]:
    after = [s for s in samples if s[0] >= warmup_s] or samples[-1:]
    start, end = after[0], after[-1]
    half = [s for s in after if s[0] >= duration / 2]
    slope = None
    if len(half) >= 3:
        xs, ys = [s[0] / 60 for s in half], [s[1] for s in half]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    bound = start[1] * RSS_BOUND[0] + RSS_BOUND[1]
    return {"samples": len(samples), "warmup_s": warmup_s, "first_mb": round(samples[0][1], 1),
            "start_mb": round(start[1], 1), "end_mb": round(end[1], 1), "max_mb": round(max(s[1] for s in samples), 1),
            "second_half_slope_mb_per_min": round(slope, 2) if slope is not None else None,
            "bound_mb": round(bound, 1), "threads_start": start[2], "threads_end": end[2], "threads_max":
            max(s[2] for s in samples), "fds_start": start[3], "fds_end": end[3], "fds_max": max(s[3] for s in samples),
            "cpu_s": round(end[4] - start[4], 1),
            "rss_series": [[round(s[0]), round(s[1], 1)] for s in samples[::5]]}  # every 10 s: t, MB


def unexpected_5xx(by_endpoint: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Every endpoint's 5xx answers, status -> count, but for `/metrics` saying "source down" while it is."""
    fives = {}
    for endpoint, row in by_endpoint.items():
        mine = {s: n for s, n in row["by_status"].items()
                if s.startswith("5") and not (endpoint == SOURCE_DOWN and s == SOURCE_DOWN_STATUS)}
        if mine:
            fives[endpoint] = mine
    return fives


def checks(results: dict[str, Any], ledger: Ledger) -> list[dict[str, Any]]:
    by_endpoint = results["requests"]["by_endpoint"]
    fives = unexpected_5xx(by_endpoint)
    transport = sum(row["by_status"].get("0", 0) for row in by_endpoint.values())
    memory, back, db = results["memory"], results["read_back"], results["database"]
    wrong = Counter((k, s) for k, s in ledger.alert_posts if ALERT_EXPECTED.get(k) != s)
    return [
        {"name": "zero 5xx", "passed": not fives,
         "detail": "none" if not fives else json.dumps(fives)},
        {"name": "no dropped connection", "passed": transport == 0,
         "detail": f"{transport} requests without an answer"},
        {"name": f"memory: end RSS <= start x {RSS_BOUND[0]} + {RSS_BOUND[1]:g} MB",
         "passed": memory["end_mb"] <= memory["bound_mb"],
         "detail": f"start {memory['start_mb']} MB, end {memory['end_mb']} MB, bound {memory['bound_mb']} MB"},
        {"name": "no lost accepted message (API read-back)",
         "passed": back["messages_lost"] == 0 and back["conversations_with_loss"] == 0,
         "detail": f"{back['messages_lost']} lost in {back['conversations_with_loss']} of {back['read']} "
                   "conversations"},
        {"name": "no lost accepted message (DuckDB file)", "passed": db["messages_lost"] == 0,
         "detail": f"{db['messages_lost']} lost; {db['deleted_users_messages_left']} left of deleted users"},
        {"name": "deleted histories are gone", "passed": db["deleted_users_messages_left"] == 0,
         "detail": f"{back['deleted_and_gone']} conversations 404, {db['deleted_users_messages_left']} messages left"},
        {"name": "no lost accepted alert", "passed": db["alerts_missing"] == 0
         and db["notifications_stored"] == db["notifications_accepted"]
         and db["summarised_stored"] == db["summarised_expected"],
         "detail": f"{db['alerts_missing']} of {db['alert_keys_accepted']} missing; notifications "
                   f"{db['notifications_stored']} stored / {db['notifications_accepted']} accepted; summarised "
                   f"{db['summarised_stored']} / {db['summarised_expected']}"},
        {"name": "every refused notification is a dead letter",
         "passed": db["refusals_not_kept_count"] == 0 if db["dead_letter_table"] else None,
         "detail": (f"{db['refusals'] - db['refusals_not_kept_count']} of {db['refusals']} kept"
                    if db["dead_letter_table"] else "not checked: no dead_letters table")},
        {"name": "the receiver answers each kind as documented", "passed": not wrong,
         "detail": "yes" if not wrong else "; ".join(f"{k}: {s} x{n}" for (k, s), n in sorted(wrong.items()))},
        {"name": "the server's log has no traceback", "passed": not results["server"]["log"]["tracebacks"],
         "detail": f"{results['server']['log']['tracebacks']} tracebacks, "
                   f"{results['server']['log']['unhandled errors']} unhandled errors"},
        {"name": "the server stops cleanly on SIGINT", "passed": results["server"]["exit_code"] == 0
         and results["server"]["stopped_by"] == "SIGINT",
         "detail": f"exit {results['server']['exit_code']} ({results['server']['stopped_by']}) in "
                   f"{results['server']['stop_s']} s"},
        {"name": "no error in this script", "passed": not ledger.bench_errors,
         "detail": f"{len(ledger.bench_errors)} errors"},
    ]

