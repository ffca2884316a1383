"""Serving the app with waitress: one process, many threads, as DuckDB's single writer requires.

One waitress loop serves every address the process listens on: the chat's (`host:port`), the operators' when
`ops_listen` gives them their own, and the administration socket in the data folder (web/admin.py), through
which the command line changes tokens and accounts while the server runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from waitress import create_server
from waitress.server import BaseWSGIServer

from core.errors import ConfigurationError
from core.logs import configure_logging
from core.settings import Settings
from core.stopping import terminate_as_interrupt
from engine.desk.expiry import ExpiryTimer
from engine.notify.sender import SenderTimer
from engine.wiring import Parts, build
from web.admin import admin_socket_path, create_admin_app, private_folder
from web.app import create_app, create_ops_app


@dataclass
class Listeners:
    """The servers of one process, sharing `main`'s loop and threads."""

    main: BaseWSGIServer
    ops: BaseWSGIServer | None
    admin_socket: Path

    def url(self, server: BaseWSGIServer) -> str:
        return f"http://{server.effective_host}:{server.effective_port}"

    def close_admin_socket(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.admin_socket.unlink()


def make_server(settings: Settings, parts: Parts) -> Listeners:
    """Servers for `parts`, bound but not yet serving (port 0 binds a free port)."""
    main = _bind(settings.host, settings.port, "port", lambda: create_server(
        create_app(settings, parts), host=settings.host, port=settings.port, threads=settings.threads))
    try:
        ops = None
        if settings.ops_listen:
            host, port = parse_listen(settings.ops_listen)
            ops = _bind(host, port, "ops_listen", lambda: create_server(
                create_ops_app(settings, parts), map=main._map, _dispatcher=main.task_dispatcher, host=host,
                port=port))
        socket_path = admin_socket_path(settings)
        private_folder(socket_path)
        create_server(create_admin_app(parts), map=main._map, _dispatcher=main.task_dispatcher,
                      unix_socket=str(socket_path), unix_socket_perms="600")
    except BaseException:
        for channel in list(main._map.values()):
            channel.close()
        raise
    return Listeners(main, ops, socket_path)


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT) as a host and a port; ConfigurationError naming `ops_listen` if not."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigurationError(f"ops_listen must be HOST:PORT, e.g. 127.0.0.1:9180; got {value!r}",
                                 key="ops_listen")
    return host, int(port)


def _bind(host: str, port: int, key: str, make: Callable[[], BaseWSGIServer]) -> BaseWSGIServer:
    setting = "--host or FIRSTLINE_HOST" if key == "port" else "FIRSTLINE_OPS_LISTEN"
    try:
        return make()
    except ValueError:  # waitress: the host is neither an address nor a name it can resolve (256.1.1.1, a typo)
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: that is not an address of this machine nor a name that resolves to "
            f"one; use an IP address such as 127.0.0.1 or 0.0.0.0 with {setting}",
            key="host" if key == "port" else key,
        ) from None
    except OSError as error:
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {error.strerror}. Stop whatever uses that port, or choose another "
            f"with {'--port or FIRSTLINE_PORT' if key == 'port' else 'FIRSTLINE_OPS_LISTEN'}",
            key=key,
        ) from None


def run_server(settings: Settings) -> None:
    """Serve until Ctrl+C (SIGINT) or SIGTERM (`kill`, systemd, docker stop); either stops the timers and the
    monitor after their current pass, and closes the store (a checkpoint, so the DuckDB file is whole)."""
    configure_logging(settings.log_level)  # before the app exists: Flask adds no handler of its own then
    with terminate_as_interrupt():  # from the start: a stop during the model's warm-up closes the store too
        _serve(settings)


def _serve(settings: Settings) -> None:
    parts: Parts | None = None
    listeners, expiry, notify = None, None, None
    try:
        parts = build(settings, progress=True)  # closes what it opened if stopped half-way (the model's load)
        listeners = make_server(settings, parts)
        parts.assistant.knowledge.embedder.encode_one("warm up")  # load the model now, not on a user's turn
        if settings.monitor_enabled and parts.healing is not None:
            parts.healing.monitor.start()  # stopped by parts.close() below
        elif parts.healing is not None:
            click.echo("the monitor is off (FIRSTLINE_MONITOR_ENABLED=false): alerts the receiver takes are stored, "
                       "and nothing acts on them until a monitor runs (`firstline heal`, or serve with it on)",
                       err=True)
        if parts.desk is not None:
            expiry = ExpiryTimer(parts.desk)  # unanswered business requests close on time, page or not
            expiry.start()  # (made first, started after: a stop in between still finds it to stop)
        if parts.outreach is not None:
            # A person's answer reaches a user who left: the outbox is worked through from the start (what a crash
            # left pending goes out now), then every notify_interval_s.
            notify = SenderTimer(parts.outreach.sender, settings.notify_interval_s)
            notify.start()
        click.echo(f"Firstline is serving {parts.assistant.voice.product} support on "
                   f"{listeners.url(listeners.main)}/  (Ctrl+C to stop)")
        if listeners.ops is not None:
            click.echo(f"/metrics and the Alertmanager receiver are on {listeners.url(listeners.ops)}/")
        listeners.main.run()  # returns on Ctrl+C or SIGTERM (waitress takes the KeyboardInterrupt and closes)
        click.echo("stopping: finishing the current work and closing the store", err=True)
    except KeyboardInterrupt:  # during the start-up
        click.echo("stopping before serving: closing the store", err=True)
    finally:
        if expiry is not None:
            expiry.stop()
        if notify is not None:
            notify.stop()
        if listeners is not None:
            listeners.close_admin_socket()
        if parts is not None:
            parts.close()


class BackgroundServer:
    """The listeners polled on a thread until `stop()`, for tests and benchmarks.

    Closing waitress's socket while its own loop sits in select() races (EBADF on that thread), so this loop
    polls in short slices and the sockets are closed only after the loop has ended.
    """

    POLL_S = 0.05

    def __init__(self, listeners: Listeners) -> None:
        self.listeners = listeners
        self.server = listeners.main
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="firstline-server", daemon=True)

    @property
    def url(self) -> str:
        return self.listeners.url(self.server)

    @property
    def ops_url(self) -> str | None:
        return self.listeners.url(self.listeners.ops) if self.listeners.ops is not None else None

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
        for channel in list(self.server._map.values()):  # open client connections and the other listeners
            if channel is not self.server:
                channel.close()
        self.server.close()
        self.listeners.close_admin_socket()
