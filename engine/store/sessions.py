"""Staff sessions as stored: the hash of the cookie's secret, who signed in with which credential, and when the
session was last used or ended. Revoking the credential ends its sessions in the same transaction.

A credential is an API token's id, or `user:NAME` for a staff user who signed in with a password
(engine/store/users.py): a session is revoked when its token is revoked or gone, or when its user is disabled or
gone."""

from __future__ import annotations

from dataclasses import dataclass

from engine.store.database import DuckDBStore, Statement

USER_CREDENTIAL = "user:"  # the prefix of a password user's credential; a token id is hex and never has it


@dataclass(frozen=True)
class SessionRow:
    id: str  # sha256 of the secret the cookie carries
    user_id: str
    role: str
    credential: str  # the API token's id it was opened with, or `user:NAME` for a password sign-in
    address: str
    created_at: float
    last_seen_at: float
    ended_at: float | None
    end_reason: str | None
    credential_revoked: bool


class StaffSessions:
    """The staff_sessions table."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    def add(self, row: SessionRow) -> None:
        self.db.transaction([(
            "INSERT INTO staff_sessions (id, user_id, role, credential, address, created_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.user_id, row.role, row.credential, row.address, row.created_at, row.last_seen_at))])

    def get(self, session_id: str) -> SessionRow | None:
        """The session with its credential's state: `credential_revoked` is true when the token is revoked or
        unknown, or, for `user:NAME`, when that staff user is disabled or unknown."""
        rows = self.db.execute(
            "SELECT s.id, s.user_id, s.role, s.credential, s.address, s.created_at, s.last_seen_at, s.ended_at, "
            "s.end_reason, CASE WHEN starts_with(s.credential, ?) THEN u.name IS NULL OR u.disabled_at IS NOT NULL "
            "ELSE coalesce(t.revoked, true) END FROM staff_sessions s "
            "LEFT JOIN api_tokens t ON t.id = s.credential "
            "LEFT JOIN staff_users u ON s.credential = ? || u.name WHERE s.id = ?",
            (USER_CREDENTIAL, USER_CREDENTIAL, session_id))
        return SessionRow(*rows[0]) if rows else None

    def touch(self, session_id: str, now: float) -> None:
        self.db.transaction([("UPDATE staff_sessions SET last_seen_at = ? WHERE id = ? AND ended_at IS NULL",
                              (now, session_id))])

    def end(self, session_id: str, reason: str, now: float) -> None:
        self.db.transaction([self.end_sql("id", session_id, reason, now)])

    def end_for_user(self, user_id: str, reason: str, now: float) -> int:
        """End every open session of `user_id`; returns how many were open."""
        sql, params = self.end_sql("user_id", user_id, reason, now)
        return len(self.db.transaction([(f"{sql} RETURNING id", params)])[0])

    @staticmethod
    def end_sql(column: str, value: str, reason: str, now: float) -> Statement:
        """The statement ending the open sessions whose `column` (id, user_id or credential) is `value`."""
        assert column in ("id", "user_id", "credential")  # a column name, never user input
        return (f"UPDATE staff_sessions SET ended_at = ?, end_reason = ? WHERE {column} = ? AND ended_at IS NULL",
                (now, reason, value))
