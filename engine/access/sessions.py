"""Staff sessions held on the server: a curator, decider or analyst signs in once and the session is checked on
every request, so revoking the credential, signing out or leaving the page idle ends it at once.

The browser's cookie carries only a random 256-bit secret; the store keeps its SHA-256 (a leaked database opens
no session). A session is refused when it was ended (sign-out, revocation), when the token it was opened with is
revoked or the staff user who signed in with a password is disabled, when it has been idle longer than `idle_s`,
or when it is older than `max_age_s` whatever its use.
OWASP's Session Management Cheat Sheet is the source of the idle and absolute time-outs.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.access.tokens import Identity, Role
from engine.store.sessions import USER_CREDENTIAL, SessionRow, StaffSessions

TOUCH_EVERY_S = 30.0  # last use is written at most this often: a page with many requests is one write


@dataclass(frozen=True)
class StaffSession:
    """A live session: who, in which role, since when (epoch seconds)."""

    id: str
    user_id: str
    role: Role
    created_at: float


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionBook:
    """Opens, checks and ends staff sessions. `idle_s` and `max_age_s` are in seconds."""

    def __init__(self, sessions: StaffSessions, idle_s: float, max_age_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.sessions = sessions
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.clock = clock

    def open(self, identity: Identity, address: str) -> str:
        """A new session for a signed-in `identity`; returns the secret for the cookie (never stored)."""
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        self.sessions.add(SessionRow(_digest(secret), identity.user_id, identity.role.value, identity.token_id,
                                     address or "", now, now, None, None, False))
        return secret

    def check(self, secret: str) -> StaffSession | None:
        """The live session the cookie's `secret` opens, or None (unknown, ended, revoked, idle or too old). An
        idle or too old session is ended in the store, so it says why it stopped."""
        if not secret:
            return None
        row = self.sessions.get(_digest(secret))
        if row is None or row.ended_at is not None:
            return None
        now = self.clock()
        reason = self._expiry(row, now)
        if reason:
            self.sessions.end(row.id, reason, now)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY_S:
            self.sessions.touch(row.id, now)
        return StaffSession(row.id, row.user_id, Role(row.role), row.created_at)

    def _expiry(self, row: SessionRow, now: float) -> str | None:
        if row.credential_revoked:  # its token is revoked (or gone), or its password user disabled (or gone)
            return "user disabled" if row.credential.startswith(USER_CREDENTIAL) else "token revoked"
        if now - row.last_seen_at > self.idle_s:
            return f"idle for more than {self.idle_s:g} s"
        if now - row.created_at > self.max_age_s:
            return f"older than {self.max_age_s:g} s"
        return None

    def end(self, secret: str, reason: str = "signed out") -> None:
        """End the session the cookie's `secret` opened (nothing when there is none)."""
        if secret:
            self.sessions.end(_digest(secret), reason, self.clock())

    def end_for_user(self, user_id: str, reason: str = "signed out everywhere") -> int:
        """End every open session of `user_id`; returns how many there were."""
        return self.sessions.end_for_user(user_id, reason, self.clock())
