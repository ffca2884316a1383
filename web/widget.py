"""The embeddable widget (docs/widget.md): `/widget.js`, the one script a host app adds to its pages, which puts
a launcher on them and opens `/embed` in a frame: the chat page itself, in its frame's layout, the one page
other sites may frame, and only the host apps named in `widget_origins`.

Neither hands out a session: the frame's chat keeps its own in a header (web/security.py), and a script loaded by
every page view of a host app has no use for a cookie."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request

from web.security import embed_headers

WIDGET = "widget"


def make_widget_blueprint(origins: tuple[str, ...]) -> Blueprint:
    """The widget's two routes; `origins` (Settings.widget_origins) may frame the chat."""
    widget = Blueprint(WIDGET, __name__)

    @widget.get("/widget.js")
    def script() -> Response:
        return current_app.send_static_file("widget.js")

    @widget.get("/embed")
    def embed() -> Response:
        # The host page says which it is (widget.js passes its origin); the frame talks back to it by
        # postMessage only when it is one of the allowed origins, which are also the only ones that may frame it.
        host = request.args.get("host", "").lower()
        product = current_app.extensions["firstline"].assistant.voice.product
        page = render_template("chat.html", product=product, embed=True, host=host if host in origins else "")
        return Response(page, mimetype="text/html", headers=embed_headers(origins))

    return widget
