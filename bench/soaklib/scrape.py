"""Prometheus, a load balancer and the operator: `/metrics` every 5 s (and once in each outage of the telemetry
source, which this worker switches on and off), the health check, the dead letters."""

from __future__ import annotations

import random

from bench.soaklib.client import Client
from bench.soaklib.context import Context
from bench.soaklib.source import FaultySource

SOURCE_DOWN = "GET /metrics (telemetry source down)"  # the endpoint the reads during an outage are recorded under


def scrape_worker(ctx: Context) -> None:
    """GET /metrics every 5 s as Prometheus would; switches the source's outages (15 s every 120 s, each of one kind,
    the kinds in turn) between reads, so a normal read never meets one, and probes /metrics once per outage."""
    rng = random.Random(f"{ctx.seed}-prometheus")
    kinds = list(FaultySource.OUTAGES)
    rng.shuffle(kinds)
    operator = Client(ctx.base, ctx.recorder, token=ctx.tokens["operator"], cookies=False)
    anonymous = Client(ctx.base, ctx.recorder, cookies=False)
    next_outage, outage_until, last_health, last_letters = min(90.0, ctx.duration * 0.3), -1.0, -1e9, -1e9
    while ctx.running():
        now = ctx.elapsed()
        if not ctx.source.outage and now >= next_outage:
            kind = kinds[len(ctx.ledger.outage_probes) % len(kinds)]
            with ctx.source.lock:
                ctx.source.outage = kind
            outage_until, next_outage = now + 15, next_outage + 120
            ctx.stop.wait(1)
            reply = operator.call("GET", "/metrics", SOURCE_DOWN)
            error = (reply.json() or {}).get("error", {}) if reply.status >= 400 else {}
            ctx.ledger.outage_probes.append({"outage": kind, "status": reply.status, "code": error.get("code"),
                                             "message": str(error.get("message", ""))[:200]})
        elif ctx.source.outage and now >= outage_until:
            with ctx.source.lock:
                ctx.source.outage = None
        elif not ctx.source.outage:
            operator.call("GET", "/metrics", "GET /metrics")
        if now - last_health >= 15:
            anonymous.call("GET", "/api/v1/health", "GET /api/v1/health")
            last_health = now
        if now - last_letters >= 60:
            operator.call("GET", "/api/v1/alerts/dead-letters?limit=50", "GET /api/v1/alerts/dead-letters")
            last_letters = now
        ctx.pause(rng, 4.5, 5.5)
    with ctx.source.lock:
        ctx.source.outage = None

