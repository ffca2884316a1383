"""Operations endpoints: `/metrics` (the telemetry in Prometheus text format), the Alertmanager receiver and its
dead letters.

The receiver answers 2xx only after the notifications are durably written (DuckDB commit); a store failure
answers 5xx so Alertmanager retries, and a retry changes nothing (fingerprint + startsAt + status). It never
acts on the request thread: the monitor takes firing alerts from the store, and is woken to do it now. Its body
may be up to `MAX_BODY_BYTES` (the rest of the app takes 1 MiB): a thousand alerts with their labels and
annotations is over a megabyte.

Alertmanager never retries a 4xx, so every refusal of the receiver (malformed, too large, no or the wrong token) is
logged with its reason and kept as a dead letter (engine/store/alert_intake.py): when, from which address, why,
and the body as sent up to a bound, if the sender was let in (a stranger's body is not kept, only that it came).
`GET /api/v1/alerts/dead-letters` lists them, `firstline alerts dead-letters` too.

All want an operator's API token (`Authorization: Bearer`, which Prometheus' scrape config and Alertmanager's
webhook `http_config` both send; docs/self-healing.md has the snippets): the receiver makes the system act, and
/metrics shows every service's state and deployed version. `operator_auth = false` opens them.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.errors import FirstlineError, ForbiddenError, InputError, NotFoundError, UnauthorizedError
from engine.access.tokens import Role
from engine.healing.alerts import parse_alertmanager
from engine.infra.telemetry import CONTENT_TYPE, exposition
from engine.store.alert_intake import DEAD_LETTER_BODY_BYTES, AlertIntake
from engine.wiring import Parts
from web.security import parsed_json

ALERTMANAGER_PATH = "/api/v1/alerts/alertmanager"
DEAD_LETTERS_PATH = "/api/v1/alerts/dead-letters"
OPS = "ops"
MAX_BODY_BYTES = 10 * 1024 * 1024  # the receiver's request limit: larger bodies get 413 (and a dead letter)
MAX_LISTED = 1000  # dead letters per listing
DEAD_LETTER_HEADER = "X-Firstline-Dead-Letter"  # on a refusal: the id it is kept under
log = logging.getLogger("firstline.alerts")


def ops_blueprint(parts: Parts, require_operator: bool = True) -> Blueprint:
    """The operations endpoints for `parts` (which must have been built with healing); with `require_operator`,
    only an operator's token opens them (401 without credentials, 403 with anyone else's)."""
    ops = Blueprint(OPS, __name__)
    intake = AlertIntake(parts.healing.ledger) if parts.healing is not None else None

    @ops.before_request
    def operator_only() -> None:
        if not require_operator or g.role is Role.OPERATOR:
            g.ops_admitted = True  # a refused body from this sender is kept
            return
        if g.role is None:
            raise UnauthorizedError(
                "this endpoint wants an operator's token: create one with `firstline token create --user prometheus "
                "--role operator` and send it as Authorization: Bearer TOKEN (see docs/self-healing.md)")
        raise ForbiddenError("only an operator's token (--role operator) may read /metrics or post alerts")

    @ops.after_request
    def keep_refusals(response: Response) -> Response:
        if request.endpoint == f"{OPS}.alertmanager" and response.status_code >= 400:
            _dead_letter(parts, intake, response)
        return response

    @ops.get("/metrics")
    def metrics():
        healing = _healing(parts)
        return Response(exposition(healing.current(), healing.healer.topology), content_type=CONTENT_TYPE)

    @ops.post(ALERTMANAGER_PATH)
    def alertmanager():
        request.max_content_length = MAX_BODY_BYTES  # before anything reads the body
        healing = _healing(parts)
        assert intake is not None  # built with healing
        if not request.is_json:
            raise InputError("send the Alertmanager webhook body as JSON (Content-Type: application/json)",
                             code="invalid_alert")
        try:
            payload = parsed_json(request, code="invalid_alert")
        except RequestEntityTooLarge:
            raise RequestEntityTooLarge(
                f"the body is {request.content_length or 'more than that'} bytes; the Alertmanager receiver takes at "
                f"most {MAX_BODY_BYTES:,} bytes: lower `max_alerts` in the webhook's configuration, or group alerts "
                "into more notifications") from None
        notification = parse_alertmanager(payload)
        new = intake.record_notification(notification, request.remote_addr or "", healing.healer.clock())
        firing = [a for a in new if a.status == "firing"]
        if firing:
            healing.monitor.wake()
        if notification.derived or notification.summarised or notification.truncated:
            log.info("alert notification %s from %s: %d alerts, %d stored, %d summarised past the cap, %d truncated "
                     "by Alertmanager, %d fingerprints derived from labels", notification.group_key[:200],
                     request.remote_addr, notification.total, len(notification.alerts), notification.summarised,
                     notification.truncated, notification.derived)
        return jsonify({"received": notification.total, "new": len(new), "firing": len(firing),
                        "stored": len(notification.alerts), "summarised": notification.summarised,
                        "truncated": notification.truncated, "derived_fingerprints": notification.derived})

    @ops.get(DEAD_LETTERS_PATH)
    def dead_letters():
        _healing(parts)
        assert intake is not None
        since = _number(request.args, "since", 0.0)
        limit = int(_number(request.args, "limit", 50, whole=True))
        if not 1 <= limit <= MAX_LISTED:
            raise InputError(f"`limit` must be from 1 to {MAX_LISTED}", code="invalid_query")
        return jsonify({"dead_letters": [d.to_json() for d in intake.dead_letters(since, limit)]})

    @ops.get(f"{DEAD_LETTERS_PATH}/<letter_id>")
    def dead_letter(letter_id: str):
        _healing(parts)
        assert intake is not None
        found = intake.dead_letter(letter_id)
        if found is None:
            raise NotFoundError(f"no dead letter with id {letter_id!r}; GET {DEAD_LETTERS_PATH} lists them")
        return jsonify(found.to_json())

    return ops


def _healing(parts: Parts):
    if parts.healing is None:
        raise FirstlineError("self-healing is not set up in this process")
    return parts.healing


def _number(args: MultiDict[str, str], name: str, default: float, whole: bool = False) -> float:
    text = args.get(name)
    if text is None:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number (epoch seconds)"
        raise InputError(f"`{name}` must be {kind}, got {text[:40]!r}", code="invalid_query") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"`{name}` must be a finite number", code="invalid_query")
    return value


def _dead_letter(parts: Parts, intake: AlertIntake | None, response: Response) -> None:
    """Log a refused notification with its reason and keep it as a dead letter; a failure to keep it is logged
    too, never raised (the refusal already stands)."""
    error: Any = (response.get_json(silent=True) or {}).get("error", {})
    code, reason = str(error.get("code", "error")), str(error.get("message", response.status))
    sender = request.remote_addr or ""
    size = request.content_length or 0
    letter_id = None
    try:
        if intake is not None and parts.healing is not None:
            body = _kept_body()
            letter_id = intake.refuse(
                sender=sender, caller=g.get("user_id") if g.get("role") is Role.OPERATOR else None,
                path=request.path, status=response.status_code, code=code, reason=reason,
                content_type=request.content_type or "", body=body, body_bytes=size,
                now=parts.healing.healer.clock())
            response.headers[DEAD_LETTER_HEADER] = letter_id
    except Exception:  # the store may be what failed; the log line below still says what was refused
        log.exception("could not keep the refused alert notification from %s as a dead letter", sender)
    log.warning("alert notification refused from %s (%d %s, %d bytes): %s; %s", sender, response.status_code, code,
                size, reason[:500], f"kept as dead letter {letter_id}" if letter_id else "not kept")


def _kept_body() -> bytes:
    """The first DEAD_LETTER_BODY_BYTES of the request's body if its sender was let in, else nothing; for a body
    over the limit, read straight from the input (the request refuses to read it)."""
    if not g.get("ops_admitted"):
        return b""
    try:
        return request.get_data(cache=True)[:DEAD_LETTER_BODY_BYTES]
    except (HTTPException, OSError):  # too large for the request (413), or cut short: what the input still holds
        stream = request.environ.get("wsgi.input")
        length = request.content_length
        want = DEAD_LETTER_BODY_BYTES if length is None else min(length, DEAD_LETTER_BODY_BYTES)
        return stream.read(want) if stream is not None else b""
