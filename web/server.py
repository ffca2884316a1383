"""Serving the app with waitress: one process, many threads, as DuckDB's single writer requires."""

from __future__ import annotations

import click
from waitress import create_server
from waitress.server import BaseWSGIServer

from core.errors import ConfigurationError
from core.settings import Settings
from engine.wiring import Parts, build
from web.app import create_app


def make_server(settings: Settings, parts: Parts) -> BaseWSGIServer:
    """A waitress server for `parts`, bound but not yet serving (port 0 binds a free port)."""
    try:
        return create_server(create_app(settings, parts), host=settings.host, port=settings.port,
                             threads=settings.threads)
    except OSError as error:
        raise ConfigurationError(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror}. Stop whatever uses that port, "
            "or choose another with --port or FIRSTLINE_PORT",
            key="port",
        ) from None


def run_server(settings: Settings) -> None:
    parts = build(settings, progress=True)
    try:
        server = make_server(settings, parts)
        parts.assistant.knowledge.embedder.encode_one("warm up")  # load the model now, not on a user's turn
        click.echo(f"Firstline is serving {parts.assistant.voice.product} support on "
                   f"http://{settings.host}:{server.effective_port}/  (Ctrl+C to stop)")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        parts.close()
