"""The one place an exception becomes an error body: {"error": {"code", "message"}} and a status."""

from __future__ import annotations

from typing import Any

from flask import current_app
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from core.errors import ConflictError, FirstlineError, InputError, RateLimitError, StoreError, TelemetryError

STATUS_BY_CODE = {"not_found": 404, "forbidden": 403, "unauthorized": 401, "conflict": 409, "rate_limited": 429}


def error_body(error: Exception) -> tuple[dict[str, Any], int]:
    """The JSON body and HTTP status for `error`; unexpected errors are logged and never described."""
    if isinstance(error, InputError):
        status = 409 if isinstance(error, ConflictError) else STATUS_BY_CODE.get(error.code, 400)
        code, message = error.code, str(error)
    elif isinstance(error, HTTPException):
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
    elif isinstance(error, StoreError):
        # The store's own words name the data file and the SQL: for the log, not for whoever sent the request.
        status, code = 500, "unavailable"
        message = "the data store could not complete this request; it has been logged, please try again"
        current_app.logger.error("store error: %s", error)
    elif isinstance(error, TelemetryError):
        # Only /metrics lets it out (for an operator): its source is down or sent nothing usable, which is not a
        # fault of this server; Prometheus marks the target down and scrapes again next interval.
        status, code, message = 503, "telemetry_unavailable", str(error)
    elif isinstance(error, FirstlineError):
        status, code, message = 500, "unavailable", str(error)
    else:
        status, code, message = 500, "internal_error", "something went wrong on our side; it has been logged"
        current_app.logger.error("unhandled error", exc_info=error)
    return {"error": {"code": code, "message": message}}, status


def error_headers(error: Exception) -> dict[str, str]:
    """The headers an error's answer needs beside its body: Retry-After for a rate-limited request, Allow for a
    method the route does not take (RFC 9110 15.5.6: a 405 must say which methods it does)."""
    if isinstance(error, RateLimitError):
        return {"Retry-After": str(error.retry_after_s)}
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        return {"Allow": ", ".join(sorted(error.valid_methods))}
    return {}
