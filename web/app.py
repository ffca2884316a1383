"""The Flask application factory: the chat page, the JSON API and one error shape everywhere."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request, session
from werkzeug.exceptions import HTTPException

from core.errors import FirstlineError, InputError
from core.settings import Settings
from engine.wiring import Parts
from web.ops import ops_blueprint

API = "/api/v1"
STATUS_BY_CODE = {"not_found": 404}


def create_app(settings: Settings, parts: Parts) -> Flask:
    """An app serving `parts.assistant`; the caller owns `parts` and closes them."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key or _stored_secret(settings.data_dir),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.json.sort_keys = False  # keep the contract's key order
    app.extensions["firstline"] = parts
    app.register_error_handler(Exception, _error_response)
    app.register_blueprint(ops_blueprint(parts))  # /metrics and the Alertmanager receiver (issue 6)

    @app.before_request
    def identify() -> None:
        if "user_id" not in session:
            session["user_id"] = uuid.uuid4().hex
            session.permanent = True
        g.user_id = session["user_id"]

    @app.get("/")
    def chat_page():
        return render_template("chat.html", product=parts.assistant.voice.product)

    @app.get(f"{API}/health")
    def health():
        return jsonify({"status": "ok", "ruleset_version": parts.assistant.rules.rulebase.version})

    @app.post(f"{API}/messages")
    def post_message():
        body = _json_body()
        text = body.get("text")
        conversation_id = body.get("conversation_id")
        if not isinstance(text, str):
            raise InputError("`text` is required and must be a string", code="invalid_body")
        if conversation_id is not None and not isinstance(conversation_id, str):
            raise InputError("`conversation_id` must be a string", code="invalid_body")
        answer = parts.assistant.answer(text, g.user_id, conversation_id, channel="web")
        return jsonify({"conversation_id": answer.conversation_id, **answer.contract()})

    @app.get(f"{API}/conversations/<conversation_id>/messages")
    def conversation_messages(conversation_id: str):
        return jsonify({"conversation_id": conversation_id,
                        "messages": parts.assistant.history(conversation_id, g.user_id)})

    return app


def _json_body() -> dict:
    if not request.is_json:
        raise InputError("send a JSON body with Content-Type: application/json", code="invalid_body")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object, e.g. {\"text\": \"I can't log in\"}", code="invalid_body")
    return body


def _error_response(error: Exception):
    """Every error leaves as {"error": {"code", "message"}}; never a traceback."""
    if isinstance(error, InputError):
        status, code, message = STATUS_BY_CODE.get(error.code, 400), error.code, str(error)
    elif isinstance(error, HTTPException):
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
    elif isinstance(error, FirstlineError):
        status, code, message = 500, "unavailable", str(error)
    else:
        status, code, message = 500, "internal_error", "something went wrong on our side; it has been logged"
        from flask import current_app

        current_app.logger.exception("unhandled error")
    if not request.path.startswith(API) and status == 404:
        return render_template("error.html", message=message), status
    return jsonify({"error": {"code": code, "message": message}}), status


def _stored_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key, encoding="utf-8")
    path.chmod(0o600)
    return key
