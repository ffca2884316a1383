"""Operations endpoints: `/metrics` (the telemetry in Prometheus text format) and the Alertmanager receiver.

The receiver answers 2xx only after the notifications are durably written (DuckDB commit); a store failure
answers 5xx so Alertmanager retries, and a retry changes nothing (fingerprint + startsAt + status). It never
acts on the request thread: the monitor takes firing alerts from the store, and is woken to do it now.

Both endpoints want an operator's API token (`Authorization: Bearer`, which Prometheus' scrape config and
Alertmanager's webhook `http_config` both send; docs/self-healing.md has the snippets): the receiver makes the
system act, and /metrics shows every service's state and deployed version. `operator_auth = false` opens them.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from core.errors import FirstlineError, ForbiddenError, InputError, UnauthorizedError
from engine.access.tokens import Role
from engine.healing.alerts import parse_alertmanager
from engine.infra.telemetry import CONTENT_TYPE, exposition
from engine.wiring import Parts
from web.security import parsed_json

ALERTMANAGER_PATH = "/api/v1/alerts/alertmanager"
OPS = "ops"


def ops_blueprint(parts: Parts, require_operator: bool = True) -> Blueprint:
    """The operations endpoints for `parts` (which must have been built with healing); with `require_operator`,
    only an operator's token opens them (401 without credentials, 403 with anyone else's)."""
    ops = Blueprint(OPS, __name__)

    @ops.before_request
    def operator_only() -> None:
        if not require_operator or g.role is Role.OPERATOR:
            return
        if g.role is None:
            raise UnauthorizedError(
                "this endpoint wants an operator's token: create one with `firstline token create --user prometheus "
                "--role operator` and send it as Authorization: Bearer TOKEN (see docs/self-healing.md)")
        raise ForbiddenError("only an operator's token (--role operator) may read /metrics or post alerts")

    @ops.get("/metrics")
    def metrics():
        healing = _healing(parts)
        snapshot = healing.source.read()
        return Response(exposition(snapshot, healing.healer.topology), content_type=CONTENT_TYPE)

    @ops.post(ALERTMANAGER_PATH)
    def alertmanager():
        healing = _healing(parts)
        if not request.is_json:
            raise InputError("send the Alertmanager webhook body as JSON (Content-Type: application/json)",
                             code="invalid_alert")
        alerts = parse_alertmanager(parsed_json(request))
        new = healing.ledger.record_alerts(alerts, healing.healer.clock())
        firing = [a for a in new if a.status == "firing"]
        if firing:
            healing.monitor.wake()
        return jsonify({"received": len(alerts), "new": len(new), "firing": len(firing)})

    return ops


def _healing(parts: Parts):
    if parts.healing is None:
        raise FirstlineError("self-healing is not set up in this process")
    return parts.healing
