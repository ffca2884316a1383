"""The versioned JSON API for conversations: list, create, post a message (JSON or a progress stream), read,
rate, delete my history; and the deciders' side of business escalations."""

from __future__ import annotations

import json
import queue
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, session, stream_with_context

from core.errors import ForbiddenError, InputError, UnauthorizedError
from engine.access.identity import verify, verify_email
from engine.access.tokens import Role
from engine.chat.dialogue import Choice, Exchange
from engine.desk.desk import Decider
from engine.store.decisions import TranscriptLine
from engine.wiring import Outreach, Parts
from web.desk import decider_named, desk
from web.errors import error_body
from web.security import parsed_json

API = "/api/v1"
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")  # a JSON escape of a UTF-16 surrogate, paired or not


def _parts() -> Parts:
    return current_app.extensions["firstline"]


def _outreach() -> Outreach:
    found = _parts().outreach
    assert found is not None  # built with every Parts
    return found


def json_body() -> dict[str, Any]:
    """The request's JSON object, or an InputError that says what to send."""
    if not request.is_json:
        raise InputError("send a JSON body with Content-Type: application/json", code="invalid_body")
    try:
        request.get_data().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the body is not valid UTF-8; send JSON encoded as UTF-8", code="invalid_body") from None
    body = parsed_json(request)
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object, e.g. {\"text\": \"I can't log in\"}", code="invalid_body")
    if SURROGATE_ESCAPE.search(request.get_data()) and not _unicode(body):
        # A `\ud800` escape with no partner parses to a string no UTF-8 writer takes: the store, a YAML draft, an
        # HMAC over the text would each fail deep inside (a 500). Refused here, once, for every JSON route.
        raise InputError("the body has text that is not valid Unicode (an unpaired surrogate escape such as "
                         "\\ud800); send the text as UTF-8", code="invalid_body")
    return body


def _unicode(value: object) -> bool:
    """Whether every string in `value`, keys included, can be written as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def string_field(body: dict[str, Any], key: str = "text", required: bool = True) -> str | None:
    """`body[key]` when it is a string (None when absent and not `required`); else an InputError naming it."""
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        need = "is required and must be" if required else "must be"
        raise InputError(f"`{key}` {need} a string", code="invalid_body")
    return value


def flag_field(body: dict[str, Any], key: str) -> bool:
    """`body[key]` when it is true or false (false when absent); else an InputError naming it."""
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise InputError(f"`{key}` must be true or false", code="invalid_body")
    return value


def _choices(choices: tuple[Choice, ...]) -> list[dict[str, str]]:
    return [{"label": c.label, "value": c.value} for c in choices]


def exchange_json(exchange: Exchange) -> dict[str, Any]:
    """A turn as JSON; `answer` is the decision in the `ask --json` shape when one was made."""
    answer = exchange.answer
    return {
        "conversation_id": exchange.conversation_id,
        "stage": exchange.stage.value,
        "replies": list(exchange.replies),
        "choices": _choices(exchange.choices),
        "understood": exchange.understood,
        "decision_id": answer.decision_id if answer else None,
        "answer": answer.contract() if answer else None,
    }


def _line_json(line: TranscriptLine) -> dict[str, Any]:
    """A message read back; a reply that stated a decision carries its id and `detail`, the fields of the
    turn's `answer` the page shows as technical detail (so they survive a reload)."""
    decided = line.decision
    detail = None if decided is None else {
        "decision": decided.decision, "category": decided.category, "playbook": decided.playbook,
        "confidence": round(decided.confidence, 4), "rules_fired": list(decided.rules_fired),
        "actions": [{"name": name, "target": target, "status": status} for name, target, status in decided.actions]}
    return {"role": line.role, "text": line.text, "at": line.at,
            "decision_id": None if decided is None else decided.decision_id, "detail": detail}


