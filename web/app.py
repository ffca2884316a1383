"""The Flask application factory: the chat page, the JSON API and one error shape everywhere."""

from __future__ import annotations

import uuid

from flask import Flask, Response, current_app, g, jsonify, render_template, request, session
from flask_limiter import RateLimitExceeded

from core.errors import ForbiddenError, InputError, UnauthorizedError
from core.settings import Settings
from engine.access.secret import server_secret
from engine.access.tokens import Role
from engine.decision.trace import for_user
from engine.wiring import Parts
from web.analytics import make_analytics_api, make_analytics_blueprint
from web.api import API, json_body, make_blueprint, string_field
from web.curator import make_curator_blueprint
from web.curator_api import make_curator_api
from web.desk import make_desk_blueprint
from web.engineering import make_engineering_api
from web.errors import error_body, error_headers
from web.limits import as_rate_limit_error, install_limits
from web.links import follow_link, refused_notice
from web.openapi import document
from web.ops import OPS, ops_blueprint
from web.security import secure
from web.widget import WIDGET, make_widget_blueprint


def create_app(settings: Settings, parts: Parts) -> Flask:
    """An app serving `parts.assistant`; the caller owns `parts` and closes them."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=server_secret(settings.secret_key, settings.data_dir),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.json.sort_keys = False  # keep the contract's key order
    secure(app, settings.cookie_secure, settings.proxy_hops)
    app.extensions["firstline"] = parts
    app.register_error_handler(Exception, _error_response)
    app.before_request(_identify)
    install_limits(app, settings)  # after _identify: the user's allowance keys on g.user_id
    app.register_blueprint(make_blueprint(settings.threads, settings.identity_secret))
    app.register_blueprint(make_curator_blueprint())
    app.register_blueprint(make_desk_blueprint())
    app.register_blueprint(make_analytics_blueprint())
    app.register_blueprint(make_analytics_api())
    app.register_blueprint(make_widget_blueprint(settings.widget_origins))
    app.register_blueprint(make_curator_api())
    app.register_blueprint(make_engineering_api())
    if not settings.ops_listen:  # else /metrics and the Alertmanager receiver have an address of their own
        app.register_blueprint(ops_blueprint(parts, settings.operator_auth))

    @app.get("/")
    def chat_page():
        product = parts.assistant.voice.product
        if "token" in request.args:  # a notification e-mail's link (web/links.py)
            assert parts.outreach is not None  # built with every Parts
            return follow_link(parts.outreach.links, product)
        return render_template("chat.html", product=product, notice=refused_notice())

    @app.get(f"{API}/health")
    def health():
        return jsonify({"status": "ok", "ruleset_version": parts.assistant.rules.rulebase.version})

    @app.get(f"{API}/openapi.json")
    def openapi():
        return jsonify(document())

    @app.post(f"{API}/messages")
    def post_message():
        # One decision per call, in the `ask --json` shape, without the dialogue around it.
        body = json_body()
        text = string_field(body) or ""
        conversation_id = string_field(body, "conversation_id", required=False)
        explain = body.get("explain", False)
        if not isinstance(explain, bool):
            raise InputError("`explain` must be true or false", code="invalid_body")
        answer = parts.assistant.answer(text, g.user_id, conversation_id, channel=g.channel, verified=g.verified)
        body = {"conversation_id": answer.conversation_id, "decision_id": answer.decision_id,
                **answer.contract(explain=explain)}
        if explain and g.role is not Role.CURATOR:
            body["trace"] = for_user(body["trace"])  # the user's own answer, not the infrastructure's state
        return jsonify(body)

    @app.get(f"{API}/decisions/<decision_id>/trace")
    def decision_trace(decision_id: str):
        # Only the user the decision answered may read its trace (anyone else gets the same 404 as for none),
        # except curators, who review decisions across users.
        why_not = request.args.getlist("why_not")
        if g.role is Role.CURATOR:  # curators read any decision's trace, and may ask about learned rules
            return jsonify(parts.curation.trace(decision_id, why_not))
        # Why-not is asked of the facts the user may see, so its report cannot name a hidden reading either.
        trace = for_user(parts.assistant.trace(decision_id, g.user_id))
        if why_not:
            trace["why_not"] = [parts.assistant.why_not(trace, name) for name in why_not]
        return jsonify(trace)

    return app


def create_ops_app(settings: Settings, parts: Parts) -> Flask:
    """/metrics and the Alertmanager receiver alone, for the `ops_listen` address; the same checks as on the
    chat's address (operator token, headers, body limits, error shape)."""
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024, FIRSTLINE_OPS_ONLY=True)  # no cookies on this address
    app.json.sort_keys = False
    secure(app, settings.cookie_secure, settings.proxy_hops)
    app.extensions["firstline"] = parts
    app.register_error_handler(Exception, _error_response)
    app.before_request(_identify)
    app.register_blueprint(ops_blueprint(parts, settings.operator_auth))
    return app


