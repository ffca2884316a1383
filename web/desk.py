"""The deciders' pages (/desk/): sign in with a name and password, the queue of business requests by deadline,
one request's facts, options, recommendation and precedents, and the forms that approve, reject or ask.

Sessions are held on the server (web/staff.py) and every form carries the session's CSRF value; a page or form
reached without a decider's session answers 403 (the page shows the sign-in form). Each page has a JSON twin
under /api/v1/escalations (web/api.py), which the same `Desk` serves.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from core.errors import ConflictError, FirstlineError, ForbiddenError, InputError
from core.taxonomy import BUSINESS
from engine.access.tokens import Role
from engine.desk.desk import Decider, Desk
from engine.wiring import Parts
from web.staff import add_sign_in_pages, check_csrf, csrf_token, signed_in

STATUSES = ("open", "decided", "expired", "all")
SIGN_IN_NEEDED = "This page is for deciders: sign in with a decider's name and password."


def _parts() -> Parts:
    return current_app.extensions["firstline"]


def desk() -> Desk:
    found = _parts().desk
    assert found is not None  # built with every Parts
    return found


def decider_named(name: str, via: str) -> Decider:
    """A decider with the categories their staff account allows (all for a name with no staff account).
    ForbiddenError when that account is disabled or not a decider's: a token does not outlive its owner's account."""
    staff = _parts().users.get(name)
    if staff is not None and (staff.disabled or staff.role is not Role.DECIDER):
        raise ForbiddenError(f"{name}'s staff account is disabled or is not a decider's; it decides nothing")
    return Decider(name, frozenset(staff.categories if staff else ()), via)


def make_desk_blueprint() -> Blueprint:
    pages = Blueprint("desk", __name__, url_prefix="/desk")

    @pages.before_request
    def guard():
        if request.endpoint in ("desk.login", "desk.sign_in"):
            return None
        staff = signed_in(Role.DECIDER)
        if staff is None:
            if request.method == "POST":  # a form from an ended session (or another role's) changes nothing
                raise ForbiddenError("your decider session has ended or you are not a decider; sign in again at "
                                     "/desk/login")
            return render_template("desk_login.html", error=SIGN_IN_NEEDED, csrf=csrf_token(),
                                   back=request.full_path), 403
        g.decider = decider_named(staff.user_id, "desk")
        if request.method == "POST":
            check_csrf()
        return None

    add_sign_in_pages(pages, Role.DECIDER, "desk_login.html", "desk.queue",
                      "That name and password do not open the desk: check them, or ask an administrator for a "
                      "decider account (firstline user create NAME --role decider).")

    @pages.get("/")
    def queue():
        status = request.args.get("status") or "open"
        category = request.args.get("category") or None
        rows = desk().queue(g.decider, status, category)
        return render_template("desk.html", decider=g.decider, csrf=csrf_token(), rows=rows, status=status,
                               category=category, statuses=STATUSES, categories=_categories(g.decider))

    @pages.get("/<escalation_id>")
    def detail(escalation_id: str):
        return _detail_page(escalation_id)

    @pages.post("/<escalation_id>/decision")
    def decide(escalation_id: str):
        form = request.form
        try:
            done = desk().decide(escalation_id, g.decider, form.get("outcome", ""), form.get("reason", ""),
                                 form.get("digest", ""), not_business=form.get("not_business") == "yes")
        except (InputError, ConflictError, ForbiddenError) as error:
            return _detail_page(escalation_id, error=error, typed=dict(form))
        flash(done["message"])  # said by the server, never read from the URL
        return redirect(url_for("desk.detail", escalation_id=escalation_id))

    @pages.post("/<escalation_id>/question")
    def ask(escalation_id: str):
        form = request.form
        try:
            done = desk().ask(escalation_id, g.decider, form.get("question", ""), form.get("digest", ""))
        except (InputError, ConflictError, ForbiddenError) as error:
            return _detail_page(escalation_id, error=error, typed=dict(form))
        flash(done["message"])  # said by the server, never read from the URL
        return redirect(url_for("desk.detail", escalation_id=escalation_id))

    return pages


def _detail_page(escalation_id: str, error: FirstlineError | None = None, typed: dict[str, Any] | None = None):
    # A refused form shows the page again as it is now, with what was typed and what was wrong.
    found = desk().detail(escalation_id, g.decider, viewed=error is None)
    status = 200 if error is None else _status(error)
    return render_template("desk_request.html", decider=g.decider, csrf=csrf_token(), r=found,
                           error=str(error) if error else None, typed=typed or {}), status


def _status(error: FirstlineError) -> int:
    return 409 if isinstance(error, ConflictError) else 403 if isinstance(error, ForbiddenError) else 400


def _categories(decider: Decider) -> list[str]:
    return [c for c in BUSINESS if decider.may_decide(c)]
