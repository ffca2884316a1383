"""Staff users as stored: people who sign in to the staff pages with a name and a password (deciders, curators).
Only the password's argon2 hash is kept. Disabling a user ends every staff session of theirs in the same
transaction, so nothing they opened outlives the account."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from engine.store.database import DuckDBStore
from engine.store.sessions import USER_CREDENTIAL, StaffSessions

COLUMNS = "name, role, categories, password_hash, created_at, disabled_at"


@dataclass(frozen=True)
class StaffUserRow:
    name: str
    role: str
    categories: tuple[str, ...]  # business categories this user may decide; empty: all
    password_hash: str  # argon2's encoded hash (parameters, salt and digest in one string)
    created_at: float
    disabled_at: float | None


def _row(found: tuple) -> StaffUserRow:
    name, role, categories, password_hash, created_at, disabled_at = found
    return StaffUserRow(name, role, tuple(json.loads(categories)), password_hash, created_at, disabled_at)


class StaffUsers:
    """The staff_users table."""

    def __init__(self, db: DuckDBStore) -> None:
        self.db = db

    def add(self, row: StaffUserRow) -> bool:
        """Store a new user; False (and nothing written) when the name is taken."""
        added = self.db.transaction([(
            f"INSERT INTO staff_users ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING name",
            (row.name, row.role, json.dumps(list(row.categories)), row.password_hash, row.created_at,
             row.disabled_at))])
        return bool(added[0])

    def get(self, name: str) -> StaffUserRow | None:
        rows = self.db.execute(f"SELECT {COLUMNS} FROM staff_users WHERE name = ?", (name,))
        return _row(rows[0]) if rows else None

    def listing(self) -> list[StaffUserRow]:
        """Every user, disabled ones included, in the order they were created."""
        return [_row(found) for found in self.db.execute(
            f"SELECT {COLUMNS} FROM staff_users ORDER BY created_at, name")]

    def set_password_hash(self, name: str, password_hash: str, replaces: str) -> bool:
        """Swap the hash for a stronger one of the same password, only if it is still `replaces` (a password
        changed meanwhile is kept); False when it was not."""
        changed = self.db.transaction([(
            "UPDATE staff_users SET password_hash = ? WHERE name = ? AND password_hash = ? RETURNING name",
            (password_hash, name, replaces))])
        return bool(changed[0])

    def change_password(self, name: str, password_hash: str, now: float) -> bool:
        """A new password: store its hash and end the sessions the old one opened; False for an unknown name."""
        if self.get(name) is None:
            return False
        self.db.transaction([
            ("UPDATE staff_users SET password_hash = ? WHERE name = ?", (password_hash, name)),
            StaffSessions.end_sql("credential", credential(name), "password changed", now)])
        return True

    def set_categories(self, name: str, categories: Sequence[str]) -> bool:
        """Replace the categories the user may decide (empty: all); False for an unknown name."""
        changed = self.db.transaction([("UPDATE staff_users SET categories = ? WHERE name = ? RETURNING name",
                                        (json.dumps(list(categories)), name))])
        return bool(changed[0])

    def disable(self, name: str, now: float) -> bool:
        """Disable the user (the first time's moment is kept) and end every open staff session of that name, at
        once; False for an unknown name, and then nobody's session is touched."""
        # Checked first: ending sessions by user_id for a name with no account would sign out a token user.
        if self.get(name) is None:
            return False
        self.db.transaction([
            ("UPDATE staff_users SET disabled_at = coalesce(disabled_at, ?) WHERE name = ?", (now, name)),
            StaffSessions.end_sql("user_id", name, "user disabled", now)])
        return True


def credential(name: str) -> str:
    """The credential a password user's sessions record (`staff_sessions.credential`): `user:NAME`, never an API
    token's id (twelve hex digits)."""
    return f"{USER_CREDENTIAL}{name}"
