"""Where each user was last seen on the chat: every time their page reads a conversation (or their list of
conversations), it is written to the store, so the away rule (engine/notify/sender.py) and the unseen marks read
stored data that holds across restarts, never this process's memory.

A page polls every few seconds while it waits for a person's answer; writing each poll would cost a transaction a
poll. So a read is written when it shows something newer than the last one written for that conversation (a new
answer is therefore always recorded as read), or when the last one written is older than `resolution_s`; the
memory below only remembers what was written, to skip what would change nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from engine.store.notifications import Notifications

RESOLUTION_S = 30.0
MAX_REMEMBERED = 10_000  # (user, conversation) pairs whose last write is remembered; beyond it all are forgotten


class Presence:
    """Records reads of the chat and says which conversations hold an answer not read yet."""

    def __init__(self, notifications: Notifications, clock: Callable[[], float] = time.time,
                 resolution_s: float = RESOLUTION_S) -> None:
        self.notifications = notifications
        self.clock = clock
        self.resolution_s = resolution_s
        self._written: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def reading(self, user_id: str, conversation_id: str = "", newest_at: float | None = None) -> None:
        """The user's page just read `conversation_id` ('' for their list), whose newest message is from
        `newest_at` (epoch s; None when unknown)."""
        now = self.clock()
        key = (user_id, conversation_id)
        with self._lock:
            last = self._written.get(key)
            if last is not None and now - last < self.resolution_s and (newest_at is None or newest_at < last):
                return
            if len(self._written) >= MAX_REMEMBERED:
                self._written.clear()
            self._written[key] = now
        self.notifications.mark_seen(user_id, conversation_id, now)

    def unseen(self, user_id: str) -> dict[str, float]:
        """{conversation id: when the latest answer came} for the user's conversations holding a person's answer
        they have not read since (nor written in the conversation after)."""
        return self.notifications.unseen(user_id)
