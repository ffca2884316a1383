"""The curator's pages: learned rules with their history, playbooks with how they do, and the unmatched queue.

Signed in with a curator's API token (`firstline token create --user NAME --role curator`); every form carries
a per-session CSRF token, since these pages change what the system does.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

import yaml
from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for

from core.errors import InputError
from core.taxonomy import CATEGORIES
from engine.tokens import Role
from engine.wiring import Parts

UNMATCHED_SQL = """
SELECT d.id, d.decision, d.created_at, m.text, d.user_id, d.conversation_id, d.playbook
FROM decisions d JOIN messages m ON m.id = d.message_id
WHERE d.decision IN ('decline', 'clarify')
  AND NOT EXISTS (SELECT 1 FROM learned_examples l WHERE l.text = m.text AND l.user_id = d.user_id)
ORDER BY d.created_at DESC LIMIT 50
"""
PLAYBOOK_SQL = """
SELECT playbook, count(*) AS decisions, count(*) FILTER (WHERE decision = 'resolve') AS resolved
FROM decisions WHERE playbook IS NOT NULL GROUP BY playbook
"""
STATUS_ACTIONS = {"approve": "active", "reject": "rejected", "retire": "retired", "shadow": "shadow"}


def _parts() -> Parts:
    return current_app.extensions["firstline"]


def make_curator_blueprint(drafts_dir) -> Blueprint:
    pages = Blueprint("curator", __name__, url_prefix="/curator")

    @pages.before_request
    def guard():
        if request.endpoint in ("curator.login", "curator.sign_in"):
            return None
        if not session.get("curator"):
            return redirect(url_for("curator.login"))
        if request.method == "POST":
            _check_csrf()
        return None

    @pages.get("/login")
    def login():
        return render_template("curator_login.html", error=None, csrf=_csrf())

    @pages.post("/login")
    def sign_in():
        _check_csrf()
        identity = _parts().tokens.identify(request.form.get("token", "").strip())
        if identity is None or identity.role is not Role.CURATOR:
            message = ("That is not a curator's token. Create one with: "
                       "firstline token create --user NAME --role curator")
            return render_template("curator_login.html", error=message, csrf=_csrf()), 401
        session["curator"] = identity.user_id
        return redirect(url_for("curator.home"))

    @pages.post("/logout")
    def logout():
        session.pop("curator", None)
        return redirect(url_for("curator.login"))

    @pages.get("/")
    def home():
        parts = _parts()
        ledger = parts.dialogue.ledger
        rules = ledger.rules() if ledger else []
        fired = ledger.fire_counts() if ledger else {}
        records = {r.name: ledger.live_record(r) for r in rules} if ledger else {}
        return render_template("curator.html", curator=session["curator"], csrf=_csrf(), rules=rules,
                               fired=fired, records=records,
                               versions={r.name: ledger.versions(r.name) for r in rules} if ledger else {},
                               playbooks=_playbook_rows(parts), unmatched=_unmatched(parts),
                               categories=sorted(CATEGORIES), notice=request.args.get("notice"))

    @pages.post("/rules/<name>/<verb>")
    def change_rule(name: str, verb: str):
        ledger = _parts().dialogue.ledger
        if ledger is None or verb not in (*STATUS_ACTIONS, "revert"):
            abort(404)
        who = f"curator {session['curator']}"
        if verb == "revert":
            rule = ledger.revert(name, _int(request.form.get("version")), who)
        else:
            rule = ledger.set_status(name, STATUS_ACTIONS[verb], who, request.form.get("reason") or f"{verb} (web)")
        _parts().dialogue.publish_learned_rules()
        return redirect(url_for("curator.home", notice=f"{rule.name}: version {rule.version} is {rule.status}"))

    @pages.post("/unmatched/<decision_id>/add")
    def add_to_playbook(decision_id: str):
        decision = _decision(decision_id)
        playbook = request.form.get("playbook", "")
        _parts().dialogue.teach(decision["user_id"], decision["conversation_id"], playbook, decision["text"])
        return redirect(url_for("curator.home", notice=f"added to {playbook}: {decision['text'][:60]}"))

    @pages.post("/unmatched/<decision_id>/new")
    def new_playbook(decision_id: str):
        decision = _decision(decision_id)
        path = _write_draft(drafts_dir, request.form.get("id", ""), request.form.get("title", ""),
                            request.form.get("category", ""), decision["text"])
        return redirect(url_for("curator.home", notice=f"draft playbook written to {path}; complete it (10 "
                                "examples, remedies or an escalation) and move it into the playbooks folder"))

    return pages


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        raise InputError("the form expired or did not come from this site; reload the page and try again",
                         code="bad_csrf")


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise InputError(f"a version number is needed, got {value!r}", code="invalid_body") from None


def _decision(decision_id: str) -> dict[str, Any]:
    rows = _parts().store.execute(
        "SELECT d.user_id, d.conversation_id, m.text FROM decisions d JOIN messages m ON m.id = d.message_id "
        "WHERE d.id = ? AND d.decision IN ('decline', 'clarify')", (decision_id,))
    if not rows:
        raise InputError("no such message in the unmatched queue (it may have been deleted by its user)",
                         code="not_found")
    user_id, conversation_id, text = rows[0]
    return {"user_id": user_id, "conversation_id": conversation_id, "text": text}


def _unmatched(parts: Parts) -> list[dict[str, Any]]:
    keys = ("decision_id", "decision", "at", "text", "user_id", "conversation_id", "playbook")
    return [dict(zip(keys, row, strict=True)) for row in parts.store.execute(UNMATCHED_SQL)]


def _playbook_rows(parts: Parts) -> list[dict[str, Any]]:
    """Each playbook: examples in the index (curated + learned), decisions, and its remedies' confidence."""
    knowledge, ledger = parts.assistant.knowledge, parts.dialogue.ledger
    counts: dict[str, int] = {}
    for example in knowledge.examples.values():
        counts[example.playbook] = counts.get(example.playbook, 0) + 1
    usage = {row[0]: row[1:] for row in parts.store.execute(PLAYBOOK_SQL)}
    rows = []
    for pid, playbook in sorted(knowledge.playbooks.items()):
        decisions, resolved = usage.get(pid, (0, 0))
        remedies = [f"{r.action} on {r.target}: {ledger.confidence(pid, r.action, r.target):.0%}"
                    for r in playbook.remedies] if ledger else []
        rows.append({"id": pid, "title": playbook.title, "category": playbook.category,
                     "examples": counts.get(pid, 0), "decisions": decisions, "resolved": resolved,
                     "remedies": remedies})
    return rows


def _write_draft(drafts_dir, playbook_id: str, title: str, category: str, text: str):
    if not re.fullmatch(r"[a-z][a-z0-9_]{2,60}", playbook_id):
        raise InputError("a playbook id is 3-61 lowercase letters, digits or _, starting with a letter",
                         code="invalid_body")
    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}", code="invalid_body")
    drafts_dir.mkdir(parents=True, exist_ok=True)
    path = drafts_dir / f"{playbook_id}.yaml"
    if path.exists():
        raise InputError(f"a draft named {playbook_id} already exists", code="conflict")
    draft = {"id": playbook_id, "title": title.strip() or playbook_id.replace("_", " "), "category": category,
             "description": "Draft from the unmatched queue: describe the problem.", "examples": [text]}
    path.write_text(yaml.safe_dump(draft, sort_keys=False), encoding="utf-8")
    return path