def make_blueprint(workers: int, identity_secret: str = "") -> Blueprint:
    """The API's routes; streamed turns run on a pool of `workers` threads (each keeps one store cursor).
    `identity_secret` checks the identities host apps vouch for (engine/access/identity.py)."""
    api = Blueprint("api_v1", __name__, url_prefix=API)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="firstline-turn")

    @api.post("/identity")
    def identify():
        # The host app's page says who its signed-in user is, signed with the shared secret; from here on this
        # browser chats as that user, and remedies on their account may run.
        if g.channel == "api":
            raise InputError("an API token already says who you are; /identity is for the chat in a browser",
                             code="invalid_body")
        body = json_body()
        user_id = verify(identity_secret, body.get("user_id"), _signature(body, "user_hash"))
        answer: dict[str, Any] = {"user_id": user_id, "verified": True}
        if body.get("email") is not None or body.get("email_hash") is not None:
            # The user's address, signed by the host app for this user (so a browser cannot name a stranger's):
            # a person's answer is e-mailed there if they have left the chat. A wrong signature refuses it all.
            email = verify_email(identity_secret, user_id, body.get("email"), _signature(body, "email_hash"))
            answer["email"] = _outreach().identities.remember(user_id, email)
        session["user_id"], session["verified"] = user_id, True
        return jsonify(answer)

    @api.delete("/identity")
    def forget_identity():
        # The host app's user signed out: this browser is a new anonymous user (their history stays theirs).
        session.pop("verified", None)
        session["user_id"] = uuid.uuid4().hex
        return jsonify({"verified": False})

    @api.get("/conversations")
    def list_conversations():
        rows = _parts().dialogue.conversations(g.user_id)
        presence = _outreach().presence
        presence.reading(g.user_id)  # the user is on the chat (the away rule of engine/notify/sender.py)
        # `unseen_answer`: a person (a decider, engineering) answered in it since the user last opened it.
        unseen = presence.unseen(g.user_id)
        return jsonify({"conversations": [{"id": r.id, "channel": r.channel, "started_at": r.started_at,
                                           "last_at": r.last_at, "stage": r.stage, "messages": r.messages,
                                           "unseen_answer": r.id in unseen, "answered_at": unseen.get(r.id)}
                                          for r in rows]})

    @api.post("/conversations")
    def create_conversation():
        if request.get_data():
            json_body()  # an empty body is fine; a body must be a JSON object
        exchange = _parts().dialogue.start(g.user_id, g.channel)
        return jsonify(exchange_json(exchange)), 201

    @api.get("/conversations/<conversation_id>/messages")
    def conversation_messages(conversation_id: str):
        parts = _parts()
        stage, choices = parts.dialogue.status(conversation_id, g.user_id)  # someone else's: 404, as for none
        lines = parts.assistant.store.transcript(conversation_id, g.user_id)
        # Read: a person's answer in it is seen now (no e-mail for it, no unseen mark), and the user is on the chat.
        _outreach().presence.reading(g.user_id, conversation_id, max((line.at for line in lines), default=None))
        return jsonify({"conversation_id": conversation_id, "stage": stage.value, "choices": _choices(choices),
                        "messages": [_line_json(line) for line in lines]})

    @api.post("/conversations/<conversation_id>/messages")
    def post_turn(conversation_id: str):
        text = string_field(json_body())
        dialogue, user_id, channel = _parts().dialogue, g.user_id, g.channel
        if "text/event-stream" not in request.headers.get("Accept", ""):
            return jsonify(exchange_json(dialogue.turn(text, user_id, conversation_id, channel,
                                                       verified=g.verified)))
        # Checks that need no work answer as JSON errors before the stream starts.
        dialogue.status(conversation_id, user_id)
        return Response(stream_with_context(_stream(pool, dialogue, text, user_id, conversation_id, channel,
                                                    g.verified)),
                        mimetype="text/event-stream", headers={"Cache-Control": "no-store"})

    @api.post("/conversations/<conversation_id>/feedback")
    def rate(conversation_id: str):
        body = json_body()
        comment = string_field(body, "comment", required=False) or ""
        exchange = _parts().dialogue.rate(conversation_id, g.user_id, body.get("rating"), comment)
        return jsonify(exchange_json(exchange))

    @api.delete("/history")
    def delete_history():
        counts = _parts().dialogue.forget(g.user_id)
        return jsonify({"deleted": counts})

    @api.get("/escalations")
    def list_escalations():
        # The desk's queue (/desk/) as JSON: a status group (open, decided, expired, all) or one status, and a
        # category; open requests by deadline, soonest first.
        decider = _decider()
        rows = desk().queue(decider, request.args.get("status", "open"), request.args.get("category") or None)
        return jsonify({"escalations": rows})

    @api.get("/escalations/<escalation_id>")
    def escalation_detail(escalation_id: str):
        return jsonify(desk().detail(escalation_id, _decider()))

    @api.post("/escalations/<escalation_id>/decision")
    def decide(escalation_id: str):
        decider = _decider()
        body = json_body()
        outcome = string_field(body, "outcome") or ""
        # `note` is the first API's name for the reason; either may be sent.
        reason = string_field(body, "reason", required=False)
        reason = reason or string_field(body, "note", required=False)
        digest = string_field(body, "digest", required=False)
        done = desk().decide(escalation_id, decider, outcome, reason or "", digest,
                             not_business=flag_field(body, "not_business"))
        return jsonify(_after(done, escalation_id, decider))

    @api.post("/escalations/<escalation_id>/question")
    def ask(escalation_id: str):
        decider = _decider()
        body = json_body()
        question = string_field(body, "question") or ""
        done = desk().ask(escalation_id, decider, question, string_field(body, "digest", required=False))
        return jsonify(_after(done, escalation_id, decider))

    return api


