"""One limiter for every write, whoever sends it: messages on both paths, new conversations, ratings, deleting
history, staff sign-ins and actions. Each write counts against two allowances at once, the user's and the client
address's (`rate_limit_messages` and `rate_limit_per_address` per `rate_limit_window_s`), so dropping the
cookie to become a new user still meets the address's. Over either: 429 with Retry-After, and nothing is stored
or run.

Flask-Limiter counts (moving window); `limit_storage_uri` says where: `memory://` for one process, or
`redis://HOST:PORT` so several processes share the counts and a restart keeps them. Reads (GET), the operators'
endpoints (authenticated, and Alertmanager must never be told to back off a storm) and the administration socket
are not counted.
"""

from __future__ import annotations

import time

from flask import Flask, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded

from core.errors import RateLimitError
from core.settings import Settings
from web.ops import OPS

READS = frozenset({"GET", "HEAD", "OPTIONS"})


def install_limits(app: Flask, settings: Settings) -> Limiter:
    """Put the limits on `app`. Must come after the hook that sets `g.user_id`: the user's allowance keys on it."""
    window = max(1, round(settings.rate_limit_window_s))
    limiter = Limiter(
        _address,
        app=app,
        storage_uri=settings.limit_storage_uri,
        strategy="moving-window",
        key_prefix=settings.limit_key_prefix,
        headers_enabled=True,
        application_limits=[
            ApplicationLimit(f"{settings.rate_limit_messages} per {window} seconds", key_function=_user,
                             exempt_when=_not_counted, scope="writes-per-user"),
            ApplicationLimit(f"{settings.rate_limit_per_address} per {window} seconds", key_function=_address,
                             exempt_when=_not_counted, scope="writes-per-address"),
        ],
    )
    app.extensions["firstline.limiter"] = limiter
    return limiter


def _not_counted() -> bool:
    return request.method in READS or request.blueprint == OPS


def _user() -> str:
    return f"user:{g.get('user_id') or 'anonymous'}"


def _address() -> str:
    return f"address:{request.remote_addr or 'unknown'}"


def as_rate_limit_error(error: RateLimitExceeded, limiter: Limiter) -> RateLimitError:
    """The limiter's refusal in the app's words, with how long to wait (whole seconds, at least 1)."""
    current = limiter.current_limit
    wait = max(1, int((current.reset_at if current else time.time() + 1) - time.time() + 0.999))
    whose = "this network address has" if error.limit.scope == "writes-per-address" else "you've"
    return RateLimitError(
        f"{whose} sent {error.limit.limit.amount} messages or other changes in the last "
        f"{error.limit.limit.get_expiry()} seconds, which is the limit. Please wait {wait} seconds and send it "
        "again; everything sent before is saved.", retry_after_s=wait)
