"""Staff sign-in for the web pages: the session lives on the server (`engine.access.sessions`), the cookie carries
its secret, and every request checks it, so a revoked token, a sign-out or an idle hour ends it at once.

Each page group (the curator's now; the decider's and the analyst's reuse this) asks `signed_in(role)` before
every request and `sign_in(identity)` when its login form succeeds; the CSRF value is renewed at sign-in, so a
value seen before it opens nothing.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from core.errors import InputError
from engine.access.sessions import StaffSession
from engine.access.tokens import Identity, Role
from engine.wiring import Parts

COOKIE_KEY = "staff"


def _parts() -> Parts:
    return current_app.extensions["firstline"]


def signed_in(role: Role) -> StaffSession | None:
    """The caller's live staff session in `role`, or None (none, ended, revoked, idle, or another role's)."""
    found = _parts().sessions.check(session.get(COOKIE_KEY, ""))
    if found is None:
        session.pop(COOKIE_KEY, None)
        return None
    return found if found.role is role else None


def sign_in(identity: Identity) -> None:
    """Open a server-side session for `identity` and put its secret in the cookie, ending the one it replaces."""
    _parts().sessions.end(session.get(COOKIE_KEY, ""), "signed in again")
    session[COOKIE_KEY] = _parts().sessions.open(identity, request.remote_addr or "")
    session["csrf"] = secrets.token_urlsafe(24)


def sign_out(everywhere: bool = False) -> None:
    """End this session (and, with `everywhere`, every session of the same person) and clear the cookie."""
    sessions = _parts().sessions
    current = sessions.check(session.get(COOKIE_KEY, ""))
    if everywhere and current is not None:
        sessions.end_for_user(current.user_id)
    sessions.end(session.pop(COOKIE_KEY, ""))
    session.pop("csrf", None)


def add_sign_in_pages(pages: Blueprint, role: Role, template: str, home: str, refused: str) -> None:
    """The sign-in pages of one staff page group on `pages` (mounted at its url_prefix): GET /login (the form in
    `template`), POST /login (endpoint `sign_in`: CSRF, name and password of a staff user in `role`, then back to
    the page asked for inside the group or to the endpoint `home`; `refused` and 401 otherwise, logged) and POST
    /logout (this session, or every one with `everywhere=1`)."""
    prefix = f"{pages.url_prefix}/"

    @pages.get("/login")
    def login():
        return render_template(template, error=None, csrf=csrf_token(), back=request.args.get("next", ""))

    @pages.post("/login", endpoint="sign_in")
    def sign_in_form():
        check_csrf()
        name = request.form.get("name", "").strip()
        identity = _parts().users.authenticate(name, request.form.get("password", ""))
        if identity is None or identity.role is not role:
            current_app.logger.warning("refused %s sign-in for %r from %s", pages.name, name[:64],
                                       request.remote_addr)
            return render_template(template, error=refused, csrf=csrf_token(), back=""), 401
        sign_in(identity)
        back = request.form.get("next", "")
        return redirect(back if back.startswith(prefix) and "//" not in back else url_for(home))

    @pages.post("/logout")
    def logout():
        sign_out(everywhere=request.form.get("everywhere") == "1")
        return redirect(url_for(f"{pages.name}.login"))


def csrf_token() -> str:
    """This browser's CSRF value, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    """The posted form carries this browser's CSRF value, or InputError (400)."""
    sent = request.form.get("csrf", "")
    # compare_digest takes ASCII strings only: anything else is no value we made, and no 500
    if not sent or not sent.isascii() or not hmac.compare_digest(sent, session.get("csrf", "")):
        raise InputError("the form expired or did not come from this site; reload the page and try again",
                         code="bad_csrf")
