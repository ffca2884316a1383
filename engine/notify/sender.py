"""The sender: works through the outbox (`notifications`), e-mailing each person's answer to a user who has left
the chat, once.

For each pending notice whose time has come, in this order:

1. the user has read it in the chat (opened the conversation, or written in it, after it came): `seen`, no e-mail;
2. the user is still on the chat (a message, or their page reading any conversation, in the last `away_s`): it
   waits until they have been gone `away_s`, then is looked at again;
3. e-mail is off (no `smtp_host`): `skipped`; the host app gave no address: `skipped`;
4. else it is claimed (pending -> sending) and sent: `sent`; a failure is recorded with what the mail server said
   and tried again after `retry_s`, doubling, up to `max_attempts` (then `failed`; a refused address fails at once).

The notice was committed with its cause, so a sender that was not running (a crash, a restart) finds it pending
and sends it. A notice is claimed before anything is sent, so two passes never send it twice; one left `sending`
by a sender that stopped mid-send is marked failed rather than sent again (it may have arrived):
`firstline notify retry` sends it again when someone decides it should be.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import DeliveryError
from core.settings import Settings
from engine.notify.mail import Letterhead, compose
from engine.notify.smtp import Transport
from engine.store.notifications import NoticeRow, NoticeStatus, Notifications

log = logging.getLogger("firstline.notify")

OFF = "e-mail is off: FIRSTLINE_SMTP_HOST is not set"
NO_ADDRESS = "no e-mail address: the host app gave none for this user"
STOPPED = ("the sender stopped while sending it (was the server stopped?); not sent again so it cannot arrive "
           "twice: `firstline notify retry ID` sends it again")


@dataclass(frozen=True)
class SendPolicy:
    """When a user counts as away, and how failures are retried."""

    away_s: float = 300.0
    max_attempts: int = 8
    retry_s: float = 60.0
    stale_s: float = 600.0  # a claim older than this belongs to a sender that stopped mid-send
    batch: int = 200  # notices looked at per pass

    @classmethod
    def from_settings(cls, settings: Settings) -> SendPolicy:
        # One attempt takes at most a handful of steps each bounded by the timeout; well past that, it has ended.
        return cls(settings.notify_away_s, settings.notify_max_attempts, settings.notify_retry_s,
                   max(600.0, 20 * settings.smtp_timeout_s))

    def retry_at(self, attempts: int, now: float) -> float | None:
        """When to try again after `attempts` failed attempts; None when they are used up."""
        if attempts >= self.max_attempts:
            return None
        return now + self.retry_s * 2 ** (attempts - 1)


@dataclass
class SendReport:
    """What one pass did, by outcome: the notices' ids."""

    sent: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # the user is still on the chat
    skipped: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)  # left `sending` by a sender that stopped

    def to_json(self) -> dict[str, list[str]]:
        return {"sent": self.sent, "seen": self.seen, "waiting": self.waiting, "skipped": self.skipped,
                "retrying": self.retrying, "failed": self.failed, "abandoned": self.abandoned}


