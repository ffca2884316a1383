"""Operations endpoints: `/metrics` (the telemetry in Prometheus text format) and the Alertmanager receiver.

The receiver answers 2xx only after the notifications are durably written (DuckDB commit); a store failure
answers 5xx so Alertmanager retries, and a retry changes nothing (fingerprint + startsAt + status). It never
acts on the request thread: the monitor takes firing alerts from the store, and is woken to do it now.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from core.errors import FirstlineError, InputError
from engine.healing.alerts import parse_alertmanager
from engine.infra.telemetry import CONTENT_TYPE, exposition
from engine.wiring import Parts

ALERTMANAGER_PATH = "/api/v1/alerts/alertmanager"


def ops_blueprint(parts: Parts) -> Blueprint:
    """The operations endpoints for `parts` (which must have been built with healing)."""
    ops = Blueprint("ops", __name__)

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
        alerts = parse_alertmanager(request.get_json(silent=True))
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
