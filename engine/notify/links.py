"""The signed token in a notification e-mail's link: it names the user the e-mail was sent to, the conversation it is
about and when it stops working, so the browser that opens the link can continue as that user (docs/notifications.md,
"The link back"). Without it, a user who chatted in the widget (whose session lives in the host page's frame, not in
a cookie of Firstline's own page) would open the link as a stranger.

    TOKEN = EXPIRES "." USER "." MAC
    EXPIRES  when it stops working, epoch seconds
    USER     the user id, base64url (no padding)
    MAC      base64url of HMAC-SHA256(KEY, JSON [user id, conversation id, EXPIRES])
    KEY      HMAC-SHA256(the server's secret, PURPOSE)

The conversation id is signed but not carried: the link names it beside the token, so a token used with another
conversation does not verify. The key is derived for this one purpose, so nothing else the server's secret signs
(the chat's sessions) can pass for a token, nor a token for anything else. The secret is passed in (the wiring reads
it, engine/access/secret.py); this module does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

PURPOSE = b"firstline notification link v1"
MAX_TOKEN_CHARS = 1000  # a 200-character user id makes about 330; anything longer was not made here
TOKEN = re.compile(r"(?P<expires>[0-9]{1,12})\.(?P<user>[A-Za-z0-9_-]+)\.(?P<mac>[A-Za-z0-9_-]{43})")


class Refusal(Enum):
    """Why a link's token opens nothing."""

    EXPIRED = "expired"  # made here for this conversation, but past its time
    INVALID = "invalid"  # not made here for this conversation: changed, cut short, another conversation or key


@dataclass(frozen=True)
class LinkCheck:
    """What a link's token opens: the user it was made for, or why it opens nothing."""

    user_id: str = ""
    refusal: Refusal | None = None


class NoticeLinks:
    """Makes and checks the tokens of notification links; a token lives `ttl_s` seconds from when it was made."""

    def __init__(self, secret: str, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a notification link needs the server's secret to sign it")
        self._key = hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()
        self.ttl_s = ttl_s
        self.clock = clock

    def token(self, user_id: str, conversation_id: str, now: float | None = None) -> str:
        """The token for a link to `conversation_id` sent to `user_id` at `now` (epoch s; the clock's by default)."""
        expires = int((self.clock() if now is None else now) + self.ttl_s)
        return f"{expires}.{_encode(user_id.encode())}.{self._mac(user_id, conversation_id, expires)}"

    def check(self, token: str, conversation_id: str) -> LinkCheck:
        """The user `token` was made for, if it was made here for `conversation_id` and has not expired; else why
        not. An expired token is told apart only once its signature holds, so nothing unsigned learns anything."""
        found = TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_CHARS else None
        if found is None:
            return LinkCheck(refusal=Refusal.INVALID)
        try:
            user_id = base64.urlsafe_b64decode(found["user"] + "=" * (-len(found["user"]) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return LinkCheck(refusal=Refusal.INVALID)
        expires = int(found["expires"])
        if not user_id or not hmac.compare_digest(self._mac(user_id, conversation_id, expires), found["mac"]):
            return LinkCheck(refusal=Refusal.INVALID)
        if self.clock() > expires:
            return LinkCheck(refusal=Refusal.EXPIRED)
        return LinkCheck(user_id=user_id)

    def _mac(self, user_id: str, conversation_id: str, expires: int) -> str:
        signed = json.dumps([user_id, conversation_id, expires]).encode()
        return _encode(hmac.new(self._key, signed, hashlib.sha256).digest())


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
