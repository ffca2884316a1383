"""The administration endpoints, served only on a Unix socket in the data folder (never on a network address):
the command line reaches the running server through it to issue or revoke tokens, record accounts, administer
staff users, run analysts' read-only queries (`firstline sql`, on the server's own database connection), close
engineering's hand-offs (`firstline handoffs`) and work the notification outbox (`firstline notify`) without
stopping it. The socket's folder is mode 0700 and the socket 0600, so only the account running
the server (or root) can connect: the same trust as reading the database file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from flask import Flask, jsonify, request

from core.errors import InputError
from core.settings import Settings
from engine.access.administration import Administration
from engine.desk.desk import Decider, cli_decider
from engine.desk.handoffs import cli_engineer
from engine.wiring import Parts
from web.api import flag_field, json_body, string_field
from web.errors import error_body

MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to about 104-108 bytes, by platform


def admin_socket_path(settings: Settings) -> Path:
    """Where the running server listens for administration: `<data_dir>/run/admin.sock`, or, when that path is
    too long for a Unix socket, a folder named after the data folder in the system's temporary directory."""
    path = settings.data_dir.resolve() / "run" / "admin.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"firstline-{os.getuid()}-{digest}" / "admin.sock"


def private_folder(path: Path) -> None:
    """Make `path`'s folder, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)


def create_admin_app(parts: Parts) -> Flask:
    """A WSGI app of JSON endpoints over `Administration` (see `firstline.admin` for the client)."""
    app = Flask(__name__)
    app.json.sort_keys = False
    admin = Administration(parts.tokens, parts.assistant.store, parts.users, parts.assistant.clock)

    def text(found: dict, key: str) -> str:
        return string_field(found, key) or ""  # required: a string, or InputError

    @app.get("/tokens")
    def list_tokens():
        return jsonify(admin.list_tokens())

    @app.post("/tokens")
    def create_token():
        found = json_body()
        return jsonify(admin.create_token(text(found, "user"), text(found, "role"))), 201

    @app.post("/tokens/<token_id>/revoke")
    def revoke_token(token_id: str):
        return jsonify(admin.revoke_token(token_id))

    @app.put("/accounts/<user>")
    def set_account(user: str):
        found = json_body()
        return jsonify(admin.set_account(user, text(found, "plan"), found.get("seats"), text(found, "role"),
                                         found.get("organisation", ""), found.get("since"),
                                         found.get("monthly_price")))

    @app.get("/accounts/<user>")
    def account(user: str):
        return jsonify(admin.account(user))

    @app.get("/users")
    def list_users():
        return jsonify(admin.list_users())

    @app.post("/users")
    def create_user():
        found = json_body()
        return jsonify(admin.create_user(text(found, "name"), text(found, "role"), found.get("password"),
                                         found.get("categories", []))), 201

    @app.post("/users/<name>/disable")
    def disable_user(name: str):
        return jsonify(admin.disable_user(name))

    @app.put("/users/<name>/categories")
    def set_user_categories(name: str):
        return jsonify(admin.set_user_categories(name, json_body().get("categories", [])))

    @app.put("/users/<name>/password")
    def set_user_password(name: str):
        return jsonify(admin.set_user_password(name, json_body().get("password")))

    @app.post("/sql")
    def sql():
        found = json_body()
        params = {} if found.get("params") is None else found["params"]
        if not isinstance(params, dict):
            raise InputError("`params` must be an object of name -> value, e.g. {\"since\": \"2024-01-01\"}",
                             code="invalid_body")
        return jsonify(parts.analyst.run(text(found, "sql"), params).to_json())

    _desk_routes(app, parts)
    _outreach_routes(app, parts)

    @app.errorhandler(Exception)
    def failed(error: Exception):
        found, status = error_body(error)
        return jsonify(found), status

    return app


def _desk_routes(app: Flask, parts: Parts) -> None:
    """`firstline escalations` on the running server: the desk as the named decider (`as`), every rule applied."""
    desk = parts.desk
    assert desk is not None  # every build makes one

    def decider(found: dict) -> Decider:
        return cli_decider(parts.users, parts.tokens, string_field(found, "as") or "")

    @app.get("/escalations")
    def escalations():
        found = dict(request.args)
        return jsonify(desk.queue(decider(found), found.get("status", "open"), found.get("category") or None))

    @app.get("/escalations/<escalation_id>")
    def escalation(escalation_id: str):
        return jsonify(desk.detail(escalation_id, decider(dict(request.args))))

    @app.post("/escalations/<escalation_id>/decision")
    def decide(escalation_id: str):
        found = json_body()
        return jsonify(desk.decide(escalation_id, decider(found), string_field(found, "outcome") or "",
                                   string_field(found, "reason", required=False) or "",
                                   string_field(found, "digest", required=False),
                                   not_business=flag_field(found, "not_business")))

    @app.post("/escalations/<escalation_id>/question")
    def ask(escalation_id: str):
        found = json_body()
        return jsonify(desk.ask(escalation_id, decider(found), string_field(found, "question") or "",
                                string_field(found, "digest", required=False)))


def _outreach_routes(app: Flask, parts: Parts) -> None:
    """`firstline handoffs` and `firstline notify` on the running server (its outbox, its mail settings)."""
    outreach = parts.outreach
    assert outreach is not None  # every build makes one

    @app.get("/handoffs")
    def handoffs():
        return jsonify(outreach.handoffs.listing(request.args.get("status", "open")))

    @app.get("/handoffs/<handoff_id>")
    def handoff(handoff_id: str):
        return jsonify(outreach.handoffs.detail(handoff_id))

    @app.post("/handoffs/<handoff_id>/close")
    def close_handoff(handoff_id: str):
        found = json_body()
        engineer = cli_engineer(parts.users, parts.tokens, string_field(found, "as") or "")
        return jsonify(outreach.handoffs.close(handoff_id, engineer, string_field(found, "note") or ""))

    @app.get("/notify")
    def notify_status():
        return jsonify(outreach.sender.status())

    @app.post("/notify/send")
    def notify_send():
        return jsonify(outreach.sender.send_due().to_json())

    @app.post("/notify/retry")
    def notify_retry():
        return jsonify(outreach.sender.retry(string_field(json_body(), "id", required=False)))
