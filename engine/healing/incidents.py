"""Alert storms: many alerts across services at once become one incident, and one escalation to a person.

A storm is at least `StormPolicy.alerts` firing alerts received within `window_s` (those stored one by one, those
only counted past a notification's cap, and those Alertmanager truncated) naming at least `services` services.
The healer asks `begin` at the start of each step: it opens the storm's incident (one at a time, checked in the
store), brings an open one up to date, or closes it once `window_s` has passed with no new firing alert. The
remedies themselves are the healer's, as for any signal: only the root causes, through the actuator's rate limit,
concurrency cap and breaker. After acting, `escalate` hands the incident to engineering once, however many ticks or
restarts it lasts (the hand-off's id is kept on the incident in the same transaction): how many alerts, which
services, the root causes the dependency graph gives, how many were truncated, and what the healer did (chat users'
own remedies of the same minutes are theirs, not the storm's). Later ticks keep that one hand-off up to date while
no engineer has closed it (alerts that kept coming, remedies and their outcome, the storm's end), rather than
writing a second. While the incident is open, the healer's other escalations are folded into it (`fold`) instead
of reaching a person one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.text import printable
from engine.actions.actuator import Event, conversation_requester
from engine.infra.topology import Topology
from engine.store.alert_intake import AlertIntake, AlertWindow, Incident
from engine.store.healing import RemediationRow

STORM_ALERTS = 50  # firing alerts within the window that make a storm ...
STORM_SERVICES = 2  # ... naming at least this many services
STORM_WINDOW_S = 300.0  # the window, in seconds; a storm ends once a window passes with no new firing alert
LISTED_ACTIONS = 10  # actions named in the escalation; the rest are counted
LISTED_SERVICES = 20  # services named with their alert counts in the escalation's text; the rest are counted
DIAGNOSED_SERVICES = 100  # services (and actions) in its diagnostics
DIAGNOSED_ACTIONS = 100
NAME_CHARS = 60  # a service name from an alert's labels is cut to this (and its control characters escaped)
NOTE_CHARS = 300  # an escalation folded into the storm, likewise
CONVERSATION_PREFIX = conversation_requester("")  # the requester of a chat user's remedy starts with this
log = logging.getLogger("firstline.healing")


@dataclass(frozen=True)
class StormPolicy:
    """When alerts are a storm (the defaults are documented in docs/self-healing.md)."""

    alerts: int = STORM_ALERTS
    services: int = STORM_SERVICES
    window_s: float = STORM_WINDOW_S


class Storms:
    """Turns the alert intake's figures into incidents for the healer; all its state is in the store."""

    def __init__(self, intake: AlertIntake, topology: Topology, policy: StormPolicy | None = None,
                 emit: Callable[[Event], None] | None = None) -> None:
        self.intake = intake
        self.topology = topology
        self.policy = policy or StormPolicy()
        self.emit = emit

    def begin(self, now: float, unhealthy: set[str]) -> Incident | None:
        """The storm under way at `now`: opened if the alerts have just become one, brought up to date if it was
        open, None if there is none (one whose alerts stopped a window ago is closed). `unhealthy`: the services
        the healer sees in trouble, for the root-cause walk."""
        last, open_ = self.intake.glance()
        if not open_ and (last is None or now - last > self.policy.window_s):
            return None  # the usual tick: one small read
        incident = self.intake.open_incident()
        if incident is not None:
            window = self.intake.window(incident.since)
            before, after = self.intake.gap(incident.since, incident.updated_at)
            if before is not None and after is not None and after - before > self.policy.window_s:
                # It ended while no monitor looked (a restart, a server with the monitor off), and the alerts
                # since are another storm's, or none.
                self._close(incident, before, now)
            elif window.last_at is None or now - window.last_at > self.policy.window_s:
                self._close(incident, window.last_at if window.last_at is not None else now, now)
                return None
            else:
                self.intake.update_incident(incident.id, window, self.root_causes(window, unhealthy), now)
                return self.intake.open_incident()
        window = self.intake.window(now - self.policy.window_s)
        if not self.is_storm(window):
            return None
        roots = self.root_causes(window, unhealthy)
        opened = self.intake.begin_incident(window, roots, now)
        if opened is not None:
            self._event(now, f"alert storm {opened.id}: {window.total} firing alerts across "
                             f"{len(_named(window.services))} services; root causes {', '.join(roots) or 'unknown'}")
        return opened

    def _close(self, incident: Incident, last_alert_at: float, now: float) -> None:
        """Close `incident` as over a window after its last alert (not at `now`: after a restart or a gap, the
        moment it was noticed may be long after), and say so in its hand-off."""
        over_at = min(now, last_alert_at + self.policy.window_s)
        self.intake.close_incident(incident.id, over_at)
        self._event(now, f"alert storm {incident.id} is over: no new firing alert for {self.policy.window_s:g} s "
                         f"after {_when(last_alert_at)} ({incident.alerts} alerts in all)")
        self.refresh(replace(incident, closed_at=over_at), now)

    def is_storm(self, window: AlertWindow) -> bool:
        return window.total >= self.policy.alerts and len(_named(window.services)) >= self.policy.services

    def root_causes(self, window: AlertWindow, unhealthy: set[str]) -> list[str]:
        """The deepest troubled services the alerting ones depend on, by the dependency graph
        (`Topology.root_causes`); services the infrastructure file does not know cannot be walked."""
        alerting = {s for s in window.services if s in self.topology.services}
        troubled = alerting | (unhealthy & set(self.topology.services))
        return sorted({root for service in alerting for root in self.topology.root_causes(service, troubled)})

    def fold(self, summary: str, now: float) -> bool:
        """While a storm's incident is open, an escalation becomes one of its notes (the storm's one escalation
        speaks for it); True if it was folded."""
        incident = self.intake.open_incident()
        if incident is None:
            return False
        self.intake.note_incident(incident.id, summary, now)
        log.info("folded into alert storm %s: %s", incident.id, summary)
        return True

    def escalate(self, incident: Incident | None, now: float) -> str | None:
        """Hand `incident` to engineering unless it already went, with the summary of the storm and what was done
        about it so far; if it went, bring that hand-off up to date (`refresh`). Returns the new hand-off's id, or
        None."""
        if incident is None:
            return None
        current = self.intake.open_incident()  # with what was folded into it while acting
        incident = current if current is not None and current.id == incident.id else incident
        if incident.handoff_id is not None:
            self.refresh(incident, now)
            return None
        summary, diagnostics = self.describe(incident, self.done(incident))
        handoff_id = self.intake.escalate_incident(incident.id, summary, diagnostics, now)
        if handoff_id is not None:
            self._event(now, f"handed to engineering: {summary}", kind="handoff", status="created")
        return handoff_id

    def refresh(self, incident: Incident, now: float) -> bool:
        """Rewrite the incident's hand-off with its figures at `now`, if it has one that no engineer has closed
        and anything in its summary changed. True if it was rewritten."""
        if incident.handoff_id is None:
            return False
        summary, diagnostics = self.describe(incident, self.done(incident))
        refreshed = self.intake.refresh_handoff(incident.handoff_id, summary, {**diagnostics, "updated_at": _when(now)})
        if refreshed:
            log.info("alert storm %s: hand-off %s brought up to date (%d alerts)", incident.id, incident.handoff_id,
                     incident.alerts)
        return refreshed

    def done(self, incident: Incident) -> list[RemediationRow]:
        """What the healer did since the storm began: chat users' remedies of the same minutes are not the storm's."""
        return [r for r in self.intake.ledger.remediations_since(incident.since)
                if not r.requester.startswith(CONVERSATION_PREFIX)]

    def describe(self, incident: Incident, done: Sequence[RemediationRow]) -> tuple[str, dict[str, Any]]:
        """The escalation's one-paragraph summary and its diagnostics (JSON) for `incident`, of a bounded size
        however many services the alerts named (the busiest LISTED_SERVICES in the text, DIAGNOSED_SERVICES in
        the diagnostics, the rest counted; each name cut to NAME_CHARS)."""
        services = _by_count(incident.services)
        unknown = sorted(s for s in _named(incident.services) if s not in self.topology.services)
        stored = incident.alerts - incident.summarised - incident.truncated
        counts = listed_services(incident.services)
        state = (f"over at {_when(incident.closed_at)} (no new firing alert for {self.policy.window_s:g} s)"
                 if incident.closed_at is not None else "still under way")
        parts = [f"Alert storm: {incident.alerts} firing alerts since {_when(incident.since)} across "
                 f"{len(_named(incident.services))} services ({counts}), {state}",
                 f"{stored} received one by one, {incident.summarised} counted past a notification's cap, "
                 f"{incident.truncated} truncated by Alertmanager"]
        roots = ", ".join(incident.root_causes) or "none found (no alerting service is in the infrastructure file)"
        parts.append(f"root cause by the dependency graph: {roots}")
        if unknown:
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            parts.append(f"not in the infrastructure file: {', '.join(_name(s) for s in unknown[:10])}{more}")
        listed = [f"{r.action} on {r.target} ({r.status})" for r in done[:LISTED_ACTIONS]]
        more = f" and {len(done) - LISTED_ACTIONS} more" if len(done) > LISTED_ACTIONS else ""
        parts.append(f"done so far: {'; '.join(listed) + more}" if done else "done so far: nothing (no remedy was "
                     "allowed or none applies)")
        if incident.notes:
            parts.append(f"{len(incident.notes)} other escalation(s) folded in: "
                         f"{'; '.join(printable(note, NOTE_CHARS) for note in incident.notes[:5])}")
        others = services[DIAGNOSED_SERVICES:]
        diagnostics = {
            "incident": incident.id, "kind": incident.kind, "since": _when(incident.since),
            "closed_at": _when(incident.closed_at) if incident.closed_at is not None else None,
            "alerts": incident.alerts, "received": stored, "summarised": incident.summarised,
            "truncated": incident.truncated,
            "services": {_name(service): count for service, count in services[:DIAGNOSED_SERVICES]},
            "other_services": {"services": len(others), "alerts": sum(count for _, count in others)},
            "unknown_services": [_name(s) for s in unknown[:DIAGNOSED_SERVICES]],
            "root_causes": list(incident.root_causes), "notes": [printable(n, NOTE_CHARS) for n in incident.notes[:20]],
            "actions": [{"id": r.id, "action": r.action, "target": r.target, "status": str(r.status),
                         "rule": r.rule, "detail": r.detail, "started_at": _when(r.started_at)}
                        for r in done[:DIAGNOSED_ACTIONS]],
        }
        return "; ".join(parts), diagnostics

    def _event(self, now: float, summary: str, kind: str = "incident", status: str | None = None) -> None:
        log.info("%s: %s", kind, summary)
        if self.emit is not None:
            self.emit(Event(now, kind, summary, status=status))


def _named(services: Mapping[str, int]) -> list[str]:
    return [s for s in services if s]


def _by_count(services: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(services.items(), key=lambda item: (-item[1], item[0]))


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def listed_services(services: Mapping[str, int]) -> str:
    """`services` (name -> alerts) as text of a bounded size, busiest first: the first LISTED_SERVICES with their
    counts, each name escaped and cut to NAME_CHARS, the rest counted ("and 480 more with 960 alerts")."""
    busiest = _by_count(services)
    text = ", ".join(f"{_name(service)} {count}" for service, count in busiest[:LISTED_SERVICES])
    if len(busiest) > LISTED_SERVICES:
        others = busiest[LISTED_SERVICES:]
        text += f" and {len(others)} more with {sum(count for _, count in others)} alerts"
    return text


def _name(service: str) -> str:
    return printable(service, NAME_CHARS) if service else "unnamed"
