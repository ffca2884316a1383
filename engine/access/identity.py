"""Identity the host app vouches for: it signs its user's id with a secret it shares with Firstline, the way
Intercom's identity verification and other embedded support widgets do it (HMAC-SHA256 of the user id, hex).

The host app's server computes `user_hash = HMAC-SHA256(identity_secret, user_id)` and hands both to the page
that opens the chat; the page sends them to `POST /api/v1/identity`. A user who cannot show such a hash is
anonymous: they can chat, and every remedy that changes an account is explained instead of run.

The host app may also give the user's e-mail address, so a person's answer reaches them after they left
(engine/notify/). The address comes with a signature of its own that binds it to the user:
`email_hash = HMAC-SHA256(identity_secret, user_id + "\n" + email)` (the id, one line feed, the address exactly as
sent). A browser holding a valid `user_hash` therefore still cannot make Firstline write to a stranger: it would
need the host app to have signed that address for that user. An address never contains a line feed, so the string
names one (id, address) pair.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable

from core.errors import InputError, UnauthorizedError
from engine.store.notifications import Notifications

MAX_USER_ID_CHARS = 200
MAX_EMAIL_CHARS = 254  # RFC 5321's limit on a forward path, less its angle brackets
MAX_LOCAL_PART_CHARS = 64
# A practical address: RFC 5322's dot-atom on both sides, a domain of at least two DNS labels whose last is not all
# digits. Quoted local parts, comments, IP literals and non-ASCII (send an internationalised domain as its xn--
# form) are refused: no mail system a host app uses needs them, and nothing else can reach a header.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})+)", re.ASCII)


def user_hash(secret: str, user_id: str) -> str:
    """The signature the host app sends beside `user_id` (lowercase hex, 64 characters)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify(secret: str, user_id: object, signature: object) -> str:
    """The user id the host app vouched for. InputError for a malformed id or hash; UnauthorizedError when no
    secret is configured or the hash does not match (compared in constant time)."""
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_USER_ID_CHARS:
        raise InputError(f"`user_id` must be a non-empty string of at most {MAX_USER_ID_CHARS} characters",
                         code="invalid_body")
    if not isinstance(signature, str) or not signature:
        raise InputError("`user_hash` must be the hex HMAC-SHA256 of `user_id` under the shared identity secret",
                         code="invalid_body")
    if not secret:
        raise UnauthorizedError("this server verifies no identities: its operator has not set identity_secret "
                                "(FIRSTLINE_IDENTITY_SECRET), so chat continues unverified")
    if not signature.isascii() or not hmac.compare_digest(user_hash(secret, user_id), signature.strip().lower()):
        raise UnauthorizedError("the identity could not be verified: `user_hash` does not match `user_id`")
    return user_id


def email_hash(secret: str, user_id: str, email: str) -> str:
    """The signature the host app sends beside `email`: hex HMAC-SHA256 of `user_id`, a line feed, and `email`."""
    return hmac.new(secret.encode(), f"{user_id}\n{email}".encode(), hashlib.sha256).hexdigest()


def check_email(value: object) -> str:
    """`value` if it is an e-mail address Firstline will write to (at most 254 characters, a plain
    local@domain.tld in ASCII); InputError (code `invalid_email`) saying what is wrong otherwise."""
    if not isinstance(value, str) or not value:
        raise InputError("`email` must be the user's e-mail address as a non-empty string", code="invalid_email")
    if len(value) > MAX_EMAIL_CHARS:
        raise InputError(f"`email` is {len(value)} characters long; an address has at most {MAX_EMAIL_CHARS}",
                         code="invalid_email")
    found = EMAIL.fullmatch(value)
    if found is None or found.group("domain").rsplit(".", 1)[1].isdigit():
        raise InputError("`email` is not an address Firstline can write to: send a plain name@example.com in ASCII "
                         "(no spaces, quotes or display name; an internationalised domain in its xn-- form)",
                         code="invalid_email")
    if len(found.group("local")) > MAX_LOCAL_PART_CHARS:
        raise InputError(f"`email`'s part before the @ is longer than {MAX_LOCAL_PART_CHARS} characters",
                         code="invalid_email")
    return value


def verify_email(secret: str, user_id: str, email: object, signature: object) -> str:
    """The address the host app vouched for `user_id` (already verified by `verify`). InputError for a malformed
    address or a missing signature; UnauthorizedError when the signature does not cover this user and address."""
    address = check_email(email)
    if not isinstance(signature, str) or not signature:
        raise InputError("`email_hash` must come with `email`: the hex HMAC-SHA256 of `user_id`, a line feed and "
                         "`email` under the shared identity secret (docs/notifications.md)", code="invalid_body")
    if not secret:  # `verify` refuses first; kept so this check stands on its own
        raise UnauthorizedError("this server verifies no identities: its operator has not set identity_secret")
    if not signature.isascii() or not hmac.compare_digest(email_hash(secret, user_id, address),
                                                           signature.strip().lower()):
        raise UnauthorizedError("the e-mail address could not be verified: `email_hash` does not match `user_id` and "
                                "`email` (HMAC-SHA256 of the id, a line feed and the address); nothing was changed")
    return address


class IdentityBook:
    """Keeps the e-mail addresses host apps vouch for (`verify_email`), one per user, the latest replacing an
    earlier one; deleted with the user's history (engine/store/privacy.py)."""

    def __init__(self, contacts: Notifications, clock: Callable[[], float] = time.time) -> None:
        self.contacts = contacts
        self.clock = clock

    def remember(self, user_id: str, email: str) -> str:
        """Keep `email` (already verified for `user_id`) as the address their notices go to; returns it."""
        self.contacts.set_email(user_id, email, self.clock())
        return email

    def email(self, user_id: str) -> str | None:
        """The address kept for `user_id`, if any."""
        return self.contacts.email(user_id)
