"""A soak: one real server (`firstline serve`, a subprocess) under mixed traffic for ten minutes, then the checks.

What runs at once, each worker with its own seeded random generator:

- chat users (`--chat-workers`, 4): many users, each a browser with its own session cookie (some vouched for by the
  host app through `POST /api/v1/identity`, coming back later as the same user) or an integration with a user
  token; a conversation through the JSON API (`docs/conversation-api.md`) with an opening message of
  `data/simulation/messages.tsv`, then a reply to each question asked, by its stage, from
  `data/eval/independent/replies_dev.tsv` or a button's value; some turns as server-sent events, some through the
  one-shot `POST /api/v1/messages`; ratings, reloads, conversation lists, a few bad bodies, a few impatient users
  who meet the rate limit, a few who delete their history;
- Alertmanager (one worker): version-4 webhooks with an operator's token, firing, resolved, repeated, with an empty
  or missing fingerprint, one of 1,200 alerts, a small storm (5 x 120 alerts over 5 services in 10 s, one with
  `truncatedAlerts`), and bad ones: malformed JSON, a schema error, a lone surrogate, the wrong Content-Type, no
  token, the wrong role, a body over 10 MiB;
- telemetry: the server's monitor scrapes a Prometheus source this script serves on loopback every 5 s, its text
  with faults mixed in (malformed lines, +Inf, NaN, a BOM, duplicate series, out-of-range values, a `_total`
  counter, a histogram under a gauge's name, a bad version, unescaped quotes, an exemplar, a long line, now and then
  a 9 MB body) and a fault episode every 100 s (a metric ramps past its limit and back), with a 15 s outage of the
  source every 120 s (HTML, 500, empty, slower than the timeout, cut short); a Prometheus-like worker reads the
  server's `/metrics` every 5 s with the operator's token (once per outage too: that read is counted apart);
- a curator (one worker, curator token): learned rules (list, read, diff, now and then approve or reject one),
  playbooks, the unmatched queue, decision traces.

Then, with the traffic stopped: every conversation is read back through the API as its user, the server is stopped
with SIGINT (as Ctrl+C) and the DuckDB file is read with `firstline sql`. Checks: zero 5xx (the /metrics reads
during an outage of its source are counted apart) and no dropped connection; the server's RSS at the end within
`start x 1.25 + 50 MB` (start = the first sample after the warm-up, the first tenth of the run, at most 60 s); no
lost accepted user message (every 2xx turn's text is in its conversation, through the API and in the file; deleted
users' are gone); no lost accepted alert (every alert of a 2xx notification is in `alerts`, the notifications and
their summarised counts in `alert_notifications`); every refused notification in `dead_letters` (by the id its
refusal carried); the receiver answering each kind as documented; no traceback in the server's log; the server
exiting within `--stop-wait` of SIGINT (else its threads' signal state and stacks are kept in the results).

Why that memory bound: after the warm-up the server holds the model, torch, the faiss index and the first turns'
buffers (about 1 GB here). What may still grow without leaking is DuckDB's buffer pool (the file reaches about
30 MB in ten minutes), the learned examples joining the index, and glibc's per-thread arenas (some 50 threads):
tens of MB. The bound allows about 300 MB over a 1 GB start: a leak of 200 KB per chat turn (about 1,500 turns in
ten minutes) crosses it; the slope of a line fitted to the second half's samples shows a smaller one.

usage: .venv/bin/python bench/soak.py [--duration 600] [--seed 7] [--chat-workers 4] [--think 1.0]
                                      [--index-from var] [--stop-wait 60] [--json PATH] [--keep]
Prints a readable table and a JSON object (last line); exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import http.cookiejar
import http.server
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.yamlfile import load_mapping  # noqa: E402  (the one safe YAML loader)
from engine.store.audit import AUDIT_COUNTS, AUDIT_QUERIES  # noqa: E402  (SQL lives in the store)

OPENINGS = ROOT / "data/simulation/messages.tsv"
REPLIES = ROOT / "data/eval/independent/replies_dev.tsv"
INFRASTRUCTURE = ROOT / "data/infrastructure.yaml"
IDENTITY_SECRET = "soak-identity-secret"
MONITOR_INTERVAL_S = 5
SCRAPE_TIMEOUT_S = 2
TIMEOUT_S = 180  # a client's patience with one request: the storm and the 10 MiB body take a while on 2 cores
RSS_BOUND = (1.25, 50.0)  # end RSS <= start RSS * 1.25 + 50 MB
ALERTMANAGER = "/api/v1/alerts/alertmanager"
STORED_PER_NOTIFICATION = 1000  # docs/self-healing.md: alerts of one notification stored one by one, firing first
SITUATION = {"verifying": "A", "confirming": "B", "choosing": "C", "rating": "D", "checking_answer": "E"}
IMPATIENT = ["hello?", "anyone there?", "HELLO", "this is urgent", "???", "my dashboard is still slow!!",
             "why is nobody answering", "hello", "pls help", "still waiting"]
STATUS_BY_ERROR = {"conflict": 409, "rate_limited": 429, "not_found": 404, "forbidden": 403, "unauthorized": 401,
                   "unavailable": 500, "internal_error": 500}
# What the receiver answers each kind of notification with (docs/self-healing.md).
ALERT_EXPECTED = {"firing": 200, "resolved": 200, "repeat": 200, "empty_fingerprint": 200, "large": 200,
                  "storm": 200, "malformed_json": 400, "schema_error": 400, "lone_surrogate": 400,
                  "wrong_content_type": 400, "no_token": 401, "wrong_role": 403, "oversized": 413}


# -- the record of every request ------------------------------------------------------------------------------------


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


# -- the ledger: what the server accepted ----------------------------------------------------------------------------


@dataclass
class Conversation:
    owner: str
    texts: list[str] = field(default_factory=list)  # user messages answered 2xx, in order
    refused: list[str] = field(default_factory=list)  # user messages answered 429 (nothing stored)
    deleted: bool = False  # its user deleted their history after it


class Ledger:
    """Conversations and their accepted user messages; alerts accepted and refusals; decision ids for the curator."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conversations: dict[str, Conversation] = {}
        self.owners: dict[str, Client] = {}  # a user's latest client, to read their conversations back
        self.decisions: deque[str] = deque(maxlen=300)
        self.counts: Counter[str] = Counter()
        self.alert_keys: set[tuple[str, str, str]] = set()  # (fingerprint, startsAt, status) of 2xx notifications
        self.notifications_accepted = 0
        self.summarised_expected = 0
        self.truncated_sent = 0
        self.refusals: list[dict[str, Any]] = []  # each refused notification: kind, status, dead-letter id
        self.alert_posts: list[tuple[str, int]] = []  # kind, status
        self.bench_errors: list[str] = []
        self.outage_probes: list[dict[str, Any]] = []  # GET /metrics while the telemetry source is down

    def conversation(self, conversation_id: str, owner: str, client: Client) -> None:
        with self.lock:
            self.conversations.setdefault(conversation_id, Conversation(owner))
            self.owners[owner] = client

    def forget(self, owner: str) -> None:
        """The user deleted their history: each of their conversations so far must be gone."""
        with self.lock:
            for conversation in self.conversations.values():
                if conversation.owner == owner:
                    conversation.deleted = True
            self.counts["users who deleted their history"] += 1

    def accepted(self, conversation_id: str, text: str, decision_id: str | None) -> None:
        with self.lock:
            self.conversations[conversation_id].texts.append(text)
            self.counts["messages accepted"] += 1
            if decision_id:
                self.decisions.append(decision_id)

    def refused(self, conversation_id: str, text: str) -> None:
        with self.lock:
            self.conversations[conversation_id].refused.append(text)
            self.counts["messages refused (429)"] += 1

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n


# -- the telemetry source with faults --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    service: str
    metric: str
    baseline: float
    limit: float


def load_infrastructure() -> tuple[dict[str, dict[str, Any]], list[Series]]:
    infra = load_mapping(INFRASTRUCTURE, "the infrastructure file", "product, metrics, services")
    series = [Series(name, metric, float(spec["baseline"]), float(spec["limit"]))
              for name, service in infra["services"].items() for metric, spec in service.get("metrics", {}).items()]
    return infra["metrics"], series


