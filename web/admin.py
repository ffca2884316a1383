"""The administration endpoints, served only on a Unix socket in the data folder (never on a network address):
the command line reaches the running server through it to issue or revoke tokens and record accounts without
stopping it. The socket's folder is mode 0700 and the socket 0600, so only the account running the server (or
root) can connect: the same trust as reading the database file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from flask import Flask, jsonify

from core.settings import Settings
from engine.access.administration import Administration
from engine.wiring import Parts
from web.api import json_body, string_field
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
    admin = Administration(parts.tokens, parts.assistant.store)

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
        return jsonify(admin.set_account(user, text(found, "plan"), found.get("seats"), text(found, "role")))

    @app.get("/accounts/<user>")
    def account(user: str):
        return jsonify(admin.account(user))

    @app.errorhandler(Exception)
    def failed(error: Exception):
        found, status = error_body(error)
        return jsonify(found), status

    return app
