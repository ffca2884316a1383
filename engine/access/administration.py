"""What an administrator does to who may use Firstline: issue and revoke API tokens, record users' accounts,
create and administer staff users who sign in with a password.

The same `Administration` runs in two places: inside the server (web/admin.py serves it on a local socket, so it
works while the server holds the database, DuckDB admitting one writing process) and in the command line when
no server runs. Results are plain dictionaries, the shape both paths print.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from core.errors import InputError, NotFoundError
from engine.access.tokens import Role, TokenBook
from engine.access.users import StaffUser, UserBook
from engine.store.decisions import Account, Decisions

DAY_S = 86400.0


class Administration:
    """Tokens, accounts and staff users, validated here whichever path the request came by."""

    def __init__(self, tokens: TokenBook, accounts: Decisions, users: UserBook,
                 clock: Callable[[], float] = time.time) -> None:
        self.tokens = tokens
        self.accounts = accounts
        self.users = users
        self.clock = clock

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

    def set_account(self, user: str, plan: str, seats: object, role: str, organisation: object = "",
                    since: object = None, monthly_price: object = None) -> dict[str, Any]:
        """Record `user`'s account: {"user", "plan", "seats", "role", "organisation", "since", "monthly_price"}.
        The rules see plan, seats and role; the escalation desk also shows the organisation, the tenure (`since`:
        epoch seconds the account began) and what it pays a month. InputError names a bad field."""
        user, plan, role = user.strip(), plan.strip(), role.strip()
        if not user or not plan or not role:
            raise InputError("the user, plan and role must not be empty", code="invalid_body")
        if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
            raise InputError(f"seats must be a whole number of at least 1, got {seats!r}", code="invalid_body")
        if not isinstance(organisation, str):
            raise InputError("organisation must be a string", code="invalid_body")
        since_s = _optional_number(since, "since (epoch seconds the account began)")
        if since_s is not None and since_s > self.clock() + DAY_S:  # a day's slack: the dates are UTC days
            raise InputError("since is in the future: give the day the account began", code="invalid_body")
        price = _optional_number(monthly_price, "monthly_price")
        account = Account(plan, seats, role, organisation.strip(), since_s, price)
        self.accounts.set_account(user, account)
        return _account(user, account)

    def account(self, user: str) -> dict[str, Any]:
        found = self.accounts.account(user)
        if found is None:
            raise NotFoundError(f"no account recorded for {user!r}; `firstline account set {user} --plan ... "
                                "--seats ...`")
        return _account(user, found)

    def create_user(self, name: str, role: str, password: object, categories: object = ()) -> dict[str, Any]:
        """A new staff user: {"name", "role", "categories", "created_at", "disabled", "disabled_at"} (never the
        password or its hash). InputError for a bad name, role, password or category; ConflictError for a name
        taken."""
        return _user(self.users.create(name, role, _password(password), _categories(categories)))

    def list_users(self) -> list[dict[str, Any]]:
        """Every staff user, as `create_user` shows one, in the order they were created."""
        return [_user(found) for found in self.users.listing()]

    def disable_user(self, name: str) -> dict[str, Any]:
        """Disable `name` and end their staff sessions at once; NotFoundError for an unknown name."""
        return _user(self.users.disable(name))

    def set_user_categories(self, name: str, categories: object) -> dict[str, Any]:
        """Replace the business categories `name` may decide (empty: all); NotFoundError, InputError."""
        return _user(self.users.set_categories(name, _categories(categories)))

    def set_user_password(self, name: str, password: object) -> dict[str, Any]:
        """A new password for `name`; the sessions the old one opened end. NotFoundError, InputError."""
        return _user(self.users.set_password(name, _password(password)))


def _user(user: StaffUser) -> dict[str, Any]:
    return {"name": user.name, "role": user.role.value, "categories": list(user.categories),
            "created_at": user.created_at, "disabled": user.disabled, "disabled_at": user.disabled_at}


def _password(value: object) -> str:
    if not isinstance(value, str):
        raise InputError("the password must be a string", code="invalid_body")
    return value


def _categories(value: object) -> list[str]:
    """A list of category names, from a JSON body or the command line; InputError for anything else."""
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise InputError("categories must be a list of business category names, e.g. [\"pricing\"]",
                         code="invalid_body")
    return list(value)


def _account(user: str, account: Account) -> dict[str, Any]:
    return {"user": user, "plan": account.plan, "seats": account.seats, "role": account.role,
            "organisation": account.organisation, "since": account.since, "monthly_price": account.monthly_price}


def _optional_number(value: object, name: str) -> float | None:
    """A finite number of at least 0, or None; InputError naming `name` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a number of at least 0, got {value!r}", code="invalid_body")
    return float(value)
