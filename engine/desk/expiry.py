"""The clock that closes unanswered business requests: every `interval_s` the desk expires what is past its time
to answer, so a request nobody opens still closes (deny by default) and its user still hears back."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("firstline.desk")


class Expires(Protocol):
    def expire_due(self) -> list[str]: ...


class ExpiryTimer:
    """A daemon thread calling `desk.expire_due()` every `interval_s` seconds until `stop()`."""

    def __init__(self, desk: Expires, interval_s: float = 60.0) -> None:
        self.desk = desk
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ExpiryTimer:
        self._thread = threading.Thread(target=self._loop, name="firstline-desk-expiry", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                expired = self.desk.expire_due()
            except Exception:
                log.exception("expiring overdue escalations failed; retrying in %g s", self.interval_s)
                continue
            if expired:
                log.info("closed %d unanswered escalation(s) as expired: %s", len(expired), ", ".join(expired))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.ident is not None:  # started (a stop may come before)
            self._thread.join(timeout=5)
