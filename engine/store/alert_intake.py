"""The alert intake's records: each Alertmanager notification's own figures, refused requests kept as dead letters,
and alert storms kept as incidents.

Alertmanager never retries a 4xx, so a refused notification would otherwise be gone without trace: every refusal is
a row of `dead_letters` (why, when, from which address, and the raw body up to `DEAD_LETTER_BODY_BYTES`), of which
the newest `DEAD_LETTERS_KEPT` are kept (refusals of senders who were not let in are kept apart and fewer, so they
cannot push the others out). An accepted notification is a row of `alert_notifications`, written in the
same transaction as its alerts, with what was stored one by one, what was only counted (past the per-notification
cap) and Alertmanager's own `truncatedAlerts`. An incident is one alert storm: its figures, its root causes and
the one hand-off that told a person about it (`engine/healing/incidents.py` decides when; this keeps it).

The dead-letter reads are SQL with `:name` parameters, the analysts' console's form, so the command line reads the
same rows through it while the server runs (`firstline alerts dead-letters`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ConflictError
from engine.store.handoffs import OPEN
from engine.store.healing import MONITOR_USER, AlertRecord, HealingLedger

DEAD_LETTER_BODY_BYTES = 256 * 1024  # the most of a refused body kept; the size sent is always recorded
DEAD_LETTERS_KEPT = 1000  # the newest dead letters of senders let in; older ones are dropped as new ones come
# Refusals of senders not let in (401/403: no token, a made-up or revoked one, another role's) are kept apart and
# fewer, so a stranger hammering the receiver cannot push a real sender's refused notifications out.
STRANGER_LETTERS_KEPT = 200
STRANGER_STATUSES = (401, 403)
PREVIEW_CHARS = 160  # of a dead letter's body, in a listing
STORM = "alert_storm"  # the kind of an incident made of many alerts across services at once

_COLUMNS = ("id, received_at, sender, caller, path, status, code, reason, content_type, body_bytes, kept_bytes")
DEAD_LETTERS_SQL = (f"SELECT {_COLUMNS}, left(body, {PREVIEW_CHARS}) AS body FROM dead_letters "
                    "WHERE received_at >= :since ORDER BY received_at DESC, id DESC LIMIT :limit")
DEAD_LETTER_SQL = f"SELECT {_COLUMNS}, body FROM dead_letters WHERE id = :id"
_INCIDENT_COLUMNS = ("id, kind, opened_at, since, updated_at, closed_at, alerts, summarised, truncated, services, "
                     "root_causes, handoff_id, notes")
INCIDENTS_SQL = (f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE opened_at >= :since "
                 "ORDER BY opened_at DESC, id DESC LIMIT :limit")


@dataclass(frozen=True)
class NotificationRecord:
    """One Alertmanager notification as it is stored: the alerts kept one by one and the figures of the rest."""

    group_key: str
    receiver: str
    status: str  # firing | resolved
    alerts: tuple[AlertRecord, ...]  # stored one by one (the firing ones first)
    total: int  # alerts in the body
    truncated: int = 0  # `truncatedAlerts`: alerts Alertmanager left out of the body (its webhook max_alerts)
    derived: int = 0  # alerts whose missing or empty fingerprint was derived from their labels
    summarised: int = 0  # alerts in the body past the per-notification cap: counted, not stored one by one
    summarised_firing: int = 0
    summary: Mapping[str, int] = field(default_factory=dict)  # summarised firing alerts per service ("" = none)


@dataclass(frozen=True)
class DeadLetter:
    """A refused request to the alert receiver."""

    id: str
    received_at: float  # epoch s
    sender: str  # the client address
    caller: str | None  # the operator token's user; None when nobody vouched for the sender
    path: str
    status: int  # the HTTP status it was answered with
    code: str  # the error code of the answer
    reason: str  # the error message of the answer
    content_type: str
    body_bytes: int  # the body's size as sent
    kept_bytes: int  # how much of it is kept (0 when the sender was not let in)
    body: str  # the kept bytes as text (bytes that are not UTF-8 shown as U+FFFD); a listing has a preview

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "received_at": self.received_at, "sender": self.sender, "caller": self.caller,
                "path": self.path, "status": self.status, "code": self.code, "reason": self.reason,
                "content_type": self.content_type, "body_bytes": self.body_bytes, "kept_bytes": self.kept_bytes,
                "body": self.body}


@dataclass(frozen=True)
class AlertWindow:
    """The firing alerts received since `since`: stored one by one, summarised past the cap, and truncated by
    Alertmanager (the latest notification of each group counts, so a group sent again is not counted twice)."""

    since: float
    stored: int
    summarised: int
    truncated: int
    services: Mapping[str, int]  # alerts per service ("" = alerts naming none)
    last_at: float | None  # when the latest firing alert was received
    first_at: float | None = None  # when the earliest was

    @property
    def total(self) -> int:
        return self.stored + self.summarised + self.truncated


@dataclass(frozen=True)
class Incident:
    """Many alerts treated as one problem, with the one hand-off that told a person."""

    id: str
    kind: str
    opened_at: float
    since: float  # alerts received from this moment on belong to it
    updated_at: float
    closed_at: float | None
    alerts: int  # firing alerts, all counted (stored, summarised and truncated)
    summarised: int
    truncated: int
    services: Mapping[str, int]
    root_causes: tuple[str, ...]
    handoff_id: str | None
    notes: tuple[str, ...]  # escalations folded into this one while it was open

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "opened_at": self.opened_at, "since": self.since,
                "updated_at": self.updated_at, "closed_at": self.closed_at, "alerts": self.alerts,
                "summarised": self.summarised, "truncated": self.truncated, "services": dict(self.services),
                "root_causes": list(self.root_causes), "handoff_id": self.handoff_id, "notes": list(self.notes)}


def dead_letter_from_row(row: Sequence[Any]) -> DeadLetter:
    """A dead letter from a row of `DEAD_LETTERS_SQL` or `DEAD_LETTER_SQL` (a store row or the console's JSON)."""
    return DeadLetter(str(row[0]), float(row[1]), str(row[2]), row[3], str(row[4]), int(row[5]), str(row[6]),
                      str(row[7]), str(row[8]), int(row[9]), int(row[10]), str(row[11]))


def incident_from_row(row: Sequence[Any]) -> Incident:
    """An incident from a row of `INCIDENTS_SQL` (a store row or the console's JSON)."""
    return Incident(str(row[0]), str(row[1]), float(row[2]), float(row[3]), float(row[4]),
                    None if row[5] is None else float(row[5]), int(row[6]), int(row[7]), int(row[8]),
                    _object(row[9]), tuple(_object(row[10])), row[11], tuple(_object(row[12])))


class AlertIntake:
    """Notifications, dead letters and incidents, on the healing ledger's database."""

    def __init__(self, ledger: HealingLedger) -> None:
        self.ledger = ledger
        self.store = ledger.store

    # -- notifications ------------------------------------------------------------------------------

    def record_notification(self, notification: NotificationRecord, sender: str, now: float) -> list[AlertRecord]:
        """Store the notification's figures and its alerts not seen before, in one transaction; return the new
        alerts (a repeat or a retry changes nothing but one more row of figures)."""
        def figures(new: int) -> tuple[str, tuple]:
            return ("INSERT INTO alert_notifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self.ledger.new_id(), now, sender, notification.group_key, notification.receiver,
                     notification.status, notification.total, len(notification.alerts), new,
                     notification.summarised, notification.summarised_firing, notification.truncated,
                     notification.derived, json.dumps(dict(notification.summary))))

        return self.ledger.record_alerts(notification.alerts, now, also=figures)

    def window(self, since: float) -> AlertWindow:
        """The firing alerts received since `since` (epoch s)."""
        services: dict[str, int] = {}
        stored, seen = 0, []
        for service, count, first, last in self.store.execute(
                "SELECT coalesce(service, ''), count(*), min(received_at), max(received_at) FROM alerts "
                "WHERE status = 'firing' AND received_at >= ? GROUP BY 1", (since,)):
            services[service] = services.get(service, 0) + int(count)
            stored += int(count)
            seen += [first, last]
        summarised = truncated = 0
        for status, firing, cut, summary, first, last in self.store.execute(
                "SELECT arg_max(status, received_at), arg_max(summarised_firing, received_at), "
                "arg_max(truncated, received_at), arg_max(summary, received_at), min(received_at), max(received_at) "
                "FROM alert_notifications WHERE received_at >= ? GROUP BY group_key", (since,)):
            summarised += int(firing)
            for service, count in _object(summary).items():
                services[str(service)] = services.get(str(service), 0) + int(count)
            if status == "firing":  # the alerts left out of a firing notification are taken to be firing
                truncated += int(cut)
            if firing or (status == "firing" and cut):
                seen += [first, last]
        return AlertWindow(since, stored, summarised, truncated, services, max(seen, default=None),
                           min(seen, default=None))

    def gap(self, since: float, looked_at: float) -> tuple[float | None, float | None]:
        """Around `looked_at` (the last time a monitor looked at an open incident), among the firing alerts
        received since `since`: the latest received until then and the earliest after it, each None if none. A
        gap between the two longer than a storm's window is a storm that ended while no monitor ran."""
        row = self.store.execute(
            "SELECT max(received) FILTER (WHERE received <= ?), min(received) FILTER (WHERE received > ?) FROM ("
            "SELECT received_at AS received FROM alerts WHERE status = 'firing' AND received_at >= ? UNION ALL "
            "SELECT received_at FROM alert_notifications WHERE received_at >= ? "
            "AND (summarised_firing > 0 OR (status = 'firing' AND truncated > 0)))",
            (looked_at, looked_at, since, since))[0]
        return (None if row[0] is None else float(row[0])), (None if row[1] is None else float(row[1]))

    def glance(self, kind: str = STORM) -> tuple[float | None, bool]:
        """When the latest firing alert arrived (None if none ever did), and whether an incident of `kind` is open:
        one small read, which is all a quiet tick needs."""
        last, open_ = self.store.execute(
            "SELECT (SELECT max(received_at) FROM alerts WHERE status = 'firing'), "
            "EXISTS (SELECT 1 FROM incidents WHERE kind = ? AND closed_at IS NULL)", (kind,))[0]
        return (None if last is None else float(last)), bool(open_)

    # -- dead letters -------------------------------------------------------------------------------

    def refuse(self, *, sender: str, caller: str | None, path: str, status: int, code: str, reason: str,
               content_type: str, body: bytes, body_bytes: int, now: float) -> str:
        """Keep a refused request (the first `DEAD_LETTER_BODY_BYTES` of `body`) and drop the oldest of its class
        beyond what is kept (`DEAD_LETTERS_KEPT`; `STRANGER_LETTERS_KEPT` for a 401/403), in one transaction.
        Returns the dead letter's id."""
        kept = body[:DEAD_LETTER_BODY_BYTES]
        letter_id = self.ledger.new_id()
        stranger = status in STRANGER_STATUSES
        same_class = f"status {'' if stranger else 'NOT '}IN {STRANGER_STATUSES}"
        self.store.transaction([
            ("INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (letter_id, now, sender, caller, path, status, code, reason, content_type, max(body_bytes, len(body)),
              len(kept), kept.decode("utf-8", errors="replace"))),
            (f"DELETE FROM dead_letters WHERE {same_class} AND id NOT IN (SELECT id FROM dead_letters "
             f"WHERE {same_class} ORDER BY received_at DESC, id DESC LIMIT ?)",
             (STRANGER_LETTERS_KEPT if stranger else DEAD_LETTERS_KEPT,)),
        ])
        return letter_id

    def dead_letters(self, since: float = 0.0, limit: int = 50) -> list[DeadLetter]:
        """The newest dead letters received since `since` (epoch s), newest first, each body cut to a preview."""
        return [dead_letter_from_row(r) for r in self._named(DEAD_LETTERS_SQL, {"since": since, "limit": limit})]

    def dead_letter(self, letter_id: str) -> DeadLetter | None:
        """One dead letter with all its kept body."""
        rows = self._named(DEAD_LETTER_SQL, {"id": letter_id})
        return dead_letter_from_row(rows[0]) if rows else None

    # -- incidents ----------------------------------------------------------------------------------

    def open_incident(self, kind: str = STORM) -> Incident | None:
        rows = self.store.execute(f"SELECT {_INCIDENT_COLUMNS} FROM incidents WHERE kind = ? AND closed_at IS NULL "
                                  "ORDER BY opened_at DESC LIMIT 1", (kind,))
        return incident_from_row(rows[0]) if rows else None

    def incidents(self, since: float = 0.0, limit: int = 50) -> list[Incident]:
        return [incident_from_row(r) for r in self._named(INCIDENTS_SQL, {"since": since, "limit": limit})]

    def begin_incident(self, window: AlertWindow, root_causes: Sequence[str], now: float,
                       kind: str = STORM) -> Incident | None:
        """Open an incident of `kind` for the alerts of `window`, unless one is open already: checked and written
        in one statement, so two ticks (or processes) never open two. Returns it, or None."""
        incident_id = self.ledger.new_id()
        written = self.store.transaction([(
            "INSERT INTO incidents SELECT ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, NULL, '[]' "
            "WHERE NOT EXISTS (SELECT 1 FROM incidents WHERE kind = ? AND closed_at IS NULL) RETURNING id",
            (incident_id, kind, now, window.first_at or window.since, now, window.total, window.summarised,
             window.truncated,
             json.dumps(dict(window.services)), json.dumps(list(root_causes)), kind))])
        if not (written and written[0]):
            return None
        return self.open_incident(kind)

    def update_incident(self, incident_id: str, window: AlertWindow, root_causes: Sequence[str],
                        now: float) -> None:
        self.store.transaction([(
            "UPDATE incidents SET updated_at = ?, alerts = ?, summarised = ?, truncated = ?, services = ?, "
            "root_causes = ? WHERE id = ?",
            (now, window.total, window.summarised, window.truncated, json.dumps(dict(window.services)),
             json.dumps(list(root_causes)), incident_id))])

    def close_incident(self, incident_id: str, now: float) -> None:
        self.store.transaction([("UPDATE incidents SET closed_at = ?, updated_at = ? WHERE id = ? "
                                 "AND closed_at IS NULL", (now, now, incident_id))])

    def note_incident(self, incident_id: str, note: str, now: float) -> None:
        """Add an escalation folded into the incident to its notes."""
        rows = self.store.execute("SELECT notes FROM incidents WHERE id = ?", (incident_id,))
        notes = [*_object(rows[0][0]), note] if rows else [note]
        self.store.transaction([("UPDATE incidents SET notes = ?, updated_at = ? WHERE id = ?",
                                 (json.dumps(notes), now, incident_id))])

    def escalate_incident(self, incident_id: str, summary: str, diagnostics: Mapping[str, Any],
                          now: float) -> str | None:
        """Hand the incident to engineering once: the hand-off is written only if the incident has none yet, in
        the same transaction that records it. Returns the hand-off's id, or None when it already had one."""
        handoff_id = self.ledger.new_id()
        try:
            self.store.transaction(
                [("INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (handoff_id, incident_id, "", MONITOR_USER, "engineering", summary,
                   json.dumps(dict(diagnostics), default=str), "open", now))],
                guard=("UPDATE incidents SET handoff_id = ?, updated_at = ? WHERE id = ? AND handoff_id IS NULL "
                       "RETURNING id", (handoff_id, now, incident_id), "the incident was handed off already"))
        except ConflictError:
            return None
        return handoff_id

    def refresh_handoff(self, handoff_id: str, summary: str, diagnostics: Mapping[str, Any]) -> bool:
        """Bring an incident's hand-off up to date with `summary` and `diagnostics`, while no engineer has closed
        it and only if the summary changed (a tick with nothing new writes nothing). True if it was rewritten."""
        written = self.store.transaction([(
            "UPDATE handoffs SET summary = ?, diagnostics = ? WHERE id = ? AND status = ? AND summary <> ? "
            "RETURNING id", (summary, json.dumps(dict(diagnostics), default=str), handoff_id, OPEN, summary))])
        return bool(written and written[0])

    def _named(self, sql: str, params: Mapping[str, object]) -> list[tuple]:
        # The console's `:name` form, as DuckDB's `$name` (the statements are ours: no colon elsewhere in them).
        return self.store.execute(re.sub(r":([a-z_]+)\b", r"$\1", sql), params)  # type: ignore[arg-type]


def _object(value: Any) -> Any:
    """A JSON column as Python (the store returns JSON as text; the console's JSON rows may have parsed it)."""
    return json.loads(value) if isinstance(value, str) else (value if value is not None else {})
