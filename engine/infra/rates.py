"""Counters and histograms turned into readings, as Prometheus computes them.

A counter is read as a rate per second over the last `RATE_WINDOW_S` of scrapes (`CounterRates`, Prometheus'
rate(): a counter that falls was reset, and counts again from zero); a histogram at a quantile of its buckets
(`histogram_quantile`, Prometheus' histogram_quantile()). Numbers in, numbers out: no parsing, no I/O.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Hashable

__all__ = ["MIN_RATE_SPAN_S", "RATE_WINDOW_S", "CounterRates", "histogram_quantile"]

RATE_WINDOW_S = 300.0  # counters and histograms are read as rates over this much recent history (rate(x[5m]))
MIN_RATE_SPAN_S = 5.0  # a rate needs two readings at least this far apart


class CounterRates:
    """Per-second rates of counters from their readings over the last `window_s`, as Prometheus' rate(): the
    increases between consecutive readings are summed, and a reading below the one before is a counter reset, so
    it counts as an increase from zero. Safe to share between threads (the monitor, /metrics and the chat all
    read the same source)."""

    def __init__(self, window_s: float = RATE_WINDOW_S, min_span_s: float = MIN_RATE_SPAN_S) -> None:
        self.window_s = window_s
        self.min_span_s = min_span_s
        self._history: dict[Hashable, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def rate(self, key: Hashable, value: float, at: float) -> float | None:
        """The rate of the counter `key` now that it reads `value` at `at`; None until its readings span
        `min_span_s`."""
        with self._lock:
            history = self._history.setdefault(key, deque(maxlen=1024))
            if history and at < history[-1][0] - self.window_s:
                history.clear()  # the clock went back a long way: what came before cannot be ordered with this
            if history and at < history[-1][0]:
                pass  # a reader that took its time (two threads read the same source): the rate as it stands
            else:
                if history and at == history[-1][0]:
                    history.pop()
                history.append((at, value))
            while len(history) > 1 and history[1][0] <= history[-1][0] - self.window_s:
                history.popleft()  # one reading at or before the window's start is kept as its first
            span = history[-1][0] - history[0][0]
            if span < self.min_span_s:
                return None
            increase = sum(b - a if b >= a else b for (_, a), (_, b) in itertools.pairwise(history))
            return increase / span

    def forget(self, before: float) -> None:
        """Drop counters not read since `before` (a series that went away keeps no memory)."""
        with self._lock:
            for key in [k for k, h in self._history.items() if not h or h[-1][0] < before]:
                del self._history[key]


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The `q` quantile from cumulative (upper bound, count) buckets, +Inf last, as Prometheus computes it: linear
    within the bucket the rank falls in; the highest finite bound when it falls in +Inf; None without
    observations."""
    cumulative = [(bound, count) for bound, count in zip(
        (b for b, _ in sorted(buckets)), itertools.accumulate((c for _, c in sorted(buckets)), max), strict=True)]
    total = cumulative[-1][1] if cumulative else 0.0
    if total <= 0 or not math.isinf(cumulative[-1][0]):
        return None
    rank = q * total
    previous: float | None = None
    below = 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return previous
            if previous is None and bound <= 0:
                return bound
            start = 0.0 if previous is None else previous
            if count <= below:
                return bound
            return start + (bound - start) * (rank - below) / (count - below)
        previous, below = bound, count
    return previous
