"""Engineering's JSON API: the problems the automation handed to engineers, listed, read, and closed with a note
that is posted into the user's conversation (and e-mailed if they have left: engine/notify/).

Every route wants an engineer's API token (`Authorization: Bearer TOKEN`, `firstline token create --user NAME
--role engineer`): 401 without one, 403 with anyone else's. The same `HandoffDesk` serves `firstline handoffs`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from core.errors import ForbiddenError, UnauthorizedError
from engine.access.tokens import Role
from engine.desk.handoffs import Engineer, HandoffDesk
from web.api import API, json_body, string_field


def _handoffs() -> HandoffDesk:
    outreach = current_app.extensions["firstline"].outreach
    assert outreach is not None  # built with every Parts
    return outreach.handoffs


def _engineer() -> Engineer:
    if g.channel != "api":  # a chat cookie is not a token
        raise UnauthorizedError("the hand-off endpoints want an engineer's token: send it as Authorization: Bearer "
                                "TOKEN (firstline token create --user NAME --role engineer)")
    if g.role is not Role.ENGINEER:
        raise ForbiddenError("only engineers may do this: send an engineer's API token as Authorization: Bearer "
                             "TOKEN (firstline token create --user NAME --role engineer)")
    staff = current_app.extensions["firstline"].users.get(g.user_id)
    if staff is not None and (staff.disabled or staff.role is not Role.ENGINEER):
        # A token does not outlive its owner's staff account.
        raise ForbiddenError(f"{g.user_id}'s staff account is disabled or is not an engineer's; it closes nothing")
    return Engineer(g.user_id, "api")


def make_engineering_api() -> Blueprint:
    api = Blueprint("engineering_api", __name__, url_prefix=API)

    @api.get("/handoffs")
    def list_handoffs():
        _engineer()
        return jsonify({"handoffs": _handoffs().listing(request.args.get("status", "open"))})

    @api.get("/handoffs/<handoff_id>")
    def handoff(handoff_id: str):
        _engineer()
        return jsonify(_handoffs().detail(handoff_id))

    @api.post("/handoffs/<handoff_id>/close")
    def close(handoff_id: str):
        engineer = _engineer()
        note = string_field(json_body(), "note")
        return jsonify(_handoffs().close(handoff_id, engineer, note))

    return api
