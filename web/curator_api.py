"""The curators' JSON API: learned rules (list, read, change, diff), playbooks and the unmatched queue.

Every route needs a curator's API token (`Authorization: Bearer TOKEN`, `firstline token create --user NAME
--role curator`); the same operations as the curator pages, for scripts and review tools.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from core.errors import ForbiddenError, InputError, NotFoundError
from engine.access.tokens import Role
from engine.learning.curation import VERBS, Curation, RuleFilter
from engine.learning.ledger import LearnedRule
from web.api import API, json_body
from web.curator import whole_number


def _curation() -> Curation:
    return current_app.extensions["firstline"].curation


def make_curator_api() -> Blueprint:
    api = Blueprint("curator_api", __name__, url_prefix=API)

    @api.before_request
    def curators_only():
        if g.role is not Role.CURATOR:
            raise ForbiddenError("only curators may do this: send a curator's API token as Authorization: Bearer "
                             "TOKEN (firstline token create --user NAME --role curator)")

    @api.get("/learned-rules")
    def list_rules():
        where = RuleFilter(status=request.args.get("status") or None, playbook=request.args.get("playbook") or None,
                           limit=_query_int("limit", 50), offset=_query_int("offset", 0))
        rules, total = _curation().review.listing(where)
        return jsonify({"rules": rules, "total": total, "limit": where.limit, "offset": where.offset})

    @api.get("/learned-rules/<name>")
    def read_rule(name: str):
        detail = _curation().review.detail(name)
        for example in detail["examples"]:
            example["trace"] = f"{API}/decisions/{example['decision_id']}/trace?why_not={name}"
        return jsonify(detail)

    @api.get("/learned-rules/<name>/diff")
    def diff_rule(name: str):
        old, new = _query_int("old", None), _query_int("new", None)
        return jsonify({"name": name, "old": old, "new": new, "diff": _curation().ledger.diff(name, old, new)})

    @api.post("/learned-rules/<name>/<verb>")
    def change_rule(name: str, verb: str):
        if verb not in (*VERBS, "revert"):
            raise NotFoundError(f"unknown change {verb!r}; use approve, reject, retire, shadow or revert")
        body = json_body()
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise InputError("`reason` must be a string", code="invalid_body")
        version = body.get("version")
        if verb == "revert" and (not isinstance(version, int) or isinstance(version, bool)):
            raise InputError("revert needs `version`, the whole number of the version to restore",
                             code="invalid_body")
        rule = _curation().change_rule(name, verb, f"curator {g.user_id}", reason or f"{verb} (api)", version)
        return jsonify({"rule": _changed(rule)})

    @api.get("/playbooks")
    def playbooks():
        return jsonify({"playbooks": _curation().playbooks()})

    @api.get("/unmatched")
    def unmatched():
        limit = _query_int("limit", 50)
        if not 1 <= limit <= 500:
            raise InputError("`limit` is 1 to 500", code="invalid_body")
        return jsonify({"unmatched": _curation().unmatched(limit)})

    @api.post("/unmatched/<decision_id>/add")
    def add_to_playbook(decision_id: str):
        body = json_body()
        return jsonify(_curation().add_to_playbook(decision_id, _string(body, "playbook"))), 201

    @api.post("/unmatched/<decision_id>/new")
    def new_playbook(decision_id: str):
        body = json_body()
        path = _curation().draft_playbook(decision_id, _string(body, "id"), _string(body, "title", ""),
                                          _string(body, "category"))
        return jsonify({"draft": str(path), "id": body["id"]}), 201

    return api


def _query_int(name: str, default: int | None) -> Any:
    value = request.args.get(name)
    if value is None:
        if default is None:
            raise InputError(f"`{name}` is required (a version number)", code="invalid_body")
        return default
    return whole_number(value, name)


def _string(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise InputError(f"`{key}` is required and must be a string", code="invalid_body")
    return value


def _changed(rule: LearnedRule) -> dict[str, Any]:
    return {"name": rule.name, "version": rule.version, "status": rule.status, "reason": rule.reason,
            "actor": rule.actor, "at": rule.at}
