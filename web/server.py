"""Serving the app with waitress: one process, many threads, as DuckDB's single writer requires."""

from __future__ import annotations

import click
from waitress import create_server
from waitress.server import BaseWSGIServer

from core.settings import Settings
from engine.wiring import Parts, build
from web.app import create_app


def make_server(settings: Settings, parts: Parts) -> BaseWSGIServer:
    """A waitress server for `parts`, bound but not yet serving (port 0 binds a free port)."""
    return create_server(create_app(settings, parts), host=settings.host, port=settings.port,
                         threads=settings.threads)


def run_server(settings: Settings) -> None:
    parts = build(settings, progress=True)
    parts.assistant.knowledge.embedder.encode_one("warm up")  # load the model now, not on the first user's turn
    try:
        server = make_server(settings, parts)
        click.echo(f"Firstline is serving {parts.assistant.voice.product} support on "
                   f"http://{settings.host}:{server.effective_port}/  (Ctrl+C to stop)")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        parts.close()
