"""Alertmanager: version-4 webhooks with an operator's token (firing, resolved, repeated, without a fingerprint,
1,200 alerts in one, a storm) and bad ones (malformed, schema errors, a lone surrogate, the wrong Content-Type, no
token, the wrong role, over 10 MiB); what the receiver accepted or refused goes into the ledger."""

from __future__ import annotations

import json
import random
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from bench.soaklib.client import Client
from bench.soaklib.context import Context
from bench.soaklib.source import Series

ALERTMANAGER = "/api/v1/alerts/alertmanager"
STORED_PER_NOTIFICATION = 1000  # docs/self-healing.md: alerts of one notification stored one by one, firing first


def fnv_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (prometheus/common model.LabelSet.Fingerprint), written here from
    its definition rather than imported, so the receiver's derivation is checked against an independent copy."""
    value = 14695981039346656037
    for name in sorted(labels, key=lambda n: n.encode()):
        for byte in (*name.encode(), 0xFF, *labels[name].encode(), 0xFF):
            value = ((value ^ byte) * 1099511628211) % 2**64
    return f"{value:016x}"


ALERT_NAMES = {"latency_p95_ms": "HighLatency", "error_rate": "ErrorRateHigh", "memory_pct": "MemoryWillRunOut",
               "cpu_pct": "CPUHigh", "slow_queries": "SlowQueries", "pool_used_pct": "PoolExhausted",
               "cache_hit_ratio": "CacheHitRatioLow", "queue_depth": "QueueBacklog", "failed_jobs": "JobsFailing"}


def now_rfc3339(offset_ms: int = 0) -> str:
    moment = datetime.fromtimestamp(time.time() + offset_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_alert(rng: random.Random, series: Series, status: str = "firing", starts_at: str | None = None,
               instance: str | None = None, fingerprint: str | None = "auto", pad: int = 0) -> dict[str, Any]:
    labels = {"alertname": ALERT_NAMES.get(series.metric, "Trouble"), "service": series.service,
              "metric": series.metric, "severity": rng.choice(["warning", "critical"]),
              "instance": instance or f"{series.service}-{rng.randint(1, 3)}"}
    alert: dict[str, Any] = {
        "status": status, "labels": labels,
        "annotations": {"summary": f"{series.metric} on {series.service} past {series.limit:g}",
                        "description": "predicted to cross its limit within 30 minutes" + " ." * pad},
        "startsAt": starts_at or now_rfc3339(), "endsAt": now_rfc3339() if status == "resolved" else
        "0001-01-01T00:00:00Z", "generatorURL": f"http://prometheus:9090/graph?g0.expr=firstline_{series.metric}"}
    if fingerprint == "auto":
        alert["fingerprint"] = fnv_fingerprint(labels)
    elif fingerprint is not None:
        alert["fingerprint"] = fingerprint
    return alert


def notification(alerts: list[dict[str, Any]], truncated: int = 0) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    name = alerts[0]["labels"]["alertname"]
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{name}"}}', "truncatedAlerts": truncated,
            "status": status, "receiver": "firstline", "groupLabels": {"alertname": name}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts}


