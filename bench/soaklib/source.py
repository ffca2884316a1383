"""The telemetry source with faults: a Prometheus text-format `/metrics` of the tenant's services served on
loopback, with faults mixed into every read, a fault episode every 100 s and outages switched on from outside."""

from __future__ import annotations

import http.server
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from bench.soaklib.server import SCRAPE_TIMEOUT_S
from core.settings import PROJECT_ROOT
from core.yamlfile import load_mapping  # the one safe YAML loader

INFRASTRUCTURE = PROJECT_ROOT / "data/infrastructure.yaml"


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

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        source = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                source.respond(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        faults: list[str]
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
    def _send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
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

