"""Serving the app with waitress: one process, many threads, as DuckDB's single writer requires."""

from __future__ import annotations

import threading

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
        if settings.monitor_enabled and parts.healing is not None:
            parts.healing.monitor.start()  # stopped by parts.close() below
        click.echo(f"Firstline is serving {parts.assistant.voice.product} support on "
                   f"http://{settings.host}:{server.effective_port}/  (Ctrl+C to stop)")
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        parts.close()


class BackgroundServer:
    """A waitress server polled on a thread until `stop()`, for tests and benchmarks.

    Closing waitress's socket while its own loop sits in select() races (EBADF on that thread), so this loop
    polls in short slices and the socket is closed only after the loop has ended.
    """

    POLL_S = 0.05

    def __init__(self, server: BaseWSGIServer) -> None:
        self.server = server
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="firstline-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.server.asyncore.loop(timeout=self.POLL_S, map=self.server._map, count=1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.task_dispatcher.shutdown()
        for channel in list(self.server._map.values()):  # open client connections, then the listener
            if channel is not self.server:
                channel.close()
        self.server.close()