def _identify() -> None:
    """The caller: an API token's user (`Authorization: Bearer`), else the signed session cookie's; and whether
    their identity is vouched for (`g.verified`). Operator endpoints never hand out a cookie, and an operator's
    token opens nothing else."""
    header = request.headers.get("Authorization", "")
    operations = request.blueprint == OPS or current_app.config.get("FIRSTLINE_OPS_ONLY", False)
    if header:
        scheme, _, token = header.partition(" ")
        tokens = current_app.extensions["firstline"].tokens
        identity = tokens.identify(token.strip()) if scheme.lower() == "bearer" else None
        if identity is None:
            role = " --role operator" if operations else ""  # Prometheus' or Alertmanager's token, by the path
            raise UnauthorizedError("the API token is not valid (malformed, unknown or revoked); create one with "
                                    f"`firstline token create --user NAME{role}`")
        # A path or method no route takes is told so (404, 405 with Allow), whoever asks: nothing runs for it.
        if identity.role is Role.OPERATOR and not operations and request.routing_exception is None:
            raise ForbiddenError("an operator's token reads /metrics, posts Alertmanager alerts and reads their dead "
                                 "letters, nothing else")
        # The operator issued this token for this user: that is the vouching an account action needs.
        g.user_id, g.role, g.channel, g.verified = identity.user_id, identity.role, "api", True
        return
    if operations:
        g.user_id, g.role, g.channel, g.verified = None, None, "ops", False
        return
    if request.blueprint == WIDGET or request.endpoint == "static":
        # Files and the widget's frame need nobody: no cookie for every page view of a host app that loads the widget.
        g.user_id, g.role, g.channel, g.verified = None, None, "web", False
        return
    if "user_id" not in session:
        session["user_id"] = uuid.uuid4().hex
        session.permanent = True
    # Verified only when the host app signed this browser's user id (POST /api/v1/identity).
    g.user_id, g.role, g.channel = session["user_id"], Role.USER, "web"
    g.verified = bool(session.get("verified"))


def _error_response(error: Exception):
    """Every error leaves as {"error": {"code", "message"}}; never a traceback."""
    if isinstance(error, RateLimitExceeded):
        error = as_rate_limit_error(error, current_app.extensions["firstline.limiter"])
    body, status = error_body(error)
    if status in (401, 403):
        # Refusals are how probing shows up: who, from where, asking for what (never the credentials sent).
        current_app.logger.warning("refused %s %s from %s: %s", request.method, request.path,
                                   request.remote_addr, body["error"]["code"])
    if request.path.startswith("/analytics/") and request.path.endswith(".csv"):
        # A download that failed: the message as plain text (what a browser or curl shows in place of the file).
        return Response(body["error"]["message"] + "\n", status, error_headers(error), mimetype="text/plain")
    if request.path.startswith("/analytics/") and request.path.endswith(".json"):
        return jsonify(body), status, error_headers(error)  # the JSON twins answer in the one error shape
    if not _under_api(request.path) and (status == 404 or
                                             request.path.startswith(("/curator", "/desk", "/analytics"))):
        title = {400: "That did not work", 401: "Please sign in", 403: "Not allowed", 409: "That changed meanwhile",
                 429: "Too many attempts"}.get(status, "Not found" if status == 404 else "Something went wrong")
        back = ("/", "Back to the chat")
        if request.path.startswith(("/desk", "/curator")):
            back = ("/desk/", "Back to the desk") if request.path.startswith("/desk") else ("/curator/", "Back")
        if request.path.startswith("/analytics"):
            back = ("/analytics/", "Back to the metrics")
        return (render_template("error.html", message=body["error"]["message"], title=title, back=back), status,
                error_headers(error))
    return jsonify(body), status, error_headers(error)



def _under_api(path: str) -> bool:
    """Whether `path` is the JSON API's (any version, and /api itself): its errors are JSON, never a page."""
    return path == "/api" or path.startswith("/api/")
