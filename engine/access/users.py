"""Staff users who sign in to the staff pages with a name and a password: deciders (the escalation desk),
curators and analysts (the analysts' page). API tokens stay the way integrations, operators and scripts
authenticate (engine/access/tokens.py).

Passwords are hashed with argon2id through argon2-cffi's `PasswordHasher` at the library's defaults (RFC 9106's
low-memory profile in argon2-cffi 25: 64 MiB, 3 passes, 4 lanes), the first choice of OWASP's Password Storage
Cheat Sheet; a hash made under older defaults is redone at the next successful sign-in. A password must be
15-1024 characters (Unicode code points, after NFKC normalisation) and not the user's name: NIST SP 800-63B-4
(3.1.1.2) requires 15 for a password that is the only factor, as it is here, and no composition rules.

Categories limit which business categories a decider may decide; none means all. A decider known only by an API
token (no staff_users row) may decide every category, as before staff users existed.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import ConflictError, InputError, NotFoundError
from core.taxonomy import BUSINESS
from engine.access.tokens import Identity, Role
from engine.store.users import StaffUserRow, StaffUsers, credential

NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}", re.ASCII)
MIN_PASSWORD_CHARS = 15
MAX_PASSWORD_CHARS = 1024  # far above any passphrase; bounds what one sign-in attempt makes the server hash
# The staff roles: deciders, curators and analysts have pages to sign in to; engineers close hand-offs (the command
# line and the API). Users and operators use tokens.
STAFF_ROLES = (Role.DECIDER, Role.CURATOR, Role.ANALYST, Role.ENGINEER)


@dataclass(frozen=True)
class StaffUser:
    """A staff user as shown: never the password or its hash. `categories` empty: all; times in epoch seconds."""

    name: str
    role: Role
    categories: tuple[str, ...]
    created_at: float
    disabled_at: float | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


def _shown(row: StaffUserRow) -> StaffUser:
    return StaffUser(row.name, Role(row.role), row.categories, row.created_at, row.disabled_at)


def _normalised(password: str) -> str:
    # NIST SP 800-63B asks for NFKC or NFKD before hashing, so the same password typed on two keyboards that
    # compose accents differently is the same password.
    return unicodedata.normalize("NFKC", password)


def check_name(name: str) -> str:
    """`name` if it is 1-64 ASCII letters, digits, `.`, `_`, `-` or `@`; InputError otherwise."""
    if not NAME.fullmatch(name):
        raise InputError(f"a staff user's name is 1 to 64 letters, digits, '.', '_', '-' or '@' (an e-mail "
                         f"address will do), got {name!r}", code="invalid_name")
    return name


def check_role(role: str) -> Role:
    """The staff role `role` names (decider, curator, analyst or engineer); InputError otherwise, saying what the
    others use."""
    if role not in {r.value for r in STAFF_ROLES}:
        raise InputError(f"a staff user's role is decider, curator, analyst or engineer, got {role!r}; integrations "
                         "and operators (Prometheus, Alertmanager) use API tokens: `firstline token create --role ...`",
                         code="invalid_role")
    return Role(role)


def check_categories(categories: Iterable[str], role: Role) -> tuple[str, ...]:
    """The business categories, in taxonomy order without repeats (empty: all); InputError naming an unknown one,
    or any for a role that decides nothing."""
    wanted = {categories} if isinstance(categories, str) else set(categories)  # one name is not its letters
    unknown = sorted(wanted - set(BUSINESS))
    if unknown:
        raise InputError(f"unknown business categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                         f"the categories are {', '.join(BUSINESS)} (none given: all of them)",
                         code="invalid_categories")
    if wanted and role is not Role.DECIDER:
        raise InputError(f"categories limit what a decider may decide; a {role.value} decides nothing",
                         code="invalid_categories")
    return tuple(c for c in BUSINESS if c in wanted)


def check_password(password: str, name: str) -> str:
    """The normalised password if it is 15-1024 characters and not the name; InputError otherwise (no composition
    rules: NIST SP 800-63B-4 forbids them)."""
    normalised = _normalised(password)
    if len(normalised) < MIN_PASSWORD_CHARS:
        raise InputError(f"the password must be at least {MIN_PASSWORD_CHARS} characters (it is {len(normalised)}); "
                         "a few words make a good one", code="weak_password")
    if len(normalised) > MAX_PASSWORD_CHARS:
        raise InputError(f"the password must be at most {MAX_PASSWORD_CHARS} characters", code="weak_password")
    if normalised.casefold() == name.casefold():
        raise InputError("the password must not be the user's name", code="weak_password")
    return normalised


class UserBook:
    """Creates, authenticates and administers staff users. `hasher` is argon2-cffi's `PasswordHasher` (its
    defaults unless a test passes a cheaper one); `clock` gives epoch seconds for created_at and disabled_at."""

    def __init__(self, users: StaffUsers, clock: Callable[[], float] = time.time,
                 hasher: PasswordHasher | None = None) -> None:
        self.users = users
        self.clock = clock
        self.hasher = hasher or PasswordHasher()

    @cached_property
    def _dummy_hash(self) -> str:
        # Made with this hasher's own parameters, so checking a password against it takes as long as checking a
        # real user's; made on first need rather than at start-up (a hash costs about 0.1 s), so the first unknown
        # name after start-up takes one hash longer.
        return self.hasher.hash("no user has this password")

    def create(self, name: str, role: str, password: str, categories: Iterable[str] = ()) -> StaffUser:
        """A new staff user. InputError for a bad name, role, category or password (nothing is stored);
        ConflictError when the name is taken, disabled users included."""
        name = check_name(name)
        staff_role = check_role(role)
        allowed = check_categories(categories, staff_role)
        password_hash = self.hasher.hash(check_password(password, name))
        row = StaffUserRow(name, staff_role.value, allowed, password_hash, self.clock(), None)
        if not self.users.add(row):
            raise ConflictError(f"a staff user named {name!r} already exists, disabled or not; choose another "
                                "name (`firstline user list` shows the names taken)")
        return _shown(row)

    def authenticate(self, name: str, password: str) -> Identity | None:
        """The identity `name` signs in as, or None for an unknown or disabled user or a wrong password. Takes
        about as long whichever it is, so the answer's timing does not tell which names exist."""
        row = self.users.get(name)
        if row is None:
            self._matches(self._dummy_hash, password)
            return None
        if not self._matches(row.password_hash, password) or row.disabled_at is not None:
            return None
        if self.hasher.check_needs_rehash(row.password_hash):
            self.users.set_password_hash(name, self.hasher.hash(_normalised(password)), replaces=row.password_hash)
        return Identity(row.name, Role(row.role), credential(row.name))

    def _matches(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, _normalised(password))
        except (VerificationError, InvalidHashError):  # a wrong password, or a stored hash argon2 cannot read
            return False

    def get(self, name: str) -> StaffUser | None:
        """The user named `name`, disabled or not, or None."""
        row = self.users.get(name)
        return _shown(row) if row else None

    def categories(self, name: str) -> tuple[str, ...]:
        """The business categories `name` may decide; empty means all, and is also the answer for a name with
        no staff user (a decider known by an API token decides every category). A disabled user's categories
        are still theirs: they sign in nowhere (`authenticate`, staff sessions), which is checked there."""
        row = self.users.get(name)
        return row.categories if row else ()

    def may_decide(self, name: str, category: str) -> bool:
        """Whether `name` may decide a business escalation in `category`: a decider with no staff user (an API
        token) may decide every business category; a disabled staff user, or one who is not a decider, none; a
        decider those of their categories (all when none are set). False for a category that is not a business
        one. The role of whoever signed in is checked where they signed in, not here."""
        if category not in BUSINESS:
            return False
        row = self.users.get(name)
        if row is None:
            return True
        if row.disabled_at is not None or row.role != Role.DECIDER.value:
            return False
        return not row.categories or category in row.categories

    def set_password(self, name: str, password: str) -> StaffUser:
        """Give `name` a new password; the sessions the old one opened end at once. NotFoundError for an unknown
        name, InputError for a password that does not qualify (nothing changes)."""
        found = self._existing(name)
        password_hash = self.hasher.hash(check_password(password, name))
        if not self.users.change_password(name, password_hash, self.clock()):
            raise self._not_found(name)
        return found

    def set_categories(self, name: str, categories: Iterable[str]) -> StaffUser:
        """Replace the categories `name` may decide (empty: all); effective at their next request. NotFoundError
        for an unknown name, InputError for an unknown category or a user who is not a decider."""
        found = self._existing(name)
        allowed = check_categories(categories, found.role)
        if not self.users.set_categories(name, allowed):
            raise self._not_found(name)
        return StaffUser(found.name, found.role, allowed, found.created_at, found.disabled_at)

    def disable(self, name: str) -> StaffUser:
        """Disable `name`: they cannot sign in, and every open staff session of theirs (password or token) ends
        at once; their API tokens are not revoked (`firstline token revoke`). NotFoundError for an unknown name;
        disabling twice keeps the first time."""
        self._existing(name)
        if not self.users.disable(name, self.clock()):
            raise self._not_found(name)
        return self._existing(name)

    def listing(self) -> list[StaffUser]:
        """Every staff user, disabled ones included, in the order they were created."""
        return [_shown(row) for row in self.users.listing()]

    def _existing(self, name: str) -> StaffUser:
        found = self.get(name)
        if found is None:
            raise self._not_found(name)
        return found

    @staticmethod
    def _not_found(name: str) -> NotFoundError:
        return NotFoundError(f"no staff user named {name!r}; `firstline user list` shows them")
