"""The chat users: browsers (a session cookie each, some vouched for by the host app), integrations (a user
token), their conversations through the JSON API and as server-sent events, one-shot messages, ratings, reloads,
bad bodies, impatient users who meet the rate limit, users who delete their history."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
from collections import defaultdict
from typing import Any

from bench.soaklib.client import Client
from bench.soaklib.context import Context
from bench.soaklib.server import IDENTITY_SECRET
from core.settings import PROJECT_ROOT

OPENINGS = PROJECT_ROOT / "data/simulation/messages.tsv"
REPLIES = PROJECT_ROOT / "data/eval/independent/replies_dev.tsv"
SITUATION = {"verifying": "A", "confirming": "B", "choosing": "C", "rating": "D", "checking_answer": "E"}
IMPATIENT = ["hello?", "anyone there?", "HELLO", "this is urgent", "???", "my dashboard is still slow!!",
             "why is nobody answering", "hello", "pls help", "still waiting"]
STATUS_BY_ERROR = {"conflict": 409, "rate_limited": 429, "not_found": 404, "forbidden": 403, "unauthorized": 401,
                   "unavailable": 500, "internal_error": 500}


def load_texts() -> tuple[list[str], dict[str, list[str]]]:
    openings = [line.split("\t")[0] for line in OPENINGS.read_text(encoding="utf-8").splitlines()[1:]
                if line and not line.startswith("#") and not line.startswith("text\t")]
    replies: dict[str, list[str]] = defaultdict(list)
    for line in REPLIES.read_text(encoding="utf-8").splitlines()[1:]:
        situation, reply = line.split("\t")[:2]
        replies[situation].append(reply)
    return openings, dict(replies)


def chat_worker(ctx: Context, index: int) -> None:
    """Users one after another: each a browser or an integration, one or more conversations, then gone."""
    rng = random.Random(f"{ctx.seed}-chat-{index}")
    n = 0
    while ctx.running():
        n += 1
        kind = rng.choices(["browser", "vouched", "integration"], weights=[55, 35, 10])[0]
        if kind == "integration":
            client, owner = Client(ctx.base, ctx.recorder, token=ctx.tokens["bot"], cookies=False), "bot"
        else:
            client = Client(ctx.base, ctx.recorder)
            owner = f"anonymous-{index}-{n}"
            if kind == "vouched":
                user_id = f"u{index}-{rng.randrange(40)}"  # a pool per worker: a user comes back, never twice at once
                reply = client.call("POST", "/api/v1/identity", "POST /api/v1/identity",
                                    {"user_id": user_id, "user_hash": hmac.new(
                                        IDENTITY_SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()})
                if reply.status == 200:
                    owner = user_id
                if rng.random() < 0.5:
                    client.call("GET", "/api/v1/conversations", "GET /api/v1/conversations")
        ctx.ledger.count(f"users ({kind})")
        if kind != "integration" and rng.random() < 0.03:
            impatient(ctx, rng, client, owner)
        else:
            for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
                if not ctx.running():
                    break
                if rng.random() < 0.1:
                    one_shot(ctx, rng, client, owner)
                else:
                    conversation(ctx, rng, client, owner, stream=kind != "integration" and rng.random() < 0.3)
                ctx.pause(rng, 0.5, 2.0)
        if kind != "integration" and rng.random() < 0.04:
            reply = client.call("DELETE", "/api/v1/history", "DELETE /api/v1/history")
            if reply.status == 200:
                ctx.ledger.forget(owner)
        ctx.pause(rng, 0.2, 1.0)


def open_conversation(ctx: Context, client: Client, owner: str, counted_as: str) -> str | None:
    """A new conversation of `owner`'s, in the ledger and counted under `counted_as`; its id, or None when refused."""
    reply = client.call("POST", "/api/v1/conversations", "POST /api/v1/conversations", {})
    if reply.status != 201:
        return None
    conversation_id: str = reply.json()["conversation_id"]
    ctx.ledger.conversation(conversation_id, owner, client)
    ctx.ledger.count(counted_as)
    return conversation_id


