"""Alertmanager's webhook payload (version 4), checked field by field before anything is stored.

A body that is not a version-4 payload is refused whole with the first problem's path, so a sender sees what
to fix and nothing is half-written. `service` and `metric` labels tie an alert to a metric of the
infrastructure file; an alert without them is stored but cannot be acted on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.errors import InputError
from engine.store.healing import AlertRecord

STATUSES = ("firing", "resolved")
MAX_ALERTS = 1000


def parse_alertmanager(body: Any) -> list[AlertRecord]:
    """The notifications in a webhook body; InputError (code invalid_alert) naming the first bad field."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object (Alertmanager webhook, version 4)")
    if body.get("version") != "4":
        raise _bad(f"version: expected \"4\", got {body.get('version')!r}")
    for key in ("groupKey", "status", "receiver"):
        if not isinstance(body.get(key), str):
            raise _bad(f"{key}: required, a string")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise _bad("alerts: required, a non-empty list")
    if len(alerts) > MAX_ALERTS:
        raise _bad(f"alerts: at most {MAX_ALERTS} per notification")
    return [_alert(i, alert) for i, alert in enumerate(alerts)]


def _alert(i: int, alert: Any) -> AlertRecord:
    where = f"alerts[{i}]"
    if not isinstance(alert, dict):
        raise _bad(f"{where}: must be an object")
    status = alert.get("status")
    if status not in STATUSES:
        raise _bad(f"{where}.status: expected firing or resolved, got {status!r}")
    labels = _strings(alert.get("labels"), f"{where}.labels")
    annotations = _strings(alert.get("annotations", {}), f"{where}.annotations")
    fingerprint = alert.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise _bad(f"{where}.fingerprint: required, a non-empty string")
    starts_at = alert.get("startsAt")
    if not isinstance(starts_at, str) or not _timestamp(starts_at):
        raise _bad(f"{where}.startsAt: required, an RFC 3339 time, got {starts_at!r}")
    if "alertname" not in labels:
        raise _bad(f"{where}.labels.alertname: required")
    return AlertRecord(fingerprint, starts_at, status, labels["alertname"], labels.get("service"),
                       labels.get("metric"), labels, annotations)


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _bad(f"{where}: must be an object of strings")
    return dict(value)


def _timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _bad(message: str) -> InputError:
    return InputError(f"not an Alertmanager webhook: {message}", code="invalid_alert")
