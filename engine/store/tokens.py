"""API tokens as stored: an id, whose they are, their role and a salted hash of the secret (never the secret)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.store.database import DuckDBStore
from engine.store.sessions import StaffSessions


@dataclass(frozen=True)
class TokenRow:
    id: str
    user_id: str
    role: str
    salt: str
    hash: str
    revoked: bool


class Tokens:
    """The tokens repository on the DuckDB database."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    def add(self, row: TokenRow, now: float) -> None:
        self.db.transaction([("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (row.id, row.user_id, row.role, row.salt, row.hash, now, False))])

    def get(self, token_id: str) -> TokenRow | None:
        rows = self.db.execute("SELECT id, user_id, role, salt, hash, revoked FROM api_tokens WHERE id = ?",
                                  (token_id,))
        return TokenRow(*rows[0]) if rows else None

    def all(self) -> list[TokenRow]:
        return [TokenRow(*row) for row in self.db.execute(
            "SELECT id, user_id, role, salt, hash, revoked FROM api_tokens ORDER BY created_at, id")]

    def revoke(self, token_id: str, now: float) -> bool:
        """Revoke a token and end every staff session opened with it, at once; False when there is no such token."""
        if self.get(token_id) is None:
            return False
        self.db.transaction([("UPDATE api_tokens SET revoked = true WHERE id = ?", (token_id,)),
                             StaffSessions.end_sql("credential", token_id, "token revoked", now)])
        return True

