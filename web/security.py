"""What every response carries and every request body must respect, whoever sent it.

- Headers on every response, pages and errors alike: a Content-Security-Policy that admits scripts, styles and
  connections from this site only (no inline script or style anywhere in the templates) and no framing
  (`frame-ancestors 'none'`, and X-Frame-Options for older browsers), nosniff, and a referrer policy that sends
  nothing to other sites. OWASP's secure-headers recommendations are the source.
- Session cookies are `Secure` when the request came over HTTPS (`cookie_secure = "auto"`; behind a proxy, set
  `proxy_hops` so its X-Forwarded-Proto is believed), always (`"on"`) or never (`"off"`).
- JSON bodies nested deeper than `MAX_JSON_DEPTH` are refused with 400 before they are parsed: Python's parser
  recurses, and 100,000 levels would otherwise end in a RecursionError (a 500).
"""

from __future__ import annotations

from flask import Flask, Request, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from core.errors import InputError

HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_JSON_DEPTH = 64  # the deepest body any endpoint accepts (Alertmanager's is 4 levels deep)


def secure(app: Flask, cookie_secure: str, proxy_hops: int) -> None:
    """Put the headers on every response, the cookie policy on the session, and believe `proxy_hops` proxies."""
    if proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops,  # type: ignore[method-assign]
                                x_host=proxy_hops)
    app.session_interface = _Session(cookie_secure)
    app.after_request(_headers)


def _headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class _Session(SecureCookieSessionInterface):
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def get_cookie_secure(self, app: Flask) -> bool:
        if self.mode == "auto":
            return request.is_secure
        return self.mode == "on"


def json_depth(raw: bytes) -> int:
    """How deeply the JSON text `raw` nests arrays and objects (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def parsed_json(req: Request) -> object:
    """The request's JSON (None when it is not JSON); InputError when it nests deeper than MAX_JSON_DEPTH."""
    raw = req.get_data(cache=True)
    # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the byte-by-byte walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise InputError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels; no request here needs that",
                         code="invalid_body")
    return req.get_json(silent=True)
