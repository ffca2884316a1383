"""API tokens for integrations: `fl_<id>_<secret>`, of which only a salted hash of the secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from core.errors import InputError
from engine.store.tokens import TokenRow, Tokens

PREFIX = "fl"


class Role(StrEnum):
    USER = "user"  # chats as its user, like the web page
    DECIDER = "decider"  # may also read business escalations and record their decisions
    CURATOR = "curator"  # may also sign in to the curator pages: learned rules, playbooks, the unmatched queue
    ANALYST = "analyst"  # may also sign in to the analysts' page (/analytics/): the metrics, a read-only SQL console
    ENGINEER = "engineer"  # may also list the problems handed to engineering and close them with a note for the user
    OPERATOR = "operator"  # Prometheus and Alertmanager: may read /metrics and post alerts, nothing else


@dataclass(frozen=True)
class Identity:
    user_id: str
    role: Role
    token_id: str = ""  # the credential presented (an API token's id)


@dataclass(frozen=True)
class Issued:
    """A token as created: `token` is shown once and never stored."""

    id: str
    user_id: str
    role: Role
    token: str


def _digest(salt: str, secret: str) -> str:
    # The secret is 256 random bits, so nothing can be guessed by trying: one keyed hash is enough, and it
    # keeps each API call cheap where a password hash (argon2, scrypt) would cost tens of milliseconds.
    return hmac.new(bytes.fromhex(salt), secret.encode(), hashlib.sha256).hexdigest()


class TokenBook:
    """Creates, checks and revokes API tokens."""

    def __init__(self, tokens: Tokens, clock: Callable[[], float] = time.time) -> None:
        self.tokens = tokens
        self.clock = clock

    def create(self, user_id: str, role: Role = Role.USER) -> Issued:
        if not user_id.strip():
            raise InputError("a token needs a user name, e.g. --user helpdesk-bot", code="invalid_user")
        token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
        self.tokens.add(TokenRow(token_id, user_id, Role(role).value, salt, _digest(salt, secret), False),
                             self.clock())
        return Issued(token_id, user_id, Role(role), f"{PREFIX}_{token_id}_{secret}")

    def identify(self, token: str) -> Identity | None:
        """Who a presented token belongs to, or None for a malformed, unknown, wrong or revoked one."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not token_id or not secret:
            return None
        row = self.tokens.get(token_id)
        if row is None or row.revoked or not hmac.compare_digest(row.hash, _digest(row.salt, secret)):
            return None
        return Identity(row.user_id, Role(row.role), row.id)

    def revoke(self, token_id: str) -> bool:
        """Revoke the token and end the staff sessions opened with it; False when there is no such token."""
        return self.tokens.revoke(token_id, self.clock())

    def listing(self) -> list[TokenRow]:
        """Every token ever issued, revoked ones included (ids, users and roles; the hashes are not for show)."""
        return self.tokens.all()
