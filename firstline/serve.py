"""`firstline serve`: the chat page, the JSON API and the staff pages on one port."""

from __future__ import annotations

import click

from firstline.context import Context
from web.server import run_server


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8000; 0 picks a free one).")
@click.pass_obj
def serve(obj: Context, host: str | None, port: int | None) -> None:
    """Serve the chat page and the JSON API."""
    settings = obj.settings(host=host, port=port)
    run_server(settings)
