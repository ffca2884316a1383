"""Real servers on loopback for tests: PostgreSQL, Redis, Prometheus, Alertmanager, and tiny HTTP peers.

A server that is down is started the way ../shared/notes/real-peers.md says; if that fails, the test is
skipped on a developer's machine and fails in CI (CI=true), where these tests must run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import pytest

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)


def unavailable(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not available; CI must provide it (see .ci/run)")
    pytest.skip(f"{what} is not available on this machine")


def listening(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def ensure_postgres() -> None:
    if listening(POSTGRES):
        return
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") and clusters.is_dir():
        for version in sorted(p.name for p in clusters.iterdir()):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                           capture_output=True, check=False, timeout=60)
    if not wait_until(lambda: listening(POSTGRES), 20):
        unavailable("PostgreSQL on 127.0.0.1:5432")


def ensure_redis() -> None:
    if listening(REDIS):
        return
    if shutil.which("redis-server"):
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                        "--appendonly", "no"], capture_output=True, check=False, timeout=30)
    if not wait_until(lambda: listening(REDIS), 10):
        unavailable("Redis on 127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing: pytest's output stays the test's own."""

    def log_message(self, *args: object) -> None:
        return


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 at a free port, answering with `handler` on daemon threads: `url` is its
    address with `path`; `with` serves it and shuts it down (closing its socket)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], path: str = "") -> None:
        self.path = path
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True  # closing does not wait for a request still being answered
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class HTTPPeer(LoopbackServer):
    """A real HTTP server on 127.0.0.1 that records JSON POSTs and answers with a status; `hold` makes it hang
    until `release()` (to test time limits and concurrency without sleeping in the test)."""

    def __init__(self, status: int = 200, hold: bool = False) -> None:
        self.status = status
        self.requests: list[dict] = []
        self.arrived = threading.Event()
        self.released = threading.Event()
        if not hold:
            self.released.set()
        peer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                peer.requests.append(json.loads(body or b"{}"))
                peer.arrived.set()
                peer.released.wait(30)
                self.send_response(peer.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"done" if peer.status < 300 else b"refused")

        super().__init__(Handler, "/hook")

    def release(self) -> None:
        self.released.set()

    def __exit__(self, *exc: object) -> None:
        self.released.set()  # a request still held is answered now, not left hanging for 30 s
        super().__exit__(*exc)


class Exporter(LoopbackServer):
    """A real /metrics endpoint on 127.0.0.1: every GET gets `status` with `body` as `content_type`, and is
    counted in `reads`; a test changes them between scrapes with `serve`. Faults of the wire: `announce` sends
    that Content-Length whatever the body (None: none, the body ends when the connection closes); `trickle_s`
    sends the body a byte at a time with that pause, until `stop_trickling` is set (the exit sets it)."""

    TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, body: bytes | str = b"") -> None:
        self.reads = 0
        self._lock = threading.Lock()
        self.stop_trickling = threading.Event()
        self.serve(body)
        exporter = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with exporter._lock:
                    exporter.reads += 1
                    status, content_type, body = exporter.status, exporter.content_type, exporter.body
                    announce, trickle_s = exporter.announce, exporter.trickle_s
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if announce != -1:
                    self.send_header("Content-Length", str(len(body) if announce is None else announce))
                self.send_header("Connection", "close")
                self.end_headers()
                if not trickle_s:
                    self.wfile.write(body)
                    return
                for byte in body:
                    if exporter.stop_trickling.wait(trickle_s):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

        super().__init__(Handler, "/metrics")

    def serve(self, body: str | bytes, status: int = 200, content_type: str = TEXT_FORMAT, *,
              announce: int | None = None, trickle_s: float = 0.0) -> None:
        """What the next reads get; `announce`: a Content-Length to send instead of the body's (-1: send none)."""
        with self._lock:
            self.body = body.encode("utf-8") if isinstance(body, str) else body
            self.status, self.content_type, self.announce, self.trickle_s = status, content_type, announce, trickle_s

    def __exit__(self, *exc: object) -> None:
        self.stop_trickling.set()
        super().__exit__(*exc)
