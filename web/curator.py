"""The curator's pages: learned rules with their history, playbooks with how they do, and the unmatched queue.

Signed in with a curator's API token (`firstline token create --user NAME --role curator`) into a session held
on the server (web/staff.py); every form carries a per-session CSRF token, since these pages change what the
system does.
"""

from __future__ import annotations

from itertools import pairwise

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for

from core.errors import InputError, UnauthorizedError
from core.taxonomy import CATEGORIES
from engine.access.tokens import Role
from engine.decision.trace import trace_lines
from engine.learning.curation import RuleFilter
from engine.learning.ledger import STATUSES
from engine.wiring import Parts
from web.staff import check_csrf, csrf_token, sign_in, sign_out, signed_in

PAGE = 50  # learned rules per page: there may be thousands

def _parts() -> Parts:
    return current_app.extensions["firstline"]


def make_curator_blueprint() -> Blueprint:
    pages = Blueprint("curator", __name__, url_prefix="/curator")

    @pages.before_request
    def guard():
        if request.endpoint in ("curator.login", "curator.sign_in"):
            return None
        staff = signed_in(Role.CURATOR)
        if staff is None:
            if request.method == "POST":  # a form from an ended session changes nothing, and says so (logged)
                raise UnauthorizedError("your curator session has ended (signed out, idle too long, or its token "
                                        "was revoked); sign in again at /curator/login")
            return redirect(url_for("curator.login"))
        g.curator = staff.user_id
        if request.method == "POST":
            check_csrf()
        return None

    @pages.get("/login")
    def login():
        return render_template("curator_login.html", error=None, csrf=csrf_token())

    @pages.post("/login", endpoint="sign_in")
    def sign_in_form():
        check_csrf()
        name = request.form.get("name", "").strip()
        if name:  # a curator's staff account (firstline user create NAME --role curator)
            identity = _parts().users.authenticate(name, request.form.get("password", ""))
            refused = ("That name and password do not open the curator pages: check them, or ask an administrator "
                       "for a curator account (firstline user create NAME --role curator).")
        else:
            identity = _parts().tokens.identify(request.form.get("token", "").strip())
            refused = ("That is not a curator's token. Create one with: "
                       "firstline token create --user NAME --role curator")
        if identity is None or identity.role is not Role.CURATOR:
            current_app.logger.warning("refused POST %s from %s: not a curator (%r)", request.path,
                                       request.remote_addr, name[:64] or "token")
            return render_template("curator_login.html", error=refused, csrf=csrf_token()), 401
        sign_in(identity)
        return redirect(url_for("curator.home"))

    @pages.post("/logout")
    def logout():
        sign_out(everywhere=request.form.get("everywhere") == "1")
        return redirect(url_for("curator.login"))

    @pages.get("/")
    def home():
        curation = _parts().curation
        where = RuleFilter(status=request.args.get("status") or None, playbook=request.args.get("playbook") or None,
                           limit=PAGE, offset=whole_number(request.args.get("offset", "0"), "offset"))
        rules, total = curation.review.listing(where)
        return render_template("curator.html", curator=g.curator, csrf=csrf_token(), rules=rules, total=total,
                               where=where, statuses=STATUSES, playbooks=curation.playbooks(),
                               unmatched=curation.unmatched(), categories=sorted(CATEGORIES),
                               notice=request.args.get("notice"))

    @pages.get("/rules/<name>")
    def rule(name: str):
        review = _parts().curation.review
        detail = review.detail(name)
        versions = [v["version"] for v in detail["versions"]]
        diffs = [(old, new, review.ledger.diff(name, old, new)) for old, new in pairwise(versions)]
        return render_template("curator_rule.html", curator=g.curator, csrf=csrf_token(), rule=detail,
                               diffs=diffs, notice=request.args.get("notice"))

    @pages.get("/decisions/<decision_id>")
    def decision(decision_id: str):
        trace = _parts().curation.trace(decision_id, request.args.getlist("why_not"))
        return render_template("curator_trace.html", curator=g.curator, trace=trace,
                               lines=trace_lines(trace), rule=request.args.get("rule"))

    @pages.post("/rules/<name>/<verb>")
    def change_rule(name: str, verb: str):
        version = whole_number(request.form.get("version"), "version") if verb == "revert" else None
        who = f"curator {g.curator}"
        rule = _parts().curation.change_rule(name, verb, who, request.form.get("reason") or f"{verb} (web)", version)
        target = request.form.get("back") == "rule"
        notice = f"{rule.name}: version {rule.version} is {rule.status}"
        return redirect(url_for("curator.rule", name=name, notice=notice) if target
                        else url_for("curator.home", notice=notice))

    @pages.post("/unmatched/<decision_id>/add")
    def add_to_playbook(decision_id: str):
        added = _parts().curation.add_to_playbook(decision_id, request.form.get("playbook", ""))
        return redirect(url_for("curator.home", notice=f"added to {added['playbook']}: {added['text'][:60]}"))

    @pages.post("/unmatched/<decision_id>/new")
    def new_playbook(decision_id: str):
        path = _parts().curation.draft_playbook(decision_id, request.form.get("id", ""),
                                                request.form.get("title", ""), request.form.get("category", ""))
        return redirect(url_for("curator.home", notice=f"draft playbook written to {path}; complete it (10 "
                                "examples, remedies or an escalation) and move it into the playbooks folder"))

    return pages


def whole_number(value: str | None, name: str) -> int:
    """A form or query value as a whole number, or an InputError naming the field."""
    try:
        return int(value or "")
    except ValueError:
        raise InputError(f"`{name}` must be a whole number, got {value!r}", code="invalid_body") from None
