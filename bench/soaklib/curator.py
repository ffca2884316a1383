"""The curator: learned rules (list, read, diff, now and then approve or reject one), playbooks, the unmatched
queue, decision traces, with a curator's token."""

from __future__ import annotations

import random

from bench.soaklib.client import Client
from bench.soaklib.context import Context


def curator_worker(ctx: Context) -> None:
    rng = random.Random(f"{ctx.seed}-curator")
    curator = Client(ctx.base, ctx.recorder, token=ctx.tokens["curator"], cookies=False)
    changed: set[str] = set()
    while ctx.running():
        action = rng.choices(["rules", "rule", "playbooks", "unmatched", "trace"], weights=[3, 3, 2, 2, 3])[0]
        if action in ("rules", "rule"):
            status = rng.choice(["", "proposed", "shadow", "active"])
            reply = curator.call("GET", "/api/v1/learned-rules" + (f"?status={status}" if status else ""),
                                 "GET /api/v1/learned-rules")
            rules = (reply.json() or {}).get("rules", []) if reply.status == 200 else []
            if action == "rule" and rules:
                rule = rng.choice(rules)
                name = rule.get("name")
                curator.call("GET", f"/api/v1/learned-rules/{name}", "GET /api/v1/learned-rules/{name}")
                if rule.get("version", 1) > 1:
                    curator.call("GET", f"/api/v1/learned-rules/{name}/diff?old=1&new={rule['version']}",
                                 "GET /api/v1/learned-rules/{name}/diff")
                if name not in changed and rule.get("status") in ("proposed", "shadow") and rng.random() < 0.3:
                    verb = rng.choice(["approve", "reject"])
                    answer = curator.call("POST", f"/api/v1/learned-rules/{name}/{verb}",
                                          "POST /api/v1/learned-rules/{name}/{verb}",
                                          {"reason": f"soak curator: {verb}"})
                    if answer.status == 200:
                        changed.add(name)
                        ctx.ledger.count(f"learned rules {'approved' if verb == 'approve' else 'rejected'} by "
                                         "the curator")
        elif action == "playbooks":
            curator.call("GET", "/api/v1/playbooks", "GET /api/v1/playbooks")
        elif action == "unmatched":
            curator.call("GET", f"/api/v1/unmatched?limit={rng.choice([10, 50, 200])}", "GET /api/v1/unmatched")
        elif ctx.ledger.decisions:
            decision = rng.choice(list(ctx.ledger.decisions))
            curator.call("GET", f"/api/v1/decisions/{decision}/trace", "GET /api/v1/decisions/{id}/trace (curator)")
        ctx.pause(rng, 2.0, 6.0)

