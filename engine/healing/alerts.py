"""Alertmanager's webhook payload (version 4), checked field by field before anything is stored.

A body that is not a version-4 payload is refused whole with the first problem's path, so a sender sees what
to fix and nothing is half-written (the receiver keeps the refused body as a dead letter: Alertmanager never
retries a 4xx). What Alertmanager itself may send is accepted:

- an alert whose `fingerprint` is missing, null or empty gets the one Alertmanager would have given it
  (`fingerprint`, below);
- `truncatedAlerts` (alerts its webhook `max_alerts` left out) is read and kept with the notification;
- a notification of more than `MAX_STORED_ALERTS` alerts is accepted: that many are stored one by one (the firing
  ones first), the rest are counted per service, never refused.

Every string must be valid Unicode (a lone surrogate from a `\\ud800` escape cannot be stored). `service` and
`metric` labels tie an alert to a metric of the infrastructure file; an alert without them is stored but cannot be
acted on.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from core.errors import InputError
from engine.store.alert_intake import NotificationRecord
from engine.store.healing import AlertRecord

STATUSES = ("firing", "resolved")
MAX_STORED_ALERTS = 1000  # alerts of one notification stored one by one; the rest are counted per service
MAX_SUMMARY_SERVICES = 50  # services named in a notification's summary; the rest are counted under "(other)"
MAX_TRUNCATED = 2**31 - 1  # more than this in `truncatedAlerts` is not a count Alertmanager could send
SEPARATOR = 0xFF  # prometheus/common model.SeparatorByte: never part of UTF-8 text
FNV_OFFSET = 14695981039346656037  # FNV-1a 64
FNV_PRIME = 1099511628211
OTHER = "(other)"


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of an alert with `labels` (prometheus/common `model.LabelSet.Fingerprint`): FNV-1a
    64 over each label name, a 0xFF byte, its value and a 0xFF byte, in the names' byte order, written as 16
    lower-case hex digits."""
    value = FNV_OFFSET
    for name in sorted(labels, key=lambda n: n.encode("utf-8")):
        for part in (name, labels[name]):
            for byte in (*part.encode("utf-8"), SEPARATOR):
                value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def parse_alertmanager(body: Any) -> NotificationRecord:
    """The notification in a webhook body; InputError (code invalid_alert) naming the first bad field."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object (Alertmanager webhook, version 4)")
    if body.get("version") != "4":
        raise _bad(f"version: expected \"4\", got {_shown(body.get('version'))}")
    for key in ("groupKey", "status", "receiver"):
        _text(body.get(key), key, required=True)
    truncated = body.get("truncatedAlerts", 0)
    if truncated is None:
        truncated = 0
    if isinstance(truncated, bool) or not isinstance(truncated, int) or not 0 <= truncated <= MAX_TRUNCATED:
        raise _bad(f"truncatedAlerts: a whole number of alerts, 0 or more, got {_shown(truncated)}")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise _bad("alerts: required, a non-empty list")
    parsed = [_alert(i, alert) for i, alert in enumerate(alerts)]
    derived = sum(1 for _, was_derived in parsed if was_derived)
    records = [record for record, _ in parsed]
    ordered = [r for r in records if r.status == "firing"] + [r for r in records if r.status != "firing"]
    kept, rest = ordered[:MAX_STORED_ALERTS], ordered[MAX_STORED_ALERTS:]
    firing_rest = [r for r in rest if r.status == "firing"]
    return NotificationRecord(body["groupKey"], body["receiver"], body["status"], tuple(kept), len(records),
                              truncated, derived, len(rest), len(firing_rest), _summary(firing_rest))


def _alert(i: int, alert: Any) -> tuple[AlertRecord, bool]:
    where = f"alerts[{i}]"
    if not isinstance(alert, dict):
        raise _bad(f"{where}: must be an object")
    status = alert.get("status")
    if status not in STATUSES:
        raise _bad(f"{where}.status: expected firing or resolved, got {_shown(status)}")
    labels = _strings(alert.get("labels"), f"{where}.labels")
    annotations = _strings(alert.get("annotations", {}), f"{where}.annotations")
    if "alertname" not in labels:
        raise _bad(f"{where}.labels.alertname: required")
    given = alert.get("fingerprint")
    if given is not None:
        _text(given, f"{where}.fingerprint")
    starts_at = alert.get("startsAt")
    if not isinstance(starts_at, str) or not _timestamp(starts_at):
        raise _bad(f"{where}.startsAt: required, an RFC 3339 time, got {_shown(starts_at)}")
    sent = given if isinstance(given, str) and given else None  # Alertmanager's own, when it sent one
    record = AlertRecord(sent or fingerprint(labels), starts_at, status, labels["alertname"], labels.get("service"),
                         labels.get("metric"), labels, annotations)
    return record, sent is None


def _summary(alerts: list[AlertRecord]) -> dict[str, int]:
    """Alerts per service (`""` for those naming none): the most frequent `MAX_SUMMARY_SERVICES`, the rest as one."""
    counts = Counter(a.service or "" for a in alerts)
    top = dict(counts.most_common(MAX_SUMMARY_SERVICES))
    rest = sum(counts.values()) - sum(top.values())
    return top | ({OTHER: top.get(OTHER, 0) + rest} if rest else {})


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _bad(f"{where}: must be an object of strings")
    for key, item in value.items():
        _text(key, f"{where}: a name")
        _text(item, f"{where}[{_shown(key)}]")
    return dict(value)


def _text(value: Any, where: str, required: bool = False) -> str:
    if not isinstance(value, str):
        raise _bad(f"{where}: {'required, ' if required else ''}a string, got {_shown(value)}")
    if not _unicode(value):
        raise _bad(f"{where}: not valid Unicode (a lone surrogate such as \\ud800)")
    return value


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _timestamp(text: str) -> bool:
    if not _unicode(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _shown(value: Any) -> str:
    """`value` for an error message: short, and printable whatever it holds."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(message: str) -> InputError:
    return InputError(f"not an Alertmanager webhook: {message}", code="invalid_alert")