def conversation(ctx: Context, rng: random.Random, client: Client, owner: str, stream: bool) -> None:
    conversation_id = open_conversation(ctx, client, owner, "conversations")
    if conversation_id is None:
        return
    text = rng.choice(ctx.openings)
    for turn in range(7):
        if not ctx.running():
            return
        if rng.random() < 0.03:
            bad_turn(ctx, rng, client, conversation_id)
        exchange = send(ctx, client, conversation_id, text, stream)
        if exchange is None:
            return
        stage, choices = exchange.get("stage"), exchange.get("choices") or []
        ctx.pause(rng, 0.3, 2.5)
        if stage == "rating" and rng.random() < 0.3:
            rating = rng.randint(1, 5)
            answer = client.call("POST", f"/api/v1/conversations/{conversation_id}/feedback",
                                 "POST /api/v1/conversations/{id}/feedback",
                                 {"rating": rating, "comment": rng.choice(["", "quick!", "meh", "thanks a lot"])})
            if answer.status == 200:
                ctx.ledger.count("ratings")
            break
        if stage in SITUATION:
            if choices and rng.random() < 0.4:
                text = rng.choice(choices)["value"]  # a button
            else:
                text = rng.choice(ctx.replies[SITUATION[stage]])
        elif stage == "awaiting_decision" and rng.random() < 0.3:
            text = rng.choice(["any news?", "ok thanks", "how long will this take?"])
        elif stage == "open" and turn < 3 and rng.random() < 0.25:
            text = rng.choice(ctx.openings)  # another problem
        else:
            break
    if rng.random() < 0.3:  # the page reloaded
        client.call("GET", f"/api/v1/conversations/{conversation_id}/messages",
                    "GET /api/v1/conversations/{id}/messages")
    if rng.random() < 0.1 and ctx.ledger.decisions:
        decision = ctx.ledger.decisions[-1]  # most likely someone else's: the same 404 as for none
        client.call("GET", f"/api/v1/decisions/{decision}/trace", "GET /api/v1/decisions/{id}/trace (user)")


def send(ctx: Context, client: Client, conversation_id: str, text: str, stream: bool) -> dict[str, Any] | None:
    """One turn; the exchange when it was answered, else None (the text is in the ledger when it was accepted)."""
    path = f"/api/v1/conversations/{conversation_id}/messages"
    if not stream:
        reply = client.call("POST", path, "POST /api/v1/conversations/{id}/messages", {"text": text})
        exchange = reply.json() if reply.status == 200 else None
        status = reply.status
    else:
        reply = client.call("POST", path, "", {"text": text}, accept="text/event-stream", record=False)
        exchange, status = None, reply.status
        if reply.status == 200:
            for block in reply.body.decode("utf-8", "replace").split("\n\n"):
                event = re.search(r"^event: (\w+)$", block, re.M)
                data = re.search(r"^data: (.*)$", block, re.M)
                if event and data and event.group(1) == "turn":
                    exchange = json.loads(data.group(1))
                elif event and data and event.group(1) == "error":
                    code = json.loads(data.group(1)).get("error", {}).get("code", "error")
                    status = STATUS_BY_ERROR.get(code, 400)
                    ctx.ledger.count(f"stream error events: {code}")
        ctx.recorder.add("POST /api/v1/conversations/{id}/messages (stream)", status, reply.ms, reply.error)
    if exchange is not None:
        ctx.ledger.accepted(conversation_id, text, exchange.get("decision_id"))
    elif status == 429:
        ctx.ledger.refused(conversation_id, text)
    return exchange


def bad_turn(ctx: Context, rng: random.Random, client: Client, conversation_id: str) -> None:
    path, endpoint = f"/api/v1/conversations/{conversation_id}/messages", "POST /api/v1/conversations/{id}/messages"
    kind = rng.choice(["empty", "too_long", "not_json", "not_text"])
    if kind == "not_json":
        client.call("POST", path, endpoint + " (bad body)", raw=b"{text: hello")
    else:
        body = {"empty": {"text": "   "}, "too_long": {"text": "slow " * 900}, "not_text": {"text": 5}}[kind]
        client.call("POST", path, endpoint + " (bad body)", body)
    ctx.ledger.count("bad bodies sent")


def one_shot(ctx: Context, rng: random.Random, client: Client, owner: str) -> None:
    text = rng.choice(ctx.openings)
    explain = rng.random() < 0.3
    reply = client.call("POST", "/api/v1/messages", "POST /api/v1/messages", {"text": text, "explain": explain})
    if reply.status == 200:
        answer = reply.json()
        ctx.ledger.conversation(answer["conversation_id"], owner, client)
        ctx.ledger.accepted(answer["conversation_id"], text, answer.get("decision_id"))
        if rng.random() < 0.3 and answer.get("decision_id"):
            client.call("GET", f"/api/v1/decisions/{answer['decision_id']}/trace",
                        "GET /api/v1/decisions/{id}/trace (user)")


def impatient(ctx: Context, rng: random.Random, client: Client, owner: str) -> None:
    """A user who types faster than anyone is answered: meets the per-user limit (30 writes a minute)."""
    conversation_id = open_conversation(ctx, client, owner, "impatient users")
    if conversation_id is None:
        return
    for _ in range(36):
        if not ctx.running():
            return
        send(ctx, client, conversation_id, rng.choice(IMPATIENT), stream=False)