MALFORMED = [
    "cpu 97%",
    'firstline_cpu_pct{service="api" 41',
    "node_load1{host=a} 1.2.3",
    'firstline_cpu_pct{service="web",note="say "hi""} 40',
    "}}} garbage {{{",
    "firstline_memory_pct{service=\"api\"}",
    "\x00\x01 binary noise",
    "firstline_queue_depth{service=\"queue\"} 12 # {trace_id=\"abc123\"} 1.0",
]
EPISODES = [("database", "slow_queries", 25.0), ("api", "memory_pct", 97.0), ("cache", "cache_hit_ratio", 0.5),
            ("queue", "queue_depth", 900.0), ("web", "latency_p95_ms", 2500.0), ("database", "pool_used_pct", 99.0)]


class FaultySource:
    """A Prometheus text-format `/metrics` of the tenant's services, with faults mixed into every read."""

    EPISODE_EVERY_S = 100.0  # a new fault episode starts this often: 30 s ramp, 30 s held, then back to baseline
    FAULTS: ClassVar[dict[str, int]] = {  # the kinds mixed into a read, and their weights
        "bom": 4, "malformed": 10, "plus_inf": 5, "nan": 5, "minus_inf": 2, "out_of_range": 8, "duplicate": 8,
        "version": 4, "counter": 6, "histogram": 3, "unknown_service": 3, "no_service": 3, "escaped_quote": 3,
        "timestamp": 3, "long_line": 2}
    OUTAGES: ClassVar[list[str]] = ["html", "http_500", "empty", "slow", "cut_short"]

    def __init__(self, seed: int) -> None:
        self.specs, self.series = load_infrastructure()
        self.rng = random.Random(f"{seed}-scrape-source")
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.outage: str | None = None  # during an outage, what every read gets (one of OUTAGES)
        self.served: Counter[str] = Counter()
        self.failed_jobs_total = 0.0
        self.histogram_count = 0
        self.last_huge = -1e9
        self.episode_offset = self.rng.randrange(len(EPISODES))
        handler = self._handler()
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, name="soak-scrape-source", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/metrics"

    def start(self) -> FaultySource:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def _handler(self):
        source = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                source.respond(self)

            def log_message(self, *args):  # quiet
                pass

        return Handler

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self.lock:
            now = time.monotonic() - self.started
            if self.outage:
                kind = self.outage
                self.served[f"outage: {kind}"] += 1
                body, faults = b"", []
            else:
                kind = "ok"
                body, faults = self._body(now)
                self.served["reads"] += 1
                for fault in faults:
                    self.served[f"fault: {fault}"] += 1
        try:
            if kind == "html":
                self._send(handler, 200, b"<!doctype html><title>Login</title><p>Please sign in</p>", "text/html")
            elif kind == "http_500":
                self._send(handler, 500, b"upstream exporter crashed\n", "text/plain")
            elif kind == "empty":
                self._send(handler, 200, b"", "text/plain; version=0.0.4")
            elif kind == "slow":
                time.sleep(SCRAPE_TIMEOUT_S + 1.5)
                self._send(handler, 200, b"firstline_cpu_pct{service=\"api\"} 30\n", "text/plain; version=0.0.4")
            elif kind == "cut_short":
                text = self._body(now)[0]
                handler.send_response(200)
                handler.send_header("Content-Type", "text/plain; version=0.0.4")
                handler.send_header("Content-Length", str(len(text)))
                handler.end_headers()
                handler.wfile.write(text[: len(text) // 3])
                handler.wfile.flush()
                handler.close_connection = True
            else:
                self._send(handler, 200, body, "text/plain; version=0.0.4; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):  # the scraper gave up first (the slow one)
            pass

    @staticmethod
    def _send(handler, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _value(self, series: Series, now: float) -> float:
        spec = self.specs[series.metric]
        value = series.baseline * (1 + self.rng.gauss(0, 0.03)) if series.baseline else self.rng.choice([0, 0, 1])
        cycle, phase = divmod(now, self.EPISODE_EVERY_S)
        service, metric, peak = EPISODES[(int(cycle) + self.episode_offset) % len(EPISODES)]
        if (service, metric) == (series.service, series.metric) and phase < 60:
            share = min(1.0, phase / 30)
            value = series.baseline + (peak - series.baseline) * share
        low, high = spec.get("min", float("-inf")), spec.get("max", float("inf"))
        return round(min(high, max(low, value)), 4)

    def _body(self, now: float) -> tuple[bytes, list[str]]:
        rng = self.rng
        faults = rng.choices(list(self.FAULTS), weights=list(self.FAULTS.values()), k=rng.choice([0, 1, 1, 2, 3]))
        faults = list(dict.fromkeys(faults))
        values = {(s.service, s.metric): self._value(s, now) for s in self.series}
        shown: dict[tuple[str, str], str] = {key: repr(v) for key, v in values.items()}
        extra: list[str] = []
        for fault in faults:
            key = rng.choice(sorted(values))
            spec = self.specs[key[1]]
            if fault == "plus_inf":
                shown[key] = "+Inf"
            elif fault == "nan":
                shown[key] = "NaN"
            elif fault == "minus_inf":
                shown[key] = "-Inf"
            elif fault == "out_of_range":
                high = spec.get("max")
                shown[key] = rng.choice([str(high * 7.5) if high else "-5", "-5", "-0.5"])
            elif fault == "duplicate":
                service, metric = key
                extra.append(f'firstline_{metric}{{service="{service}"}} {values[key] * rng.uniform(0.5, 1.5):.4f}')
                extra.append(f'firstline_{metric}{{service="{service}",instance="{service}-2"}} {values[key]:.4f}')
            elif fault == "malformed":
                extra.append(rng.choice(MALFORMED))
            elif fault == "unknown_service":
                extra.append('firstline_cpu_pct{service="nosuch"} 50')
            elif fault == "no_service":
                extra.append("firstline_cpu_pct 50")
            elif fault == "escaped_quote":
                extra.append('firstline_cpu_pct{service="api",note="say \\"hi\\""} 35')
            elif fault == "timestamp":
                extra.append(f'firstline_queue_depth{{service="queue"}} 11 {int(time.time() * 1000)}')
            elif fault == "long_line":
                extra.append('firstline_cpu_pct{service="web",pad="' + "x" * 9000 + '"} 30')
        lines = ["# HELP go_goroutines Number of goroutines that currently exist.", "# TYPE go_goroutines gauge",
                 f"go_goroutines {rng.randint(30, 60)}", "# TYPE process_resident_memory_bytes gauge",
                 f"process_resident_memory_bytes {rng.randint(90, 130)}e+06"]
        histogram = "histogram" in faults
        for metric in sorted({m for _, m in values}):
            if metric == "latency_p95_ms" and histogram:
                lines += self._histogram([s for s, m in values if m == metric])
                continue
            if metric == "failed_jobs" and "counter" in faults:
                self.failed_jobs_total = 0.0 if rng.random() < 0.05 else self.failed_jobs_total + rng.randint(0, 2)
                lines += ["# HELP firstline_failed_jobs_total jobs that failed",
                          "# TYPE firstline_failed_jobs_total counter",
                          f'firstline_failed_jobs_total{{service="queue"}} {self.failed_jobs_total}']
                continue
            lines += [f"# HELP firstline_{metric} {self.specs[metric].get('help', metric)}",
                      f"# TYPE firstline_{metric} gauge"]
            lines += [f'firstline_{metric}{{service="{s}"}} {shown[(s, m)]}' for s, m in sorted(values) if m == metric]
        version = {"web": 42, "api": 42, "auth": 17, "database": 9, "cache": 5, "queue": 12, "mail": 3,
                   "integrations": 8}
        lines += ["# TYPE firstline_deployed_version gauge"]
        for service, number in version.items():
            shown_version = rng.choice(["41.7", "-3", "+Inf"]) if "version" in faults and service == "api" else number
            lines.append(f'firstline_deployed_version{{service="{service}"}} {shown_version}')
        lines += extra
        text = "\n".join(lines) + "\n"
        if "bom" in faults:
            text = "\ufeff" + text
        if now - self.last_huge > 120 and rng.random() < 0.05:  # at most once in two minutes: past the 8 MB cut
            self.last_huge = now
            faults.append("body_9mb")
            text += ("# " + "padding " * 124 + "\n") * 9000
        return text.encode("utf-8"), faults

    def _histogram(self, services: list[str]) -> list[str]:
        self.histogram_count += 100
        lines = ["# HELP firstline_latency_p95_ms request latency", "# TYPE firstline_latency_p95_ms histogram"]
        for service in services:
            total = self.histogram_count
            for bound, share in (("100", 0.5), ("250", 0.8), ("1000", 0.97), ("+Inf", 1.0)):
                labels = f'service="{service}",le="{bound}"'
                lines.append(f"firstline_latency_p95_ms_bucket{{{labels}}} {int(total * share)}")
            lines += [f'firstline_latency_p95_ms_sum{{service="{service}"}} {total * 120}',
                      f'firstline_latency_p95_ms_count{{service="{service}"}} {total}']
        return lines


# -- the server ------------------------------------------------------------------------------------------------------


class Server:
    """`firstline serve` in a subprocess on a temporary data folder, with its log kept and its memory sampled."""

    LOG_PATTERNS: ClassVar[dict[str, str]] = {
        "tracebacks": "Traceback (most recent call last)", "unhandled errors": "unhandled error",
        "telemetry problems logged": "telemetry problem from", "scrapes failed": "cannot scrape",
        "alert refusals logged": "alert notification refused", "chat turns without telemetry": "chat telemetry:"}

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.log_path = folder / "serve.log"
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.samples: list[tuple[float, float, int, int, float]] = []  # t, rss MB, threads, fds, cpu s
        self.load: list[float] = []  # the machine's 1-minute load average at each sample
        self.libraries: dict[str, float] = {}  # shared libraries first mapped during the traffic: path -> t
        self._listening = threading.Event()
        self._sampling = threading.Event()

    def firstline(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "firstline", *args], cwd=ROOT, env={**self.env, **(extra or {})},
                              capture_output=True, text=True, check=False, timeout=900)

    def start(self) -> float:
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "-m", "firstline", "serve"], cwd=ROOT, env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read_log, name="soak-server-log", daemon=True).start()
        if not self._listening.wait(600) or not self.url:
            raise SystemExit(f"the server did not start; its log: {self.log_path}")
        return time.perf_counter() - started

    def _read_log(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                found = re.search(r"serving .* on (http://[0-9.]+:\d+)/", line)
                if found and not self.url:
                    self.url = found.group(1)
                    self._listening.set()
        self._listening.set()  # it ended before listening

    def sample_memory(self, every_s: float, since: float) -> threading.Thread:
        def loop() -> None:
            known = self.mapped()
            while not self._sampling.is_set():
                reading = self.reading()
                if reading:
                    self.samples.append((time.monotonic() - since, *reading))
                    self.load.append(float(Path("/proc/loadavg").read_text().split()[0]))
                    for path in self.mapped() - known:
                        self.libraries[path] = round(time.monotonic() - since, 1)
                        known.add(path)
                self._sampling.wait(every_s)

        thread = threading.Thread(target=loop, name="soak-rss", daemon=True)
        thread.start()
        return thread

    def signal_state(self) -> dict[str, Any]:
        """Whether SIGINT is pending, and which of the server's threads block, ignore or catch it (/proc)."""
        assert self.process is not None
        bit = 1 << (signal.SIGINT - 1)

        def field(text: str, name: str) -> int:
            return int(re.search(rf"{name}:\s+([0-9a-f]+)", text).group(1), 16)

        try:
            main = Path(f"/proc/{self.process.pid}/status").read_text()
            tasks = [Path(t, "status").read_text() for t in Path(f"/proc/{self.process.pid}/task").iterdir()]
        except OSError:
            return {}
        return {"pending_for_the_process": bool(field(main, "ShdPnd") & bit),
                "pending_for_a_thread": sum(bool(field(t, "SigPnd") & bit) for t in tasks),
                "caught": bool(field(main, "SigCgt") & bit), "ignored": bool(field(main, "SigIgn") & bit),
                "blocked_by_the_main_thread": bool(field(main, "SigBlk") & bit),
                "threads_blocking_it": sum(bool(field(t, "SigBlk") & bit) for t in tasks), "threads": len(tasks)}

    def mapped(self) -> set[str]:
        """The shared libraries the server has loaded."""
        assert self.process is not None
        try:
            maps = Path(f"/proc/{self.process.pid}/maps").read_text()
        except OSError:
            return set()
        return {line.split()[-1] for line in maps.splitlines() if ".so" in line.rsplit("/", 1)[-1]}

    def reading(self) -> tuple[float, int, int, float] | None:
        """The server's RSS (MB), threads, open files and CPU seconds, from /proc."""
        assert self.process is not None
        pid = self.process.pid
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        cpu_s = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return rss_kb / 1024, threads, fds, cpu_s

    def stop(self, wait_s: float) -> dict[str, Any]:
        """Stop the server as Ctrl+C does. If it has not exited after `wait_s`, the signal state of its threads is
        read from /proc, and SIGABRT makes faulthandler (PYTHONFAULTHANDLER=1) write every thread's stack into the
        log; both are kept in the results."""
        self._sampling.set()
        assert self.process is not None
        log_at = self.log_path.stat().st_size
        before = self.reading()
        started = time.perf_counter()
        print(f"stopping the server (SIGINT to pid {self.process.pid})", file=sys.stderr, flush=True)
        self.process.send_signal(signal.SIGINT)
        answer: dict[str, Any] = {}
        try:
            code = self.process.wait(wait_s)
            how = "SIGINT"
        except subprocess.TimeoutExpired:
            answer["signals_while_stopping"] = self.signal_state()
            hung = self.reading()
            answer["cpu_s_while_stopping"] = round(hung[3] - before[3], 1) if hung and before else None
            answer["threads_while_stopping"] = hung[1] if hung else None
            self.process.send_signal(signal.SIGABRT)
            try:
                code = self.process.wait(30)
                how = f"SIGABRT after {wait_s:g} s"
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
                how = f"killed after {wait_s:g} s"
        time.sleep(0.5)  # the log reader's last lines
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        after = text[log_at:]
        answer |= {"exit_code": code, "stopped_by": how, "stop_s": round(time.perf_counter() - started, 1),
                   "log": {name: text.count(pattern) for name, pattern in self.LOG_PATTERNS.items()},
                   "log_lines": text.count("\n"), "log_lines_after_sigint": after.count("\n")}
        if how != "SIGINT":
            dump = after[after.find("Fatal Python error"):] if "Fatal Python error" in after else after[-6000:]
            answer["stacks"] = dump[:20000]
        return answer

    def sql(self, query: str) -> list[list[Any]]:
        """Rows of a read-only query on the data folder (the server stopped), through `firstline sql`."""
        result = self.firstline("sql", query, "--format", "json", extra={"FIRSTLINE_ANALYST_ROW_CAP": "1000000",
                                                                         "FIRSTLINE_ANALYST_MAX_RESULT_MB": "512",
                                                                         "FIRSTLINE_ANALYST_TIME_LIMIT_S": "120"})
        if result.returncode != 0:
            raise RuntimeError(f"firstline sql {query!r}: {result.stderr.strip()}")
        answer = json.loads(result.stdout)
        if answer.get("truncated"):
            raise RuntimeError(f"firstline sql {query!r}: truncated ({answer.get('truncated_reason')})")
        return answer["rows"]


# -- traffic ---------------------------------------------------------------------------------------------------------


@dataclass
class Context:
    base: str
    seed: int
    deadline: float
    started: float
    duration: float
    think: float
    recorder: Recorder
    ledger: Ledger
    source: FaultySource
    tokens: dict[str, str]
    openings: list[str]
    replies: dict[str, list[str]]
    stop: threading.Event = field(default_factory=threading.Event)

    def running(self) -> bool:
        return time.monotonic() < self.deadline and not self.stop.is_set()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def pause(self, rng: random.Random, low: float, high: float) -> None:
        self.stop.wait(max(0.0, min(rng.uniform(low, high) * self.think, self.deadline - time.monotonic())))


def load_texts() -> tuple[list[str], dict[str, list[str]]]:
    openings = [line.split("\t")[0] for line in OPENINGS.read_text(encoding="utf-8").splitlines()[1:]
                if line and not line.startswith("#") and not line.startswith("text\t")]
    replies: dict[str, list[str]] = defaultdict(list)
    for line in REPLIES.read_text(encoding="utf-8").splitlines()[1:]:
        situation, reply = line.split("\t")[:2]
        replies[situation].append(reply)
    return openings, dict(replies)


def chat_worker(ctx: Context, index: int) -> None:
    """Users one after another: each a browser or an integration, one or more conversations, then gone."""
    rng = random.Random(f"{ctx.seed}-chat-{index}")
    n = 0
    while ctx.running():
        n += 1
        kind = rng.choices(["browser", "vouched", "integration"], weights=[55, 35, 10])[0]
        if kind == "integration":
            client, owner = Client(ctx.base, ctx.recorder, token=ctx.tokens["bot"], cookies=False), "bot"
        else:
            client = Client(ctx.base, ctx.recorder)
            owner = f"anonymous-{index}-{n}"
            if kind == "vouched":
                user_id = f"u{index}-{rng.randrange(40)}"  # a pool per worker: a user comes back, never twice at once
                reply = client.call("POST", "/api/v1/identity", "POST /api/v1/identity",
                                    {"user_id": user_id, "user_hash": hmac.new(
                                        IDENTITY_SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()})
                if reply.status == 200:
                    owner = user_id
                if rng.random() < 0.5:
                    client.call("GET", "/api/v1/conversations", "GET /api/v1/conversations")
        ctx.ledger.count(f"users ({kind})")
        if kind != "integration" and rng.random() < 0.03:
            impatient(ctx, rng, client, owner)
        else:
            for _ in range(1 + (rng.random() < 0.3) + (rng.random() < 0.1)):
                if not ctx.running():
                    break
                if rng.random() < 0.1:
                    one_shot(ctx, rng, client, owner)
                else:
                    conversation(ctx, rng, client, owner, stream=kind != "integration" and rng.random() < 0.3)
                ctx.pause(rng, 0.5, 2.0)
        if kind != "integration" and rng.random() < 0.04:
            reply = client.call("DELETE", "/api/v1/history", "DELETE /api/v1/history")
            if reply.status == 200:
                ctx.ledger.forget(owner)
        ctx.pause(rng, 0.2, 1.0)


def conversation(ctx: Context, rng: random.Random, client: Client, owner: str, stream: bool) -> None:
    reply = client.call("POST", "/api/v1/conversations", "POST /api/v1/conversations", {})
    if reply.status != 201:
        return
    conversation_id = reply.json()["conversation_id"]
    ctx.ledger.conversation(conversation_id, owner, client)
    ctx.ledger.count("conversations")
    text = rng.choice(ctx.openings)
    for turn in range(7):
        if not ctx.running():
            return
        if rng.random() < 0.03:
            bad_turn(ctx, rng, client, conversation_id)
        exchange = send(ctx, client, conversation_id, text, stream)
        if exchange is None:
            return
        stage, choices = exchange.get("stage"), exchange.get("choices") or []
        ctx.pause(rng, 0.3, 2.5)
        if stage == "rating" and rng.random() < 0.3:
            rating = rng.randint(1, 5)
            answer = client.call("POST", f"/api/v1/conversations/{conversation_id}/feedback",
                                 "POST /api/v1/conversations/{id}/feedback",
                                 {"rating": rating, "comment": rng.choice(["", "quick!", "meh", "thanks a lot"])})
            if answer.status == 200:
                ctx.ledger.count("ratings")
            break
        if stage in SITUATION:
            if choices and rng.random() < 0.4:
                text = rng.choice(choices)["value"]  # a button
            else:
                text = rng.choice(ctx.replies[SITUATION[stage]])
        elif stage == "awaiting_decision" and rng.random() < 0.3:
            text = rng.choice(["any news?", "ok thanks", "how long will this take?"])
        elif stage == "open" and turn < 3 and rng.random() < 0.25:
            text = rng.choice(ctx.openings)  # another problem
        else:
            break
    if rng.random() < 0.3:  # the page reloaded
        client.call("GET", f"/api/v1/conversations/{conversation_id}/messages",
                    "GET /api/v1/conversations/{id}/messages")
    if rng.random() < 0.1 and ctx.ledger.decisions:
        decision = ctx.ledger.decisions[-1]  # most likely someone else's: the same 404 as for none
        client.call("GET", f"/api/v1/decisions/{decision}/trace", "GET /api/v1/decisions/{id}/trace (user)")


def send(ctx: Context, client: Client, conversation_id: str, text: str, stream: bool) -> dict[str, Any] | None:
    """One turn; the exchange when it was answered, else None (the text is in the ledger when it was accepted)."""
    path = f"/api/v1/conversations/{conversation_id}/messages"
    if not stream:
        reply = client.call("POST", path, "POST /api/v1/conversations/{id}/messages", {"text": text})
        exchange = reply.json() if reply.status == 200 else None
        status = reply.status
    else:
        reply = client.call("POST", path, "", {"text": text}, accept="text/event-stream", record=False)
        exchange, status = None, reply.status
        if reply.status == 200:
            for block in reply.body.decode("utf-8", "replace").split("\n\n"):
                event = re.search(r"^event: (\w+)$", block, re.M)
                data = re.search(r"^data: (.*)$", block, re.M)
                if event and data and event.group(1) == "turn":
                    exchange = json.loads(data.group(1))
                elif event and data and event.group(1) == "error":
                    code = json.loads(data.group(1)).get("error", {}).get("code", "error")
                    status = STATUS_BY_ERROR.get(code, 400)
                    ctx.ledger.count(f"stream error events: {code}")
        ctx.recorder.add("POST /api/v1/conversations/{id}/messages (stream)", status, reply.ms, reply.error)
    if exchange is not None:
        ctx.ledger.accepted(conversation_id, text, exchange.get("decision_id"))
    elif status == 429:
        ctx.ledger.refused(conversation_id, text)
    return exchange


def bad_turn(ctx: Context, rng: random.Random, client: Client, conversation_id: str) -> None:
    path, endpoint = f"/api/v1/conversations/{conversation_id}/messages", "POST /api/v1/conversations/{id}/messages"
    kind = rng.choice(["empty", "too_long", "not_json", "not_text"])
    if kind == "not_json":
        client.call("POST", path, endpoint + " (bad body)", raw=b"{text: hello")
    else:
        body = {"empty": {"text": "   "}, "too_long": {"text": "slow " * 900}, "not_text": {"text": 5}}[kind]
        client.call("POST", path, endpoint + " (bad body)", body)
    ctx.ledger.count("bad bodies sent")


def one_shot(ctx: Context, rng: random.Random, client: Client, owner: str) -> None:
    text = rng.choice(ctx.openings)
    explain = rng.random() < 0.3
    reply = client.call("POST", "/api/v1/messages", "POST /api/v1/messages", {"text": text, "explain": explain})
    if reply.status == 200:
        answer = reply.json()
        ctx.ledger.conversation(answer["conversation_id"], owner, client)
        ctx.ledger.accepted(answer["conversation_id"], text, answer.get("decision_id"))
        if rng.random() < 0.3 and answer.get("decision_id"):
            client.call("GET", f"/api/v1/decisions/{answer['decision_id']}/trace",
                        "GET /api/v1/decisions/{id}/trace (user)")


def impatient(ctx: Context, rng: random.Random, client: Client, owner: str) -> None:
    """A user who types faster than anyone is answered: meets the per-user limit (30 writes a minute)."""
    reply = client.call("POST", "/api/v1/conversations", "POST /api/v1/conversations", {})
    if reply.status != 201:
        return
    conversation_id = reply.json()["conversation_id"]
    ctx.ledger.conversation(conversation_id, owner, client)
    ctx.ledger.count("impatient users")
    for _ in range(36):
        if not ctx.running():
            return
        send(ctx, client, conversation_id, rng.choice(IMPATIENT), stream=False)


# -- Alertmanager ----------------------------------------------------------------------------------------------------


def fnv_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (prometheus/common model.LabelSet.Fingerprint), written here from
    its definition rather than imported, so the receiver's derivation is checked against an independent copy."""
    value = 14695981039346656037
    for name in sorted(labels, key=lambda n: n.encode()):
        for byte in (*name.encode(), 0xFF, *labels[name].encode(), 0xFF):
            value = ((value ^ byte) * 1099511628211) % 2**64
    return f"{value:016x}"


ALERT_NAMES = {"latency_p95_ms": "HighLatency", "error_rate": "ErrorRateHigh", "memory_pct": "MemoryWillRunOut",
               "cpu_pct": "CPUHigh", "slow_queries": "SlowQueries", "pool_used_pct": "PoolExhausted",
               "cache_hit_ratio": "CacheHitRatioLow", "queue_depth": "QueueBacklog", "failed_jobs": "JobsFailing"}


def now_rfc3339(offset_ms: int = 0) -> str:
    moment = datetime.fromtimestamp(time.time() + offset_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_alert(rng: random.Random, series: Series, status: str = "firing", starts_at: str | None = None,
               instance: str | None = None, fingerprint: str | None = "auto", pad: int = 0) -> dict[str, Any]:
    labels = {"alertname": ALERT_NAMES.get(series.metric, "Trouble"), "service": series.service,
              "metric": series.metric, "severity": rng.choice(["warning", "critical"]),
              "instance": instance or f"{series.service}-{rng.randint(1, 3)}"}
    alert: dict[str, Any] = {
        "status": status, "labels": labels,
        "annotations": {"summary": f"{series.metric} on {series.service} past {series.limit:g}",
                        "description": "predicted to cross its limit within 30 minutes" + " ." * pad},
        "startsAt": starts_at or now_rfc3339(), "endsAt": now_rfc3339() if status == "resolved" else
        "0001-01-01T00:00:00Z", "generatorURL": f"http://prometheus:9090/graph?g0.expr=firstline_{series.metric}"}
    if fingerprint == "auto":
        alert["fingerprint"] = fnv_fingerprint(labels)
    elif fingerprint is not None:
        alert["fingerprint"] = fingerprint
    return alert


def notification(alerts: list[dict[str, Any]], truncated: int = 0) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    name = alerts[0]["labels"]["alertname"]
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{name}"}}', "truncatedAlerts": truncated,
            "status": status, "receiver": "firstline", "groupLabels": {"alertname": name}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": alerts}


def alert_worker(ctx: Context) -> None:
    rng = random.Random(f"{ctx.seed}-alerts")
    operator = Client(ctx.base, ctx.recorder, token=ctx.tokens["operator"], cookies=False)
    series = ctx.source.series
    firing: list[dict[str, Any]] = []  # sent firing, not yet resolved
    sent: deque[dict[str, Any]] = deque(maxlen=20)  # accepted bodies, to repeat (Alertmanager retries)
    once = {"storm": 0.45, "large": 0.6, "oversized": 0.7}
    while ctx.running():
        share = ctx.elapsed() / ctx.duration
        due = [kind for kind, at in once.items() if share >= at]
        if due:
            kind = due[0]
            del once[kind]
        else:
            kind = rng.choices(["firing", "resolved", "repeat", "empty_fingerprint", "malformed_json",
                                "schema_error", "lone_surrogate", "wrong_content_type", "no_token", "wrong_role"],
                               weights=[50, 15, 8, 6, 4, 4, 2, 2, 2, 2])[0]
        if (kind == "resolved" and not firing) or (kind == "repeat" and not sent):
            kind = "firing"
        if kind == "storm":
            storm = [s for s in series if s.service in ("web", "api", "auth", "queue", "database")]
            for i in range(5):
                alerts = [make_alert(rng, rng.choice(storm), instance=f"storm-{i}-{j}") for j in range(120)]
                post_alerts(ctx, operator, "storm", notification(alerts, truncated=120 if i == 2 else 0))
                ctx.stop.wait(2)
            continue
        if kind == "large":
            alerts = [make_alert(rng, rng.choice(series), instance=f"large-{j}", pad=300) for j in range(1200)]
            post_alerts(ctx, operator, kind, notification(alerts))
        elif kind == "oversized":
            alerts = [make_alert(rng, rng.choice(series), instance=f"huge-{j}", pad=5000) for j in range(1100)]
            post_alerts(ctx, operator, kind, notification(alerts))
        elif kind == "firing":
            alerts = [make_alert(rng, rng.choice(series)) for _ in range(rng.randint(1, 4))]
            body = notification(alerts)
            if post_alerts(ctx, operator, kind, body) == 200:
                firing.extend(alerts)
                del firing[:-200]
                sent.append(body)
        elif kind == "resolved":
            chosen = [firing.pop(rng.randrange(len(firing))) for _ in range(min(len(firing), rng.randint(1, 3)))]
            body = notification([{**a, "status": "resolved", "endsAt": now_rfc3339()} for a in chosen])
            if post_alerts(ctx, operator, kind, body) == 200:
                sent.append(body)
        elif kind == "repeat":
            post_alerts(ctx, operator, kind, rng.choice(list(sent)))
        elif kind == "empty_fingerprint":
            body = notification([make_alert(rng, rng.choice(series), fingerprint=rng.choice(["", None]))
                                 for _ in range(rng.randint(1, 3))])
            if post_alerts(ctx, operator, kind, body) == 200:
                sent.append(body)
        elif kind == "malformed_json":
            text = json.dumps(notification([make_alert(rng, rng.choice(series))]))
            post_alerts(ctx, operator, kind, None, raw=text[: rng.randint(10, len(text) - 5)].encode())
        elif kind == "schema_error":
            body = notification([make_alert(rng, rng.choice(series))])
            broken = rng.choice(["startsAt", "version", "alerts", "status"])
            if broken == "startsAt":
                del body["alerts"][0]["startsAt"]
            elif broken == "version":
                body["version"] = "3"
            elif broken == "alerts":
                body["alerts"] = []
            else:
                body["alerts"][0]["status"] = "pending"
            post_alerts(ctx, operator, kind, body)
        elif kind == "lone_surrogate":
            text = json.dumps(notification([make_alert(rng, rng.choice(series))]))
            broken = text.replace('"severity": "', '"severity": "\\ud800', 1)
            post_alerts(ctx, operator, kind, None, raw=broken.encode())
        elif kind == "wrong_content_type":
            post_alerts(ctx, operator, kind, None, raw=json.dumps(notification([make_alert(rng, rng.choice(series))]))
                        .encode(), content_type="text/plain")
        elif kind in ("no_token", "wrong_role"):
            post_alerts(ctx, operator, kind, notification([make_alert(rng, rng.choice(series))]),
                        token=None if kind == "no_token" else ctx.tokens["curator"])
        ctx.pause(rng, 1.5, 5.0)


def post_alerts(ctx: Context, client: Client, kind: str, body: dict[str, Any] | None, raw: bytes | None = None,
                content_type: str = "application/json", token: str | bool | None = True) -> int:
    data = raw if raw is not None else json.dumps(body).encode()
    reply = client.call("POST", ALERTMANAGER, f"POST {ALERTMANAGER}", raw=data, content_type=content_type,
                        token=token)
    ledger = ctx.ledger
    with ledger.lock:
        ledger.alert_posts.append((kind, reply.status))
        if 200 <= reply.status < 300 and body is not None:
            alerts = body["alerts"]
            ordered = [a for a in alerts if a["status"] == "firing"] + [a for a in alerts if a["status"] != "firing"]
            for alert in ordered[:STORED_PER_NOTIFICATION]:
                fingerprint = alert.get("fingerprint") or fnv_fingerprint(alert["labels"])
                ledger.alert_keys.add((fingerprint, alert["startsAt"], alert["status"]))
            ledger.notifications_accepted += 1
            ledger.summarised_expected += max(0, len(alerts) - STORED_PER_NOTIFICATION)
            ledger.truncated_sent += body.get("truncatedAlerts", 0)
            ledger.counts["alerts accepted (in 2xx notifications)"] += len(alerts)
        elif reply.status >= 400:
            ledger.refusals.append({"kind": kind, "status": reply.status, "bytes": len(data),
                                    "dead_letter": reply.headers.get("X-Firstline-Dead-Letter")})
    return reply.status


# -- Prometheus, a load balancer and the operator ----------------------------------------------------------------------


def scrape_worker(ctx: Context) -> None:
    """GET /metrics every 5 s as Prometheus would; switches the source's outages (15 s every 120 s, each of one kind,
    the kinds in turn) between reads, so a normal read never meets one, and probes /metrics once per outage."""
    rng = random.Random(f"{ctx.seed}-prometheus")
    kinds = list(FaultySource.OUTAGES)
    rng.shuffle(kinds)
    operator = Client(ctx.base, ctx.recorder, token=ctx.tokens["operator"], cookies=False)
    anonymous = Client(ctx.base, ctx.recorder, cookies=False)
    next_outage, outage_until, last_health, last_letters = min(90.0, ctx.duration * 0.3), -1.0, -1e9, -1e9
    while ctx.running():
        now = ctx.elapsed()
        if not ctx.source.outage and now >= next_outage:
            kind = kinds[len(ctx.ledger.outage_probes) % len(kinds)]
            with ctx.source.lock:
                ctx.source.outage = kind
            outage_until, next_outage = now + 15, next_outage + 120
            ctx.stop.wait(1)
            reply = operator.call("GET", "/metrics", "GET /metrics (telemetry source down)")
            error = (reply.json() or {}).get("error", {}) if reply.status >= 400 else {}
            ctx.ledger.outage_probes.append({"outage": kind, "status": reply.status, "code": error.get("code"),
                                             "message": str(error.get("message", ""))[:200]})
        elif ctx.source.outage and now >= outage_until:
            with ctx.source.lock:
                ctx.source.outage = None
        elif not ctx.source.outage:
            operator.call("GET", "/metrics", "GET /metrics")
        if now - last_health >= 15:
            anonymous.call("GET", "/api/v1/health", "GET /api/v1/health")
            last_health = now
        if now - last_letters >= 60:
            operator.call("GET", "/api/v1/alerts/dead-letters?limit=50", "GET /api/v1/alerts/dead-letters")
            last_letters = now
        ctx.pause(rng, 4.5, 5.5)
    with ctx.source.lock:
        ctx.source.outage = None


def curator_worker(ctx: Context) -> None:
    rng = random.Random(f"{ctx.seed}-curator")
    curator = Client(ctx.base, ctx.recorder, token=ctx.tokens["curator"], cookies=False)
    changed: set[str] = set()
    while ctx.running():
        action = rng.choices(["rules", "rule", "playbooks", "unmatched", "trace"], weights=[3, 3, 2, 2, 3])[0]
        if action in ("rules", "rule"):
            status = rng.choice(["", "proposed", "shadow", "active"])
            reply = curator.call("GET", "/api/v1/learned-rules" + (f"?status={status}" if status else ""),
                                 "GET /api/v1/learned-rules")
            rules = (reply.json() or {}).get("rules", []) if reply.status == 200 else []
            if action == "rule" and rules:
                rule = rng.choice(rules)
                name = rule.get("name")
                curator.call("GET", f"/api/v1/learned-rules/{name}", "GET /api/v1/learned-rules/{name}")
                if rule.get("version", 1) > 1:
                    curator.call("GET", f"/api/v1/learned-rules/{name}/diff?old=1&new={rule['version']}",
                                 "GET /api/v1/learned-rules/{name}/diff")
                if name not in changed and rule.get("status") in ("proposed", "shadow") and rng.random() < 0.3:
                    verb = rng.choice(["approve", "reject"])
                    answer = curator.call("POST", f"/api/v1/learned-rules/{name}/{verb}",
                                          "POST /api/v1/learned-rules/{name}/{verb}",
                                          {"reason": f"soak curator: {verb}"})
                    if answer.status == 200:
                        changed.add(name)
                        ctx.ledger.count(f"learned rules {'approved' if verb == 'approve' else 'rejected'} by "
                                         "the curator")
        elif action == "playbooks":
            curator.call("GET", "/api/v1/playbooks", "GET /api/v1/playbooks")
        elif action == "unmatched":
            curator.call("GET", f"/api/v1/unmatched?limit={rng.choice([10, 50, 200])}", "GET /api/v1/unmatched")
        elif ctx.ledger.decisions:
            decision = rng.choice(list(ctx.ledger.decisions))
            curator.call("GET", f"/api/v1/decisions/{decision}/trace", "GET /api/v1/decisions/{id}/trace (curator)")
        ctx.pause(rng, 2.0, 6.0)


def guarded(work, ctx: Context, *args) -> None:
    """Run a worker; a bug of this script is recorded, and does not pass for a server failure."""
    try:
        work(ctx, *args)
    except Exception as error:  # noqa: BLE001 - reported in the results
        import traceback

        ctx.ledger.bench_errors.append(f"{work.__name__}: {type(error).__name__}: {error}\n{traceback.format_exc()}")


# -- after the traffic: read back and check --------------------------------------------------------------------------


def read_back(ctx: Context) -> dict[str, Any]:
    """Every conversation read back through the API as its user: its accepted user messages, in order."""
    lost, extra, gone_but_deleted, checked = [], 0, 0, 0
    with ctx.ledger.lock:
        items = list(ctx.ledger.conversations.items())
        owners = dict(ctx.ledger.owners)

    def one(item: tuple[str, Conversation]) -> tuple[str, list[str], int, str]:
        conversation_id, conv = item
        reply = owners[conv.owner].call("GET", f"/api/v1/conversations/{conversation_id}/messages",
                                        "GET /api/v1/conversations/{id}/messages (read-back)")
        if conv.deleted:
            return conversation_id, [], 0, "deleted" if reply.status == 404 else f"deleted but {reply.status}"
        if reply.status != 200:
            return conversation_id, list(conv.texts), 0, f"status {reply.status}"
        stored = [m["text"] for m in reply.json()["messages"] if m["role"] == "user"]
        missing, at = [], 0
        for text in conv.texts:  # every accepted text, in order
            try:
                at = stored.index(text, at) + 1
            except ValueError:
                missing.append(text)
        return conversation_id, missing, len(stored) - (len(conv.texts) - len(missing)), "ok"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, items))
    for conversation_id, missing, more, how in results:
        if how == "deleted":
            gone_but_deleted += 1
            continue
        checked += 1
        extra += more
        if missing or how != "ok":
            lost.append({"conversation": conversation_id, "missing": missing[:5], "how": how})
    return {"conversations": len(items), "read": checked, "deleted_and_gone": gone_but_deleted,
            "lost": lost[:20], "conversations_with_loss": len(lost),
            "messages_lost": sum(len(x["missing"]) for x in lost), "stored_not_accepted": extra}


def check_database(server: Server, ledger: Ledger) -> dict[str, Any]:
    """The DuckDB file after the server stopped, through `firstline sql`."""
    rows = server.sql(AUDIT_QUERIES["user_messages"])
    stored: dict[str, Counter[str]] = defaultdict(Counter)
    for conversation_id, text in rows:
        stored[conversation_id][text] += 1
    lost, deleted_left = 0, 0
    for conversation_id, conv in ledger.conversations.items():
        if conv.deleted:
            deleted_left += sum(stored.get(conversation_id, Counter()).values())
            continue
        lost += sum((Counter(conv.texts) - stored.get(conversation_id, Counter())).values())
    alerts = {tuple(r) for r in server.sql(AUDIT_QUERIES["alert_keys"])}
    missing_alerts = ledger.alert_keys - alerts
    notifications = server.sql(AUDIT_QUERIES["notification_figures"])[0]
    tables = {r[0] for r in server.sql(AUDIT_QUERIES["tables"])}
    dead = {}
    if "dead_letters" in tables:
        dead = {r[0]: (r[1], r[2]) for r in server.sql(AUDIT_QUERIES["dead_letters"])}
    refusals_missing = [r for r in ledger.refusals if not r["dead_letter"] or r["dead_letter"] not in dead
                        or dead[r["dead_letter"]][0] != r["status"]]
    figures: dict[str, Any] = {
        "user_messages_stored": len(rows), "messages_lost": lost, "deleted_users_messages_left": deleted_left,
        "alerts_stored": len(alerts), "alert_keys_accepted": len(ledger.alert_keys),
        "alerts_missing": len(missing_alerts), "alerts_missing_examples": sorted(missing_alerts)[:5],
        "notifications_stored": int(notifications[0]), "notifications_accepted": ledger.notifications_accepted,
        "summarised_stored": int(notifications[1]), "summarised_expected": ledger.summarised_expected,
        "truncated_stored": int(notifications[2]), "truncated_sent": ledger.truncated_sent,
        "derived_fingerprints": int(notifications[3]),
        "dead_letter_table": "dead_letters" in tables, "dead_letters": len(dead), "refusals": len(ledger.refusals),
        "refusals_not_kept": refusals_missing[:10], "refusals_not_kept_count": len(refusals_missing),
    }
    for name, query in AUDIT_COUNTS.items():
        figures[name] = int(server.sql(query)[0][0])
    figures["remediations"] = {f"{r[0]} {r[1]}": int(r[2]) for r in server.sql(
        AUDIT_QUERIES["remediations_by_requester"])}
    figures["signals"] = {f"{r[0]} {r[1]}": int(r[2]) for r in server.sql(
        AUDIT_QUERIES["signals_by_kind"])}
    if "telemetry_problems" in tables:
        figures["telemetry_problems"] = {r[0]: int(r[1]) for r in server.sql(
            AUDIT_QUERIES["telemetry_problems_by_reason"])}
    return figures


def memory_figures(samples: list[tuple[float, float, int, int, float]], warmup_s: float,
                   duration: float) -> dict[str, Any]:
    after = [s for s in samples if s[0] >= warmup_s] or samples[-1:]
    start, end = after[0], after[-1]
    half = [s for s in after if s[0] >= duration / 2]
    slope = None
    if len(half) >= 3:
        xs, ys = [s[0] / 60 for s in half], [s[1] for s in half]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    bound = start[1] * RSS_BOUND[0] + RSS_BOUND[1]
    return {"samples": len(samples), "warmup_s": warmup_s, "first_mb": round(samples[0][1], 1),
            "start_mb": round(start[1], 1), "end_mb": round(end[1], 1), "max_mb": round(max(s[1] for s in samples), 1),
            "second_half_slope_mb_per_min": round(slope, 2) if slope is not None else None,
            "bound_mb": round(bound, 1), "threads_start": start[2], "threads_end": end[2], "threads_max":
            max(s[2] for s in samples), "fds_start": start[3], "fds_end": end[3], "fds_max": max(s[3] for s in samples),
            "cpu_s": round(end[4] - start[4], 1),
            "rss_series": [[round(s[0]), round(s[1], 1)] for s in samples[::5]]}  # every 10 s: t, MB


# -- the run ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of traffic")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chat-workers", type=int, default=4, help="threads sending chat users' turns")
    parser.add_argument("--think", type=float, default=1.0, help="multiplies the users' pauses (0.3-2.5 s a turn)")
    parser.add_argument("--index-from", type=Path, default=ROOT / "var",
                        help="a data folder whose index/ and cache/ are copied in (else the index is built)")
    parser.add_argument("--stop-wait", type=float, default=60.0,
                        help="seconds the server has to exit after SIGINT before its stacks are dumped (SIGABRT)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON object to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder (its path is printed)")
    args = parser.parse_args()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell without job control (`... &`), which ignores SIGINT; a child inherits
        # that, and a server ignoring SIGINT cannot be stopped as Ctrl+C would. A handler here is reset at exec.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="firstline-soak-"))
    source = FaultySource(args.seed).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    settings = {
        "FIRSTLINE_DATA_DIR": str(folder), "FIRSTLINE_HOST": "127.0.0.1", "FIRSTLINE_PORT": "0",
        "FIRSTLINE_TELEMETRY_SOURCE": "scrape", "FIRSTLINE_SCRAPE_URL": source.url,
        "FIRSTLINE_SCRAPE_TIMEOUT_S": str(SCRAPE_TIMEOUT_S), "FIRSTLINE_MONITOR_INTERVAL_S": str(MONITOR_INTERVAL_S),
        # Every simulated user comes from 127.0.0.1: the per-address allowance would be theirs together.
        "FIRSTLINE_RATE_LIMIT_PER_ADDRESS": "1000000", "FIRSTLINE_IDENTITY_SECRET": IDENTITY_SECRET,
    }
    env.update(settings, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    server = Server(folder, env)
    shown = {k: v for k, v in settings.items() if k not in ("FIRSTLINE_DATA_DIR", "FIRSTLINE_SCRAPE_URL")}
    results: dict[str, Any] = {"duration_s": args.duration, "seed": args.seed, "chat_workers": args.chat_workers,
                               "think": args.think, "settings": shown}
    try:
        setup = time.perf_counter()
        copied = []
        for part in ("index", "cache"):
            if (args.index_from / part).is_dir():
                shutil.copytree(args.index_from / part, folder / part)
                copied.append(part)
        built = server.firstline("index", "build")
        if built.returncode != 0:
            raise SystemExit(f"firstline index build failed: {built.stderr[-2000:]}")
        results["index"] = {"copied_from": str(args.index_from) if copied else None, "parts": copied,
                            "build_s": round(time.perf_counter() - setup, 1),
                            "rebuilt": "index built" in built.stdout}
        tokens = {}
        for name, user, role in (("operator", "prometheus", "operator"), ("curator", "cora", "curator"),
                                 ("bot", "helpdesk-bot", "user")):
            made = server.firstline("token", "create", "--user", user, "--role", role)
            if made.returncode != 0:
                raise SystemExit(f"firstline token create: {made.stderr}")
            tokens[name] = made.stdout.split()[0]
        results["start_s"] = round(server.start(), 1)
        print(f"server on {server.url} (pid {server.process.pid}), data folder {folder}", file=sys.stderr)
        recorder, ledger = Recorder(), Ledger()
        openings, replies = load_texts()
        traffic_started = time.monotonic()
        ctx = Context(server.url, args.seed, traffic_started + args.duration, traffic_started, args.duration,
                      args.think, recorder, ledger, source, tokens, openings, replies)
        recorder.started = traffic_started
        server.sample_memory(2.0, traffic_started)
        warmup_s = max(10.0, min(60.0, args.duration / 10))
        with ThreadPoolExecutor(max_workers=args.chat_workers + 3, thread_name_prefix="soak") as pool:
            futures = [pool.submit(guarded, chat_worker, ctx, i) for i in range(args.chat_workers)]
            futures += [pool.submit(guarded, work, ctx) for work in (alert_worker, scrape_worker, curator_worker)]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                ctx.stop.set()
                raise
        traffic_s = time.monotonic() - traffic_started
        last = server.reading()
        if last:
            server.samples.append((time.monotonic() - traffic_started, *last))
        results["traffic_s"] = round(traffic_s, 1)
        results["memory"] = memory_figures(server.samples, warmup_s, args.duration)
        results["libraries_loaded_during_traffic"] = server.libraries
        results["machine"] = {"cores": os.cpu_count(), "load_1min_median": statistics.median(server.load),
                              "load_1min_max": max(server.load)}
        results["read_back"] = read_back(ctx)
        results["requests"] = recorder.summary()
        results["server"] = server.stop(args.stop_wait)
        source.stop()
        results["database"] = check_database(server, ledger)
        results["chat"] = dict(sorted(ledger.counts.items()))
        results["alerts"] = {kind: dict(sorted(Counter(str(s) for k, s in ledger.alert_posts if k == kind).items()))
                             for kind in sorted({k for k, _ in ledger.alert_posts})}
        results["scrape_source"] = dict(sorted(source.served.items()))
        results["metrics_during_outages"] = ledger.outage_probes
        results["transport_errors"] = recorder.transport_errors[:20]
        results["bench_errors"] = ledger.bench_errors
        results["checks"] = checks(results, ledger)
        results["passed"] = all(c["passed"] for c in results["checks"] if c["passed"] is not None)
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    report(results)
    if args.keep:
        print(f"data folder kept: {folder}")
    text = json.dumps(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    sys.exit(0 if results["passed"] else 1)


def checks(results: dict[str, Any], ledger: Ledger) -> list[dict[str, Any]]:
    by_endpoint = results["requests"]["by_endpoint"]
    outage_label = "GET /metrics (telemetry source down)"
    fives = {ep: {s: n for s, n in row["by_status"].items() if s.startswith("5")}
             for ep, row in by_endpoint.items() if ep != outage_label}
    fives = {ep: s for ep, s in fives.items() if s}
    transport = sum(row["by_status"].get("0", 0) for row in by_endpoint.values())
    memory, back, db = results["memory"], results["read_back"], results["database"]
    wrong = Counter((k, s) for k, s in ledger.alert_posts if ALERT_EXPECTED.get(k) != s)
    return [
        {"name": "zero 5xx", "passed": not fives,
         "detail": "none" if not fives else json.dumps(fives)},
        {"name": "no dropped connection", "passed": transport == 0,
         "detail": f"{transport} requests without an answer"},
        {"name": f"memory: end RSS <= start x {RSS_BOUND[0]} + {RSS_BOUND[1]:g} MB",
         "passed": memory["end_mb"] <= memory["bound_mb"],
         "detail": f"start {memory['start_mb']} MB, end {memory['end_mb']} MB, bound {memory['bound_mb']} MB"},
        {"name": "no lost accepted message (API read-back)",
         "passed": back["messages_lost"] == 0 and back["conversations_with_loss"] == 0,
         "detail": f"{back['messages_lost']} lost in {back['conversations_with_loss']} of {back['read']} "
                   "conversations"},
        {"name": "no lost accepted message (DuckDB file)", "passed": db["messages_lost"] == 0,
         "detail": f"{db['messages_lost']} lost; {db['deleted_users_messages_left']} left of deleted users"},
        {"name": "deleted histories are gone", "passed": db["deleted_users_messages_left"] == 0,
         "detail": f"{back['deleted_and_gone']} conversations 404, {db['deleted_users_messages_left']} messages left"},
        {"name": "no lost accepted alert", "passed": db["alerts_missing"] == 0
         and db["notifications_stored"] == db["notifications_accepted"]
         and db["summarised_stored"] == db["summarised_expected"],
         "detail": f"{db['alerts_missing']} of {db['alert_keys_accepted']} missing; notifications "
                   f"{db['notifications_stored']} stored / {db['notifications_accepted']} accepted; summarised "
                   f"{db['summarised_stored']} / {db['summarised_expected']}"},
        {"name": "every refused notification is a dead letter",
         "passed": db["refusals_not_kept_count"] == 0 if db["dead_letter_table"] else None,
         "detail": (f"{db['refusals'] - db['refusals_not_kept_count']} of {db['refusals']} kept"
                    if db["dead_letter_table"] else "not checked: no dead_letters table")},
        {"name": "the receiver answers each kind as documented", "passed": not wrong,
         "detail": "yes" if not wrong else "; ".join(f"{k}: {s} x{n}" for (k, s), n in sorted(wrong.items()))},
        {"name": "the server's log has no traceback", "passed": not results["server"]["log"]["tracebacks"],
         "detail": f"{results['server']['log']['tracebacks']} tracebacks, "
                   f"{results['server']['log']['unhandled errors']} unhandled errors"},
        {"name": "the server stops cleanly on SIGINT", "passed": results["server"]["exit_code"] == 0
         and results["server"]["stopped_by"] == "SIGINT",
         "detail": f"exit {results['server']['exit_code']} ({results['server']['stopped_by']}) in "
                   f"{results['server']['stop_s']} s"},
        {"name": "no error in this script", "passed": not ledger.bench_errors,
         "detail": f"{len(ledger.bench_errors)} errors"},
    ]


def report(results: dict[str, Any]) -> None:
    requests = results.get("requests")
    if not requests:
        return
    print(f"soak: {results['traffic_s']} s of traffic, seed {results['seed']}, {results['chat_workers']} chat workers; "
          f"index {results['index']['build_s']} s ({'rebuilt' if results['index']['rebuilt'] else 'reused'}), "
          f"server up in {results['start_s']} s; machine: {results['machine']['cores']} cores, 1-min load median "
          f"{results['machine']['load_1min_median']}, max {results['machine']['load_1min_max']}")
    print(f"{'endpoint':<60}{'requests':>9}  {'p50 ms':>8}{'p95 ms':>9}  statuses")
    for endpoint, row in requests["by_endpoint"].items():
        statuses = " ".join(f"{s}:{n}" for s, n in row["by_status"].items())
        print(f"{endpoint:<60}{row['requests']:>9}  {row['p50_ms'] or '-':>8}{row['p95_ms'] or '-':>9}  {statuses}")
    print(f"{'all':<60}{requests['total']:>9}  {'':>17}  "
          + " ".join(f"{s}:{n}" for s, n in requests["by_status"].items()))
    m = results["memory"]
    print(f"server RSS: first {m['first_mb']} MB, start (after {m['warmup_s']:g} s) {m['start_mb']} MB, end "
          f"{m['end_mb']} MB, max {m['max_mb']} MB, second-half slope {m['second_half_slope_mb_per_min']} MB/min, "
          f"bound {m['bound_mb']} MB; threads {m['threads_start']} -> {m['threads_end']} (max {m['threads_max']}), "
          f"open files {m['fds_start']} -> {m['fds_end']} (max {m['fds_max']}), CPU {m['cpu_s']} s")
    print("chat: " + ", ".join(f"{k} {v}" for k, v in results["chat"].items()))
    print("alerts by kind: " + "; ".join(f"{k} {v}" for k, v in results["alerts"].items()))
    print("scrape source: " + ", ".join(f"{k} {v}" for k, v in results["scrape_source"].items()))
    print("GET /metrics while the source is down: " + "; ".join(
        f"{p['outage']} {p['status']} {p['code'] or ''}".strip() for p in results["metrics_during_outages"]))
    db = results["database"]
    print(f"store: {db['user_messages_stored']} user messages, {db['decisions']} decisions, {db['alerts_stored']} "
          f"alerts, {db['notifications_stored']} notifications ({db['summarised_stored']} summarised, "
          f"{db['truncated_stored']} truncated, {db['derived_fingerprints']} fingerprints derived), "
          f"{db['dead_letters']} dead letters, {db['incidents']} incidents ({db['storm_handoffs']} with a hand-off), "
          f"{db['handoffs']} hand-offs, {db['escalations']} escalations, {db['learned_rules']} learned rules")
    print("remediations: " + ", ".join(f"{k} {v}" for k, v in db["remediations"].items()))
    if "telemetry_problems" in db:
        print("telemetry problems stored: " + ", ".join(f"{k} {v}" for k, v in db["telemetry_problems"].items()))
    print("server: " + json.dumps({k: v for k, v in results["server"].items() if k != "stacks"}))
    if "stacks" in results["server"]:
        print("the server's threads when it would not stop:\n" + "\n".join(
            results["server"]["stacks"].splitlines()[:60]))
    for check in results["checks"]:
        mark = {True: "PASS", False: "FAIL", None: "----"}[check["passed"]]
        print(f"  {mark}  {check['name']}: {check['detail']}")
    for error in results["bench_errors"]:
        print(f"script error: {error}")
    print("passed" if results["passed"] else "FAILED")


if __name__ == "__main__":
    main()
