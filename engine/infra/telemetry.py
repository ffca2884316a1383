"""Telemetry in: one checked snapshot shape, from the simulated infrastructure or a Prometheus text-format scrape.

The sources live here (`TelemetrySource`, `SimulationSource`, `ScrapeSource`); what they are built from lives
beside them, each module importing only the ones above it in this list:

- engine/infra/samples.py: the `Snapshot` every source yields, and the checks against the metric declarations
  every sample goes through (`checked`, `refusal`, `pick`; a dropped sample is a `TelemetryProblem`);
- engine/infra/rates.py: counters as rates and histograms at a quantile, as Prometheus computes them;
- engine/infra/prometheus_text.py: the Prometheus text format, written (`exposition`) and read line by line
  (`parse_exposition`, `read_exposition`).

The names the rest of Firstline imports from here are re-exported, so `engine.infra.telemetry` stays the door.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Protocol

from core.errors import TelemetryError
from core.redaction import redacted_url, scrubbed, split_credentials
from engine.infra.prometheus_text import (
    CONTENT_TYPE,
    MAX_PROBLEMS,
    MAX_SCRAPE_BYTES,
    PREFIX,
    exposition,
    parse_exposition,
    read_exposition,
)
from engine.infra.rates import CounterRates, histogram_quantile
from engine.infra.samples import ProblemReason, Snapshot, TelemetryProblem, checked, pick, refusal
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import VERSION_METRIC, Topology

__all__ = ["CONTENT_TYPE", "MAX_PROBLEMS", "MAX_SCRAPE_BYTES", "PREFIX", "VERSION_METRIC", "CounterRates",
           "ProblemReason", "ScrapeSource", "SimulationSource", "Snapshot", "TelemetryProblem", "TelemetrySource",
           "checked", "exposition", "histogram_quantile", "parse_exposition", "pick", "read_exposition", "refusal"]

READ_CHUNK_BYTES = 64 * 1024  # a scrape's body is read in pieces of at most this, the deadline checked between


class TelemetrySource(Protocol):
    """Anything that can be read for a checked snapshot now. Raises TelemetryError when it cannot."""

    name: str

    def read(self) -> Snapshot: ...


# -- sources ------------------------------------------------------------------------------------------


class SimulationSource:
    """The built-in simulated infrastructure as a telemetry source."""

    name = "simulation"

    def __init__(self, infrastructure: SimulatedInfrastructure) -> None:
        self.infrastructure = infrastructure

    def read(self) -> Snapshot:
        infrastructure = self.infrastructure
        return checked(Snapshot(infrastructure.clock(), infrastructure.observe(), infrastructure.versions()),
                       infrastructure.topology)


class ScrapeSource:
    """A Prometheus text-format `/metrics` URL, read over HTTP and parsed line by line. A `user:password@` in the
    URL is sent as HTTP Basic auth; the URL is shown (`shown`) without its password and query-string values."""

    name = "scrape"

    def __init__(self, url: str, topology: Topology, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.time, max_bytes: int = MAX_SCRAPE_BYTES) -> None:
        self.url = url
        self.shown = redacted_url(url)  # how the URL reads in errors, logs and 503 bodies: no password, no tokens
        self.request_url, self.authorization = split_credentials(url)  # user:password@ goes as Basic auth
        self.topology = topology
        self.timeout_s = timeout_s
        self.clock = clock
        self.max_bytes = max_bytes
        self.rates = CounterRates()  # the counters' recent readings, for their rates

    def read(self) -> Snapshot:
        """One scrape; TelemetryError when it fails, takes longer than `timeout_s` in all (a body trickling in a
        byte at a time is cut off too, at most one more socket wait later), or ends before its Content-Length."""
        deadline = time.monotonic() + self.timeout_s
        try:
            request = urllib.request.Request(self.request_url)
            if self.authorization:  # unredirected: not sent on to where a redirect points
                request.add_unredirected_header("Authorization", self.authorization)
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = _body(response, deadline, self.max_bytes + 1)
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
            if isinstance(error, urllib.error.HTTPError):
                error.close()  # it holds the answer's connection open (an unclosed socket per failed scrape)
            why = scrubbed(str(error), self.url) or type(error).__name__  # urllib may echo the URL
            raise TelemetryError(f"cannot scrape {self.shown}: {why}", source=self.shown) from None
        return parse_exposition(body, self.topology, self.clock(), self.shown, self.rates, self.max_bytes)


def _body(response: http.client.HTTPResponse, deadline: float, limit: int) -> bytes:
    """Up to `limit` bytes of the response's body, read as they come: TimeoutError once `deadline` (monotonic s)
    has passed, IncompleteRead when the connection closes before the announced Content-Length."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the body was still coming in after the scrape timeout ({size:,} bytes read)")
        chunk = response.read1(min(READ_CHUNK_BYTES, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    if size < limit and response.length:  # bytes still owed: the sender stopped part way
        raise http.client.IncompleteRead(body, response.length)
    return body