class Sender:
    """Sends the outbox's due notices (`send_due`); `transport` None means e-mail is off."""

    def __init__(self, notifications: Notifications, transport: Transport | None, letterhead: Letterhead | None,
                 policy: SendPolicy | None = None, clock: Callable[[], float] = time.time,
                 instance: str | None = None) -> None:
        self.notifications = notifications
        self.transport = transport
        self.letterhead = letterhead
        self.policy = policy or SendPolicy()
        self.clock = clock
        self.instance = instance or uuid.uuid4().hex  # who claims: this sender
        self._lock = threading.Lock()  # one pass at a time (the worker, `firstline notify send` on the socket)

    @property
    def enabled(self) -> bool:
        return self.transport is not None and self.letterhead is not None

    def send_due(self) -> SendReport:
        """One pass over the outbox: every notice due now, as the module's docstring says."""
        report = SendReport()
        with self._lock:
            now = self.clock()
            report.abandoned = self.notifications.abandon_stale(now - self.policy.stale_s, now, STOPPED)
            for notice_id in report.abandoned:
                log.warning("notice %s was left half-sent by a sender that stopped; marked failed, not resent",
                            notice_id)
            for row in self.notifications.due(now, self.policy.batch):
                self._one(row, report)
        return report

    def _one(self, row: NoticeRow, report: SendReport) -> None:
        notice, now = row.notice, self.clock()
        if self.notifications.seen_since(notice.user_id, notice.conversation_id, notice.created_at):
            if self.notifications.settle(row.id, NoticeStatus.SEEN, now):
                report.seen.append(row.id)
            return
        last = self.notifications.last_active(notice.user_id)
        if last is not None and now - last < self.policy.away_s:
            if self.notifications.postpone(row.id, last + self.policy.away_s, now):
                report.waiting.append(row.id)
            return
        address = self.notifications.email(notice.user_id)
        if not self.enabled or address is None:
            if self.notifications.settle(row.id, NoticeStatus.SKIPPED, now, OFF if not self.enabled else NO_ADDRESS):
                report.skipped.append(row.id)
            return
        if not self.notifications.claim(row.id, self.instance, now):
            return  # taken meanwhile (another pass, or the user's history deleted)
        assert self.transport is not None and self.letterhead is not None
        attempts = row.attempts + 1
        try:
            self.transport.send(compose(row, address, now, self.letterhead))
        except DeliveryError as error:
            retry_at = None if error.permanent else self.policy.retry_at(attempts, self.clock())
            self.notifications.attempt_failed(row.id, self.instance, self.clock(), str(error), retry_at)
            if retry_at is None:
                log.warning("notice %s (%s) failed for good after %d attempt(s): %s", row.id, notice.kind.value,
                            attempts, error)
                report.failed.append(row.id)
            else:
                log.info("notice %s (%s): attempt %d failed, trying again in %g s: %s", row.id, notice.kind.value,
                         attempts, retry_at - self.clock(), error)
                report.retrying.append(row.id)
            return
        except Exception as error:
            self.notifications.attempt_failed(row.id, self.instance, self.clock(),
                                              f"could not compose or send: {error!r}", None)
            log.exception("notice %s could not be sent", row.id)
            report.failed.append(row.id)
            return
        self.notifications.sent(row.id, self.instance, self.clock())
        log.info("notice %s (%s) e-mailed to user %s", row.id, notice.kind.value, notice.user_id)
        report.sent.append(row.id)

    # -- for operators (firstline notify) -----------------------------------------------------------

    def status(self, limit: int = 20) -> dict[str, Any]:
        """{"email": "on"|"off", "counts": {status: n}, "recent": the latest notices not sent (pending, sending,
        failed, skipped) with their last error}."""
        waiting = (NoticeStatus.PENDING, NoticeStatus.SENDING, NoticeStatus.FAILED, NoticeStatus.SKIPPED)
        return {"email": "on" if self.enabled else "off", "counts": self.notifications.counts(),
                "recent": [notice_json(row) for row in self.notifications.listing(waiting, limit)]}

    def retry(self, notice_id: str | None = None) -> dict[str, Any]:
        """Failed notices (or the one named) pending again, attempts counted afresh: {"requeued": [ids]}."""
        return {"requeued": self.notifications.requeue_failed(self.clock(), notice_id)}


def notice_json(row: NoticeRow) -> dict[str, Any]:
    """A notice as `firstline notify status` shows it (never the address)."""
    n = row.notice
    return {"id": n.id, "kind": n.kind.value, "status": row.status.value, "user_id": n.user_id,
            "conversation_id": n.conversation_id, "about": n.source_id, "created_at": n.created_at,
            "attempts": row.attempts, "next_at": row.next_at if row.status is NoticeStatus.PENDING else None,
            "sent_at": row.sent_at, "last_error": row.last_error}


class SenderTimer:
    """A daemon thread calling `sender.send_due()` every `interval_s` seconds until `stop()`; the first pass runs
    at once, so what a crash left pending goes out as the server starts."""

    def __init__(self, sender: Sender, interval_s: float = 15.0) -> None:
        self.sender = sender
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SenderTimer:
        if not self.sender.enabled:
            # Once, at start-up; a warning so it shows where the server's output goes even with logging unset.
            log.warning("%s; users see a person's answer in their conversation when they come back", OFF)
        self._thread = threading.Thread(target=self._loop, name="firstline-notify", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            try:
                self.sender.send_due()
            except Exception:
                log.exception("the notification outbox could not be worked through; trying again in %g s",
                              self.interval_s)
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.ident is not None:  # started (a stop may come before)
            self._thread.join(timeout=5)
