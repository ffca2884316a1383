"""Identity the host app vouches for: it signs its user's id with a secret it shares with Firstline, the way
Intercom's identity verification and other embedded support widgets do it (HMAC-SHA256 of the user id, hex).

The host app's server computes `user_hash = HMAC-SHA256(identity_secret, user_id)` and hands both to the page
that opens the chat; the page sends them to `POST /api/v1/identity`. A user who cannot show such a hash is
anonymous: they can chat, and every remedy that changes an account is explained instead of run.
"""

from __future__ import annotations

import hashlib
import hmac

from core.errors import InputError, UnauthorizedError

MAX_USER_ID_CHARS = 200


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
    if not hmac.compare_digest(user_hash(secret, user_id), signature.strip().lower()):
        raise UnauthorizedError("the identity could not be verified: `user_hash` does not match `user_id`")
    return user_id
