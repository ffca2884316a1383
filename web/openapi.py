"""The OpenAPI 3 document of the JSON API, served at /api/v1/openapi.json; a test holds it to the real routes."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/responses/Error"}
ID = {"type": "string"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(summary: str, ok: dict[str, Any], body: dict[str, Any] | None = None, status: str = "200",
        params: tuple[str, ...] = (), security: bool = False, extra: dict[str, Any] | None = None,
        conflict: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {status: {"description": "OK", **ok}, "400": ERROR, "401": ERROR, "404": ERROR, "500": ERROR},
    }
    if params:
        operation["parameters"] = [{"name": p, "in": "path", "required": True, "schema": ID} for p in params]
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    if security:
        operation["security"] = [{"bearer": []}]
        operation["responses"]["403"] = ERROR
    if conflict:  # another request changed the same conversation at the same moment
        operation["responses"]["409"] = ERROR
    operation.update(extra or {})
    return operation


def document() -> dict[str, Any]:
    """The whole document, built fresh (it is small) so nothing mutable is shared between requests."""
    turn_extra = {"responses": {"200": {"description": "The turn, or with Accept: text/event-stream a stream of "
                                        "`progress` events then one `turn` (or `error`) event",
                                        **_json(_ref("Turn")),
                                        "content": {"application/json": {"schema": _ref("Turn")},
                                                    "text/event-stream": {"schema": {"type": "string"}}}},
                                "400": ERROR, "401": ERROR, "404": ERROR, "409": ERROR, "429": ERROR,
                                "500": ERROR}}
    found = {
        "openapi": "3.0.3",
        "info": {"title": "Firstline API", "version": "1",
                 "description": "Conversations with the support assistant. Callers are identified by a signed "
                                "session cookie or by `Authorization: Bearer TOKEN`; each sees only their own "
                                "conversations. Every error is {\"error\": {\"code\", \"message\"}}. A request "
                                "body past 1 MiB is refused with 413 (the Alertmanager receiver takes more). An "
                                "operator's token opens the operators' routes only (403 on any other)."},
        "paths": {
            "/api/v1/health": {"get": _op("Liveness and the rule set's version", _json({"type": "object"}))},
            "/api/v1/openapi.json": {"get": _op("This document", _json({"type": "object"}))},
            "/api/v1/conversations": {
                "get": _op("List my conversations, most recent first", _json(_ref("ConversationList"))),
                "post": _op("Start a conversation (the reply is a greeting)", _json(_ref("Turn")), status="201"),
            },
            "/api/v1/conversations/{conversation_id}/messages": {
                "get": _op("The messages of one of my conversations, its stage and the choices it offers",
                           _json(_ref("History")), params=("conversation_id",)),
                "post": _op("Send a message and get the assistant's turn", _json(_ref("Turn")),
                            body=_ref("Message"), params=("conversation_id",), extra=turn_extra),
            },
            "/api/v1/conversations/{conversation_id}/feedback": {
                "post": _op("Rate the conversation from 1 to 5, with an optional comment", _json(_ref("Turn")),
                            body=_ref("Feedback"), params=("conversation_id",), conflict=True),
            },
            "/api/v1/history": {
                "delete": _op("Delete everything stored about me: messages, decisions, facts, actions, feedback, "
                              "learned examples", _json({"type": "object", "properties": {
                                  "deleted": {"type": "object", "additionalProperties": {"type": "integer"}}}})),
            },
            "/api/v1/identity": {
                "post": _op("Say who this browser's user is, as the host app vouches (`user_hash` = hex "
                            "HMAC-SHA256 of `user_id` under the shared identity secret); remedies on their account "
                            "then may run. With `email` and `email_hash` (hex HMAC-SHA256 of `user_id`, a line feed "
                            "and `email`), a person's answer is e-mailed there if the user has left the chat; a "
                            "wrong `email_hash` is 401 and changes nothing, a malformed address 400",
                            _json(_ref("Identity")), body=_ref("Identity")),
                "delete": _op("Forget the vouched identity: this browser chats as a new anonymous user",
                              _json({"type": "object", "properties": {"verified": {"type": "boolean"}}})),
            },
            "/api/v1/messages": {
                "post": _op("One decision in the `ask --json` shape, without the dialogue around it; the same "
                            "per-user message allowance as the conversations (429 with Retry-After past it)",
                            _json({"type": "object"}), body=_ref("Message"),
                            extra={"responses": {"200": {"description": "OK", **_json({"type": "object"})},
                                                 "400": ERROR, "401": ERROR, "404": ERROR, "429": ERROR,
                                                 "500": ERROR}}),
            },
            "/api/v1/decisions/{decision_id}/trace": {
                "get": _op("The trace of one of my decisions (a curator: of any decision); `why_not=RULE` "
                           "(repeatable) explains a rule, learned rules in any status included",
                           _json({"type": "object"}), params=("decision_id",),
                           extra={"parameters": [{"name": "decision_id", "in": "path", "required": True,
                                                  "schema": ID},
                                                 {"name": "why_not", "in": "query", "required": False,
                                                  "schema": {"type": "array", "items": {"type": "string"}}}]}),
            },
            "/api/v1/alerts/alertmanager": {
                "post": _op("Alertmanager webhook receiver (payload version 4; an operator's token): stored durably "
                            "before the 2xx, idempotent on fingerprint + startsAt, acts on firing alerts the telemetry "
                            "bears out. Bodies up to 10 MiB (413 past it); up to 1,000 alerts of a notification are "
                            "stored one by one (firing first) and the rest counted per service; `truncatedAlerts` is "
                            "kept; a missing or empty `fingerprint` is derived from the labels as Alertmanager does. "
                            "Every refusal is logged and kept as a dead letter (its id in the "
                            "X-Firstline-Dead-Letter header)", _json(_ref("AlertReceipt")),
                            body={"type": "object", "required": ["version", "alerts"]}, security=True,
                            extra={"responses": {"200": {"description": "Stored", **_json(_ref("AlertReceipt"))},
                                                 "400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR,
                                                 "413": ERROR, "500": ERROR}}),
            },
            "/api/v1/alerts/dead-letters": {
                "get": _op("Refused requests to the Alertmanager receiver, newest first (an operator's token): when, "
                           "the sender's address, the status and reason, and the start of the body; `since` in epoch "
                           "seconds, `limit` 1 to 1000 (50)",
                           _json({"type": "object", "properties": {"dead_letters": {
                               "type": "array", "items": _ref("DeadLetter")}}}), security=True,
                           extra={"parameters": [{"name": "since", "in": "query", "required": False,
                                                  "schema": {"type": "number"}},
                                                 {"name": "limit", "in": "query", "required": False,
                                                  "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}]}),
            },
            "/api/v1/alerts/dead-letters/{letter_id}": {
                "get": _op("One dead letter with all of its body that was kept (up to 256 KiB; an operator's token)",
                           _json(_ref("DeadLetter")), params=("letter_id",), security=True),
            },
            **_desk_paths(),
            **_handoff_paths(),
            **_curator_paths(),
            **_analytics_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "session"}},
            "responses": {"Error": {"description": "An error", **_json(_ref("Error"))}},
            "schemas": _schemas(),
        },
        "security": [{"cookie": []}, {"bearer": []}],
    }
    for path, operations in found["paths"].items():  # one limiter counts every write (web/limits.py)
        for method, operation in operations.items():
            if method in ("post", "put", "delete") and path != "/api/v1/alerts/alertmanager":
                operation["responses"]["429"] = ERROR
            if method in ("post", "put"):  # a body past MAX_CONTENT_LENGTH (web/app.py), whatever it holds
                operation["responses"].setdefault("413", ERROR)
            # A token of a role the route is not for: an operator's anywhere else, anyone else's on the operators'.
            operation["responses"].setdefault("403", ERROR)
    return found


def _query(*names: str, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    types = {"limit": "integer", "offset": "integer", "old": "integer", "new": "integer"}
    return [{"name": n, "in": "query", "required": n in required, "schema": {"type": types.get(n, "string")}}
            for n in names]


def _desk_paths() -> dict[str, Any]:
    """The deciders' routes (a decider's bearer token), each the JSON twin of a /desk/ page or form."""
    one, obj = ("escalation_id",), {"type": "object"}
    return {
        "/api/v1/escalations": {"get": _op(
            "The desk's queue (/desk/): business requests the decider may decide; `status` is a group (open = open or "
            "asked, decided = approved or rejected, expired, all) or one status; open ones by deadline, soonest "
            "first, each with the request in the user's words, who asked and the time left", _json(obj),
            security=True, extra={"parameters": _query("status", "category")})},
        "/api/v1/escalations/{escalation_id}": {"get": _op(
            "One request as /desk/{id} shows it, in its order: facts, options, approvals, recommendation, "
            "precedents, the record, and the `digest` a decision may carry back", _json(obj), params=one,
            security=True)},
        "/api/v1/escalations/{escalation_id}/decision": {"post": _op(
            "Approve or reject (deciders only). A reason is required to reject and to go against the recommendation "
            "or the precedent majority; approvals count once per person until the policy's approvers are reached; "
            "409 for an expired or decided request or a changed `digest`. The decision is posted into the user's "
            "conversation", _json(obj), body=_ref("Decision"), params=one, security=True, conflict=True)},
        "/api/v1/escalations/{escalation_id}/question": {"post": _op(
            "Ask the user for more information: the question is posted into their conversation and their answer "
            "comes back to the request's record (deciders only)", _json(obj), params=one, security=True,
            conflict=True, body={"type": "object", "required": ["question"], "properties": {
                "question": {"type": "string", "maxLength": 2000}, "digest": {"type": "string"}}})},
    }


def _handoff_paths() -> dict[str, Any]:
    """Engineering's routes (an engineer's bearer token): the problems handed to engineers, and closing one."""
    one, obj = ("handoff_id",), {"type": "object"}
    return {
        "/api/v1/handoffs": {"get": _op(
            "Problems handed to engineering: `status` open (oldest first, the default), closed (latest first) or all; "
            "each with its summary, playbook, user, conversation and diagnostics (engineers only)", _json(obj),
            security=True, extra={"parameters": _query("status")})},
        "/api/v1/handoffs/{handoff_id}": {"get": _op("One hand-off (engineers only)", _json(obj), params=one,
                                                     security=True)},
        "/api/v1/handoffs/{handoff_id}/close": {"post": _op(
            "Close a hand-off with a note: the note is posted into the user's conversation in the assistant's voice "
            "and e-mailed to them if they have left the chat (engineers only); 409 if it was already closed",
            _json(obj), params=one, security=True, conflict=True,
            body={"type": "object", "required": ["note"], "properties": {"note": {"type": "string",
                                                                                  "maxLength": 2000}}})},
    }


def _curator_paths() -> dict[str, Any]:
    """The curators' routes (a curator's bearer token): learned rules, playbooks and the unmatched queue."""
    rule, obj = ("name",), {"type": "object"}
    path_params = [{"name": "name", "in": "path", "required": True, "schema": ID}]
    change = {"type": "object", "properties": {
        "reason": {"type": "string"},
        "version": {"type": "integer", "description": "for revert: the version to restore"}}}
    verb = {"name": "verb", "in": "path", "required": True,
            "schema": {"type": "string", "enum": ["approve", "reject", "retire", "shadow", "revert"]}}
    return {
        "/api/v1/learned-rules": {"get": _op(
            "Learned rules, a page at a time, with status, fix confidence, fire count, live and shadow record "
            "(curators)", _json(obj), security=True,
            extra={"parameters": _query("status", "playbook", "limit", "offset")})},
        "/api/v1/learned-rules/{name}": {"get": _op(
            "A learned rule: its record, every version, provenance, and example decisions with trace links "
            "(curators)", _json(obj), params=rule, security=True)},
        "/api/v1/learned-rules/{name}/diff": {"get": _op(
            "A unified diff between two versions (curators)", _json(obj), security=True,
            extra={"parameters": path_params + _query("old", "new", required=("old", "new"))})},
        "/api/v1/learned-rules/{name}/{verb}": {"post": _op(
            "Approve, reject, retire, shadow or revert (with `version`) a learned rule: a new version, "
            "published to the running rule engine (curators); 409 to shadow or approve a rule that failed "
            "validation", _json(obj), body=change, security=True, conflict=True,
            extra={"parameters": [*path_params, verb]})},
        "/api/v1/playbooks": {"get": _op(
            "Playbooks with examples, decisions, resolutions and each remedy's confidence (curators)",
            _json(obj), security=True)},
        "/api/v1/unmatched": {"get": _op(
            "Recent messages declined or clarified that no playbook was taught yet (curators)", _json(obj),
            security=True, extra={"parameters": _query("limit")})},
        "/api/v1/unmatched/{decision_id}/add": {"post": _op(
            "Index the message as an example of `playbook` at once (curators)", _json(obj), status="201",
            body={"type": "object", "required": ["playbook"], "properties": {"playbook": {"type": "string"}}},
            params=("decision_id",), security=True)},
        "/api/v1/unmatched/{decision_id}/new": {"post": _op(
            "Draft a new playbook from the message, for a curator to complete (curators); 409 when a playbook or "
            "a draft of that id exists", _json(obj), status="201", params=("decision_id",), security=True,
            conflict=True,
            body={"type": "object", "required": ["id", "category"], "properties": {
                "id": {"type": "string"}, "title": {"type": "string"}, "category": {"type": "string"}}})},
    }


def _analytics_paths() -> dict[str, Any]:
    """The analysts' routes (an analyst's bearer token), the JSON twins of the /analytics/ page and its console."""
    since = {"name": "since", "in": "query", "required": False, "schema": {"type": "string", "default": "30d"},
             "description": "the period: days (30d), weeks (4w) or a first day (2026-01-31), in UTC days"}
    return {
        "/api/v1/analytics/metrics": {"get": _op(
            "The seed's metrics since `since` (analysts): each line's key, label, view, value (null with no data), "
            "display and parts; escalations give one line per business category", _json({
                "type": "object", "properties": {"since": {"type": "string", "format": "date"},
                                                 "metrics": {"type": "array", "items": {"type": "object"}}}}),
            security=True, extra={"parameters": [since]})},
        "/api/v1/analytics/metrics/{key}/daily": {"get": _op(
            "One metric's trend per UTC day since `since` (analysts): [{day, value, series?}]", _json({
                "type": "object", "properties": {"key": {"type": "string"}, "since": {"type": "string"},
                                                 "daily": {"type": "array", "items": {"type": "object"}}}}),
            security=True, extra={"parameters": [{"name": "key", "in": "path", "required": True, "schema": ID},
                                                 since]})},
        "/api/v1/analytics/query": {"post": _op(
            "Run one read-only SELECT with named `:parameters` (analysts). Refused with 400 and a message saying "
            "why: a second statement, any write, COPY, ATTACH, INSTALL, SET, file or URL reads, credential "
            "tables, a syntax error (with its position), a parameter missing or of the wrong type, and a query "
            "past the time limit (code `query_timeout`); a result past the row cap is cut and `truncated`",
            _json(_ref("QueryResult")), body=_ref("Query"), security=True)},
    }


def _schemas() -> dict[str, Any]:
    choice = {"type": "object", "properties": {"label": {"type": "string"}, "value": {"type": "string"}}}
    stage = {"type": "string", "enum": ["open", "confirming", "choosing", "verifying", "awaiting_decision",
                                             "checking_answer", "rating"]}
    return {
        "Query": {"type": "object", "required": ["sql"], "properties": {
            "sql": {"type": "string", "maxLength": 100000, "description": "one SELECT; parameters as :name"},
            "params": {"type": "object", "additionalProperties": {
                "nullable": True, "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}}}},
        "QueryResult": {"type": "object", "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "types": {"type": "array", "items": {"type": "string"}, "description": "DuckDB's type names"},
            "rows": {"type": "array", "items": {"type": "array", "items": {}}},
            "truncated": {"type": "boolean", "description": "more rows than `row_cap`, or more than `max_result_mb`: "
                          "only the first are here"},
            "truncated_reason": {"type": "string", "nullable": True, "enum": ["row cap", "size", None]},
            "row_cap": {"type": "integer"}, "max_result_mb": {"type": "number"}, "elapsed_ms": {"type": "number"}}},
        "AlertReceipt": {"type": "object", "properties": {
            "received": {"type": "integer", "description": "alerts in the body"},
            "new": {"type": "integer", "description": "alerts not seen before (fingerprint + startsAt + status)"},
            "firing": {"type": "integer", "description": "new firing alerts (the monitor is woken for them)"},
            "stored": {"type": "integer", "description": "alerts stored one by one (at most 1,000)"},
            "summarised": {"type": "integer", "description": "alerts past the cap, counted per service"},
            "truncated": {"type": "integer", "description": "`truncatedAlerts` as Alertmanager sent it"},
            "derived_fingerprints": {"type": "integer", "description": "fingerprints derived from the labels"}}},
        "DeadLetter": {"type": "object", "properties": {
            "id": {"type": "string"}, "received_at": {"type": "number", "description": "epoch seconds"},
            "sender": {"type": "string", "description": "the client address"},
            "caller": {"type": "string", "nullable": True, "description": "the operator token's user"},
            "path": {"type": "string"}, "status": {"type": "integer"}, "code": {"type": "string"},
            "reason": {"type": "string"}, "content_type": {"type": "string"},
            "body_bytes": {"type": "integer", "description": "the body's size as sent"},
            "kept_bytes": {"type": "integer", "description": "how much of it is kept (0 for a sender not let in)"},
            "body": {"type": "string", "description": "the kept body as text (a preview in a listing)"}}},
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
        "Message": {"type": "object", "required": ["text"], "properties": {
            "text": {"type": "string", "maxLength": 100000}, "conversation_id": {"type": "string"},
            "explain": {"type": "boolean"}}},
        "Identity": {"type": "object", "required": ["user_id"], "properties": {
            "user_id": {"type": "string", "maxLength": 200}, "user_hash": {"type": "string"},
            "email": {"type": "string", "maxLength": 254, "description": "optional: the user's e-mail address, "
                      "for a person's answer when they have left the chat; needs `email_hash`"},
            "email_hash": {"type": "string", "description": "hex HMAC-SHA256 of `user_id` + \"\\n\" + `email` under "
                           "the shared identity secret"},
            "verified": {"type": "boolean"}}},
        "Feedback": {"type": "object", "required": ["rating"], "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5}, "comment": {"type": "string"}}},
        "Decision": {"type": "object", "required": ["outcome"], "properties": {
            "outcome": {"type": "string", "enum": ["approved", "rejected", "declined"],
                        "description": "declined: the first API's word for rejected"},
            "reason": {"type": "string", "maxLength": 2000},
            "note": {"type": "string", "description": "the first API's name for `reason`"},
            "digest": {"type": "string", "description": "from GET /api/v1/escalations/{id}: refused (409) if the "
                                                        "request changed since"}}},
        "Turn": {"type": "object", "properties": {
            "conversation_id": {"type": "string"}, "stage": stage,
            "replies": {"type": "array", "items": {"type": "string"}},
            "choices": {"type": "array", "items": choice}, "understood": {"type": "string", "nullable": True},
            "decision_id": {"type": "string", "nullable": True},
            "answer": {"type": "object", "nullable": True, "description": "the decision, as `ask --json`"}}},
        "History": {"type": "object", "properties": {
            "conversation_id": {"type": "string"}, "stage": stage, "choices": {"type": "array", "items": choice},
            "messages": {"type": "array", "items": {"type": "object", "properties": {
                "role": {"type": "string", "enum": ["user", "assistant", "team"]}, "text": {"type": "string"},
                "at": {"type": "number", "description": "when it was said, epoch seconds"},
                "decision_id": {"type": "string", "nullable": True,
                                "description": "on the reply that stated a decision: that decision"},
                "detail": {"type": "object", "nullable": True, "description": "on the reply that stated a "
                           "decision: decision, category, playbook, confidence, rules_fired and actions (name, "
                           "target, status), as in the turn's `answer`"}}}}}},
        "ConversationList": {"type": "object", "properties": {"conversations": {"type": "array", "items": {
            "type": "object", "properties": {"id": {"type": "string"}, "channel": {"type": "string"},
                                             "started_at": {"type": "number"}, "last_at": {"type": "number"},
                                             "stage": stage, "messages": {"type": "integer"},
                                             "unseen_answer": {"type": "boolean", "description": "a person (a "
                                                               "decider, engineering) answered in it since the "
                                                               "user last opened it"},
                                             "answered_at": {"type": "number", "nullable": True, "description":
                                                             "when that answer came, epoch seconds"}}}}}},
    }
