"""The soak's HTTP client and the record of every request it makes: endpoint, status, latency."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 180  # a client's patience with one request: the storm and the 10 MiB body take a while on 2 cores


class Recorder:
    """Every request's endpoint, status and latency; status 0 is a connection that failed (refused, reset, timed
    out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: list[tuple[str, int, float, float]] = []  # endpoint, status, ms, when (s since traffic start)
        self.transport_errors: list[str] = []
        self.started = time.monotonic()

    def add(self, endpoint: str, status: int, ms: float, error: str = "") -> None:
        with self._lock:
            self.rows.append((endpoint, status, ms, time.monotonic() - self.started))
            if error:
                self.transport_errors.append(f"{endpoint}: {error}"[:300])

    def summary(self) -> dict[str, Any]:
        by_endpoint: dict[str, dict[str, Any]] = {}
        with self._lock:
            rows = list(self.rows)
        for endpoint in sorted({r[0] for r in rows}):
            mine = [r for r in rows if r[0] == endpoint]
            latencies = [r[2] for r in mine if r[1]]
            by_endpoint[endpoint] = {
                "requests": len(mine),
                "by_status": dict(sorted(Counter(str(r[1]) for r in mine).items())),
                "p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
                "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
            }
        return {"total": len(rows), "by_status": dict(sorted(Counter(str(r[1]) for r in rows).items())),
                "by_endpoint": by_endpoint}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Reply:
    status: int  # 0: no answer (refused, reset, timed out, cut short)
    headers: dict[str, str]
    body: bytes
    ms: float = 0.0
    error: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Client:
    """One HTTP client: a browser (its own cookie jar), an integration or a staff tool (a bearer token)."""

    def __init__(self, base: str, recorder: Recorder, token: str | None = None, cookies: bool = True) -> None:
        handlers: list[Any] = [urllib.request.ProxyHandler({})]  # loopback only, whatever the environment says
        if cookies:
            handlers.append(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.opener = urllib.request.build_opener(*handlers)
        self.base, self.recorder, self.token = base, recorder, token

    def call(self, method: str, path: str, endpoint: str, body: Any = None, raw: bytes | None = None,
             content_type: str = "application/json", accept: str | None = None,
             token: str | bool | None = True, record: bool = True) -> Reply:
        """One request, recorded under `endpoint` (unless `record` is false: the caller records it)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {}
        if data is not None:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        bearer = self.token if token is True else (token or None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=TIMEOUT_S) as response:
                reply = Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            reply = Reply(error.code, dict(error.headers), error.read())
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, cut short
            reply = Reply(0, {}, b"", error=f"{type(error).__name__}: {error}")
        reply.ms = (time.perf_counter() - started) * 1000
        if record:
            self.recorder.add(endpoint, reply.status, reply.ms, reply.error)
        return reply

