"""What every response carries and every request body must respect, whoever sent it.

- Headers on every response, pages and errors alike: a Content-Security-Policy that admits scripts, styles and
  connections from this site only (no inline script or style anywhere in the templates) and no framing
  (`frame-ancestors 'none'`, and X-Frame-Options for older browsers), nosniff, and a referrer policy that sends
  nothing to other sites. OWASP's secure-headers recommendations are the source.
- One page may be framed, by the host apps in `widget_origins` only: the widget's chat (`/embed`, web/widget.py),
  whose policy names them in `frame-ancestors` (`embed_headers`); a response whose policy allows framing gets no
  X-Frame-Options. Without configured origins it carries the same headers as every page.
- Session cookies are `Secure` when the request came over HTTPS (`cookie_secure = "auto"`; behind a proxy, set
  `proxy_hops` so its X-Forwarded-Proto is believed), always (`"on"`) or never (`"off"`).
- The widget's frame carries the same signed session in a header instead (`X-Firstline-Session`, on the API
  only): a browser may refuse cookies to a frame of another site. A request that sends the header is answered
  with the session renewed in it and never gets a cookie; without the header, cookies as before.
- JSON bodies nested deeper than `MAX_JSON_DEPTH` are refused with 400 before they are parsed: Python's parser
  recurses, and 100,000 levels would otherwise end in a RecursionError (a 500).
"""

from __future__ import annotations

import json
import sys

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature
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
SESSION_HEADER = "X-Firstline-Session"
SESSION_HEADER_PATHS = "/api/"  # the header carries a chat session to the API, and nowhere else
MAX_JSON_DEPTH = 64  # the deepest body any endpoint accepts (Alertmanager's is 4 levels deep)


def secure(app: Flask, cookie_secure: str, proxy_hops: int) -> None:
    """Put the headers on every response, the cookie policy on the session, and believe `proxy_hops` proxies."""
    if proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops,  # type: ignore[method-assign]
                                x_host=proxy_hops)
    app.session_interface = _Session(cookie_secure)
    app.after_request(_headers)


def embed_headers(origins: tuple[str, ...]) -> dict[str, str]:
    """The security headers of the widget's chat frame: every page's, with `frame-ancestors` naming `origins`
    (and no X-Frame-Options, whose DENY would win in older browsers); with no origins, every page's."""
    if not origins:
        return dict(HEADERS)
    policy = HEADERS["Content-Security-Policy"].replace("frame-ancestors 'none'",
                                                       "frame-ancestors " + " ".join(origins))
    return {name: value for name, value in HEADERS.items() if name != "X-Frame-Options"} | {
        "Content-Security-Policy": policy}


def _headers(response: Response) -> Response:
    framable = "frame-ancestors 'none'" not in response.headers.get("Content-Security-Policy",
                                                                    "frame-ancestors 'none'")
    for name, value in HEADERS.items():
        if not (framable and name == "X-Frame-Options"):
            response.headers.setdefault(name, value)
    return response


class _Session(SecureCookieSessionInterface):
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def get_cookie_secure(self, app: Flask) -> bool:
        if self.mode == "auto":
            return request.is_secure
        return self.mode == "on"

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not _in_header(request):
            return super().open_session(app, request)
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        try:  # a value this server did not sign, or one past the session's lifetime, is a new session
            data = signer.loads(request.headers[SESSION_HEADER],
                                max_age=int(app.permanent_session_lifetime.total_seconds()))
        except BadSignature:
            return self.session_class()
        return self.session_class(data)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not _in_header(request):
            super().save_session(app, session, response)
            return
        response.vary.add(SESSION_HEADER)
        signer = self.get_signing_serializer(app)
        if session and signer is not None:  # renewed on every answer, as a permanent session's cookie is
            response.headers[SESSION_HEADER] = signer.dumps(dict(session))


def _in_header(req: Request) -> bool:
    return SESSION_HEADER in req.headers and req.path.startswith(SESSION_HEADER_PATHS)


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


def parsed_json(req: Request, code: str = "invalid_body") -> object:
    """The request's JSON (None when the body is empty); InputError (`code`) when it is not valid JSON, saying
    where, or nests deeper than MAX_JSON_DEPTH. The encoding is detected as JSON allows (UTF-8, -16, -32)."""
    raw = req.get_data(cache=True)
    if not raw.strip():
        return None
    # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the byte-by-byte walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise InputError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels; no request here needs that",
                         code=code)
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise InputError("the body is not valid UTF-8; send JSON encoded as UTF-8", code=code) from None
    except json.JSONDecodeError as error:
        what = error.msg.removesuffix(" at")  # "Invalid control character at": the place follows
        raise InputError(f"the body is not valid JSON: {what} at line {error.lineno}, column {error.colno}",
                         code=code) from None
    except ValueError:  # Python refuses integers of more than sys.get_int_max_str_digits() digits (CVE-2020-10735)
        raise InputError(f"the body has a number of more than {sys.get_int_max_str_digits():,} digits; no request "
                         "here needs one", code=code) from None
