"""What every traffic worker shares (the server's address, the clock, the record, the ledger, the source, the
tokens, the texts), and the guard that keeps a bug of this script from passing for a server failure."""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.soaklib.client import Recorder
from bench.soaklib.ledger import Ledger
from bench.soaklib.source import FaultySource


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


def guarded(work: Callable[..., None], ctx: Context, *args: object) -> None:
    """Run a worker; a bug of this script is recorded, and does not pass for a server failure."""
    try:
        work(ctx, *args)
    except Exception as error:  # noqa: BLE001 - reported in the results
        ctx.ledger.bench_errors.append(f"{work.__name__}: {type(error).__name__}: {error}\n{traceback.format_exc()}")