def _signature(body: dict[str, Any], key: str) -> object:
    """`body[key]` as sent, refused when it is text with a character past ASCII: a hex digest has none, and
    `hmac.compare_digest` raises TypeError on one instead of answering "no match"."""
    value = body.get(key)
    if isinstance(value, str) and not value.isascii():
        raise InputError(f"`{key}` must be hex: the HMAC-SHA256 the host app computed under the shared identity "
                         "secret", code="invalid_body")
    return value


def _after(done: dict[str, Any], escalation_id: str, decider: Decider) -> dict[str, Any]:
    """An action's result with the request's queue row as it stands now."""
    return {"result": done, "escalation": desk().detail(escalation_id, decider, viewed=False)["escalation"]}


def _decider() -> Decider:
    if g.channel != "api":  # no token at all (a chat cookie is not one): 401, as every endpoint wanting one answers
        raise UnauthorizedError("the escalations endpoints want a decider's token: send it as Authorization: Bearer "
                                "TOKEN (firstline token create --user NAME --role decider), or use the desk at /desk/")
    if g.role is not Role.DECIDER:
        raise ForbiddenError("only deciders may do this: send a decider's API token as Authorization: Bearer TOKEN "
                             "(firstline token create --user NAME --role decider), or use the desk at /desk/")
    return decider_named(g.user_id, "api")


def _stream(pool: ThreadPoolExecutor, dialogue, text: str, user_id: str, conversation_id: str,
            channel: str, verified: bool) -> Iterator[str]:
    """Server-sent events: `progress` while the turn runs, then `turn` (or `error`) when it is done."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            exchange = dialogue.turn(text, user_id, conversation_id, channel, verified=verified,
                                     progress=lambda message: events.put(("progress", {"message": message})))
            events.put(("turn", exchange_json(exchange)))
        except Exception as error:  # noqa: BLE001 - reported to the page as an error event, never a traceback
            events.put(("error", error))

    pool.submit(work)
    while True:
        kind, data = events.get()
        if kind == "error":
            data, _ = error_body(data)
        yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        if kind in ("turn", "error"):
            return