def alert_worker(ctx: Context) -> None:
    rng = random.Random(f"{ctx.seed}-alerts")
    operator = Client(ctx.base, ctx.recorder, token=ctx.tokens["operator"], cookies=False)
    series = ctx.source.series
    firing: list[dict[str, Any]] = []  # sent firing, not yet resolved
    sent: deque[dict[str, Any]] = deque(maxlen=20)  # accepted bodies, to repeat (Alertmanager retries)
    once = {"storm": 0.45, "large": 0.6, "oversized": 0.7}
    while ctx.running():
        share = ctx.elapsed() / ctx.duration
        due = [kind for kind, at in once.items() if share >= at]
        if due:
            kind = due[0]
            del once[kind]
        else:
            kind = rng.choices(["firing", "resolved", "repeat", "empty_fingerprint", "malformed_json",
                                "schema_error", "lone_surrogate", "wrong_content_type", "no_token", "wrong_role"],
                               weights=[50, 15, 8, 6, 4, 4, 2, 2, 2, 2])[0]
        if (kind == "resolved" and not firing) or (kind == "repeat" and not sent):
            kind = "firing"
        if kind == "storm":
            storm = [s for s in series if s.service in ("web", "api", "auth", "queue", "database")]
            for i in range(5):
                alerts = [make_alert(rng, rng.choice(storm), instance=f"storm-{i}-{j}") for j in range(120)]
                post_alerts(ctx, operator, "storm", notification(alerts, truncated=120 if i == 2 else 0))
                ctx.stop.wait(2)
            continue
        if kind == "large":
            alerts = [make_alert(rng, rng.choice(series), instance=f"large-{j}", pad=300) for j in range(1200)]
            post_alerts(ctx, operator, kind, notification(alerts))
        elif kind == "oversized":
            alerts = [make_alert(rng, rng.choice(series), instance=f"huge-{j}", pad=5000) for j in range(1100)]
            post_alerts(ctx, operator, kind, notification(alerts))
        elif kind == "firing":
            alerts = [make_alert(rng, rng.choice(series)) for _ in range(rng.randint(1, 4))]
            body = notification(alerts)
            if post_alerts(ctx, operator, kind, body) == 200:
                firing.extend(alerts)
                del firing[:-200]
                sent.append(body)
        elif kind == "resolved":
            chosen = [firing.pop(rng.randrange(len(firing))) for _ in range(min(len(firing), rng.randint(1, 3)))]
            body = notification([{**a, "status": "resolved", "endsAt": now_rfc3339()} for a in chosen])
            if post_alerts(ctx, operator, kind, body) == 200:
                sent.append(body)
        elif kind == "repeat":
            post_alerts(ctx, operator, kind, rng.choice(list(sent)))
        elif kind == "empty_fingerprint":
            body = notification([make_alert(rng, rng.choice(series), fingerprint=rng.choice(["", None]))
                                 for _ in range(rng.randint(1, 3))])
            if post_alerts(ctx, operator, kind, body) == 200:
                sent.append(body)
        elif kind == "malformed_json":
            text = json.dumps(notification([make_alert(rng, rng.choice(series))]))
            post_alerts(ctx, operator, kind, None, raw=text[: rng.randint(10, len(text) - 5)].encode())
        elif kind == "schema_error":
            body = notification([make_alert(rng, rng.choice(series))])
            broken = rng.choice(["startsAt", "version", "alerts", "status"])
            if broken == "startsAt":
                del body["alerts"][0]["startsAt"]
            elif broken == "version":
                body["version"] = "3"
            elif broken == "alerts":
                body["alerts"] = []
            else:
                body["alerts"][0]["status"] = "pending"
            post_alerts(ctx, operator, kind, body)
        elif kind == "lone_surrogate":
            text = json.dumps(notification([make_alert(rng, rng.choice(series))]))
            broken = text.replace('"severity": "', '"severity": "\\ud800', 1)
            post_alerts(ctx, operator, kind, None, raw=broken.encode())
        elif kind == "wrong_content_type":
            post_alerts(ctx, operator, kind, None, raw=json.dumps(notification([make_alert(rng, rng.choice(series))]))
                        .encode(), content_type="text/plain")
        elif kind in ("no_token", "wrong_role"):
            post_alerts(ctx, operator, kind, notification([make_alert(rng, rng.choice(series))]),
                        token=None if kind == "no_token" else ctx.tokens["curator"])
        ctx.pause(rng, 1.5, 5.0)


def post_alerts(ctx: Context, client: Client, kind: str, body: dict[str, Any] | None, raw: bytes | None = None,
                content_type: str = "application/json", token: str | bool | None = True) -> int:
    data = raw if raw is not None else json.dumps(body).encode()
    reply = client.call("POST", ALERTMANAGER, f"POST {ALERTMANAGER}", raw=data, content_type=content_type,
                        token=token)
    ledger = ctx.ledger
    with ledger.lock:
        ledger.alert_posts.append((kind, reply.status))
        if 200 <= reply.status < 300 and body is not None:
            alerts = body["alerts"]
            ordered = [a for a in alerts if a["status"] == "firing"] + [a for a in alerts if a["status"] != "firing"]
            for alert in ordered[:STORED_PER_NOTIFICATION]:
                fingerprint = alert.get("fingerprint") or fnv_fingerprint(alert["labels"])
                ledger.alert_keys.add((fingerprint, alert["startsAt"], alert["status"]))
            ledger.notifications_accepted += 1
            ledger.summarised_expected += max(0, len(alerts) - STORED_PER_NOTIFICATION)
            ledger.truncated_sent += body.get("truncatedAlerts", 0)
            ledger.counts["alerts accepted (in 2xx notifications)"] += len(alerts)
        elif reply.status >= 400:
            ledger.refusals.append({"kind": kind, "status": reply.status, "bytes": len(data),
                                    "dead_letter": reply.headers.get("X-Firstline-Dead-Letter")})
    return reply.status

