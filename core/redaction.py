"""A URL's secrets kept out of what people read, and its credentials sent the way HTTP expects them.

A settings URL may carry secrets: a password in its userinfo (`http://user:password@host/`) and tokens in its
query string (`?token=...`). Wherever a URL goes into a message, an exception, a log line or a stored detail it
goes through `redacted_url`; an error text that may echo the URL (urllib's "unknown url type: '...'") goes
through `scrubbed`; and a request drops the userinfo from the URL it opens and sends it as HTTP Basic auth
(`split_credentials`), as Prometheus' scrape config and curl do. None of these ever raises on a malformed URL.
"""

from __future__ import annotations

import base64
import re
import urllib.parse

__all__ = ["REDACTED", "UNPARSEABLE", "redacted_setting", "redacted_url", "scrubbed", "split_credentials"]

REDACTED = "***"
UNPARSEABLE = "<unparseable URL>"


def redacted_setting(key: str, value: object) -> object:
    """A setting's value as it may be shown (`firstline settings`, a refusal of the value): a URL (`*_url`) or a
    connection string (`*_dsn`, as a URL or as libpq's `key=value` words) without its password or tokens;
    anything else as it is."""
    if not isinstance(value, str) or not value or not key.endswith(("_url", "_dsn")):
        return value
    if "://" in value or key.endswith("_url"):
        return redacted_url(value)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", rf"\g<1>{REDACTED}", value, flags=re.IGNORECASE)


def redacted_url(url: str) -> str:
    """`url` as it may be shown: the userinfo's password and every query-string and fragment value replaced by
    `***` (the user name and the keys kept), scheme, host, port and path as they are.

    `http://user:pw@host:9100/metrics?token=t&x` reads `http://user:***@host:9100/metrics?token=***&***`: a
    piece of the query without `=` could itself be a token, so it is hidden too, as is a user name given without
    a password (`https://TOKEN@host/` reads `https://***@host/`). A URL that cannot be told apart
    safely (urllib refuses it, its port is not a number, or an `@` stands in its path while its host part has
    none, as when a password holds an unescaped `/` or when there is no `//`) reads `<unparseable URL>`.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - a ValueError when what stands as the port is not one (a password cut at a "/")
        if "@" not in parts.netloc and "@" in parts.path:
            return UNPARSEABLE
        userinfo, at, hostport = parts.netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        # A user name alone may be the secret itself (`https://TOKEN@host/`, as many services hand out): hidden.
        shown = f"{user}:{REDACTED}" if password else (REDACTED if user else f"{user}{colon}")
        netloc = f"{shown}{at}{hostport}"
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, _hidden(parts.query),
                                        _hidden(parts.fragment)))
    except (ValueError, TypeError, AttributeError):  # not a URL urllib can split, or not a string at all
        return UNPARSEABLE


def scrubbed(text: str, url: str) -> str:
    """`text`, a message about `url` (such as an exception from urllib), with each of the URL's secrets (its
    password, its query-string and fragment values, as written, percent-decoded or escaped as Python's repr
    escapes them) replaced by `***` where it stands as in a URL: after one of `:=?&#`, and not followed by a
    letter or digit (so a value `1` leaves "IncompleteRead(1 bytes read" alone)."""
    try:
        for secret in sorted(_secrets(url), key=len, reverse=True):
            text = re.sub(rf"(?<=[:=?&#]){re.escape(secret)}(?![A-Za-z0-9])", REDACTED, text)
        return text
    except (ValueError, TypeError, AttributeError):
        return REDACTED


def split_credentials(url: str) -> tuple[str, str | None]:
    """The URL to request and the `Authorization` header to send with it: with `user:password@` in `url`, the URL
    without it and `Basic base64(user:password)` (both percent-decoded, UTF-8); without userinfo, or when `url`
    cannot be split, `url` unchanged and None. A user with no password is sent with an empty one, as curl does."""
    try:
        parts = urllib.parse.urlsplit(url)
        userinfo, at, hostport = parts.netloc.rpartition("@")
        if not at:
            return url, None
        user, _, password = userinfo.partition(":")
        pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
        return urllib.parse.urlunsplit(parts._replace(netloc=hostport)), f"Basic {base64.b64encode(pair).decode()}"
    except (ValueError, TypeError, AttributeError):  # not a URL urllib can split, or not a string at all
        return url, None


def _hidden(query: str) -> str:
    """A query string (or fragment) with each value, and each piece without a key, replaced by `***`."""
    pieces = []
    for piece in query.split("&") if query else []:
        key, equals, value = piece.partition("=")
        pieces.append(f"{key}={REDACTED if value else ''}" if equals else (REDACTED if piece else ""))
    return "&".join(pieces)


def _secrets(url: str) -> set[str]:
    """The password and query/fragment values of `url`, read from the string as written (urllib's own split drops
    tabs and newlines, which an error message may still show), each also percent-decoded and repr-escaped."""
    head, _, fragment = url.partition("#")
    head, _, query = head.partition("?")
    authority = head.split("://", 1)[1] if "://" in head else head.lstrip("/")
    userinfo = authority.rpartition("@")[0]  # the last "@": a password may hold "@" or "/" unescaped
    found = {userinfo.partition(":")[2]}
    for piece in [*query.split("&"), *fragment.split("&")]:
        _, equals, value = piece.partition("=")
        found.add(value if equals else piece)
    forms = set()
    for secret in found:
        forms |= {secret, urllib.parse.unquote(secret), urllib.parse.unquote_plus(secret), repr(secret)[1:-1],
                  re.sub(r"[\t\r\n]", "", secret)}
    return {form for form in forms if form}
