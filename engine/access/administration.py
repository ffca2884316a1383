"""What an administrator does to who may use Firstline: issue and revoke API tokens, record users' accounts.

The same `Administration` runs in two places: inside the server (web/admin.py serves it on a local socket, so it
works while the server holds the database, DuckDB admitting one writing process) and in the command line when
no server runs. Results are plain dictionaries, the shape both paths print.
"""

from __future__ import annotations

from typing import Any

from core.errors import InputError, NotFoundError
from engine.access.tokens import Role, TokenBook
from engine.store.decisions import Account, Decisions


class Administration:
    """Tokens and accounts, validated here whichever path the request came by."""

    def __init__(self, tokens: TokenBook, accounts: Decisions) -> None:
        self.tokens = tokens
        self.accounts = accounts

    def create_token(self, user: str, role: str) -> dict[str, Any]:
        """{"id", "user_id", "role", "token"}; the token is shown this once. InputError for an empty user or an
        unknown role."""
        if role not in {r.value for r in Role}:
            raise InputError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}",
                             code="invalid_body")
        issued = self.tokens.create(user.strip(), Role(role))
        return {"id": issued.id, "user_id": issued.user_id, "role": issued.role.value, "token": issued.token}

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """{"revoked": id}: the token stops working and its staff sessions end at once. NotFoundError if unknown."""
        if not self.tokens.revoke(token_id):
            raise NotFoundError(f"no token with id {token_id!r}; `firstline token list` shows them")
        return {"revoked": token_id}

    def list_tokens(self) -> list[dict[str, Any]]:
        """[{"id", "user_id", "role", "revoked"}] in the order they were issued; never a secret or its hash."""
        return [{"id": t.id, "user_id": t.user_id, "role": t.role, "revoked": t.revoked} for t in self.tokens.listing()]

    def set_account(self, user: str, plan: str, seats: object, role: str) -> dict[str, Any]:
        """Record `user`'s account as the rules see it: {"user", "plan", "seats", "role"}."""
        user, plan, role = user.strip(), plan.strip(), role.strip()
        if not user or not plan or not role:
            raise InputError("the user, plan and role must not be empty", code="invalid_body")
        if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
            raise InputError(f"seats must be a whole number of at least 1, got {seats!r}", code="invalid_body")
        self.accounts.set_account(user, Account(plan, seats, role))
        return {"user": user, "plan": plan, "seats": seats, "role": role}

    def account(self, user: str) -> dict[str, Any]:
        found = self.accounts.account(user)
        if found is None:
            raise NotFoundError(f"no account recorded for {user!r}; `firstline account set {user} --plan ... "
                                "--seats ...`")
        return {"user": user, "plan": found.plan, "seats": found.seats, "role": found.role}
