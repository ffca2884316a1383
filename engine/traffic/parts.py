"""The parts a simulated run drives, and how they are made for it: built by the caller's `build`
(`engine.wiring.build`, the one composition root) on the configured data folder, on a clock that only moves
forward, with the simulated infrastructure and adapter whatever is configured, and with ids from a counter."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

from core.settings import Settings
from engine.access.tokens import TokenBook
from engine.access.users import UserBook
from engine.chat.assistant import Assistant
from engine.chat.dialogue import Dialogue
from engine.desk.desk import Desk
from engine.healing.monitor import Monitor
from engine.infra.simulation import SimulatedInfrastructure
from engine.store.database import DuckDBStore
from engine.store.healing import HealingLedger
from engine.traffic.users import DAY_S
from knowledge.base import KnowledgeBase


class SelfHealing(Protocol):
    """What a run reads of the self-healing parts (`engine.wiring.Healing` is one)."""

    @property
    def monitor(self) -> Monitor: ...

    @property
    def ledger(self) -> HealingLedger: ...


class Product(Protocol):
    """The parts a run drives (`engine.wiring.Parts` is one): the chat, the desk, the monitor, the simulated
    infrastructure, the store, and the books an account is recorded with."""

    @property
    def assistant(self) -> Assistant: ...

    @property
    def dialogue(self) -> Dialogue: ...

    @property
    def desk(self) -> Desk | None: ...

    @property
    def healing(self) -> SelfHealing | None: ...

    @property
    def infrastructure(self) -> SimulatedInfrastructure: ...

    @property
    def store(self) -> DuckDBStore: ...

    @property
    def tokens(self) -> TokenBook: ...

    @property
    def users(self) -> UserBook: ...

    def close(self) -> None: ...


P = TypeVar("P", bound=Product)

class SimulatedClock:
    """Epoch seconds that only move forward: the one clock every part of a simulated run reads."""

    def __init__(self, start_s: float) -> None:
        self.now = start_s

    def __call__(self) -> float:
        return self.now

    def move_to(self, at_s: float) -> None:
        self.now = max(self.now, at_s)


@dataclass(frozen=True)
class RunSpec:
    """What to simulate: `days` from `start_s` (epoch s), `users` users, every choice drawn from `seed`."""

    days: int
    users: int
    seed: int
    start_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.days * DAY_S


class RunIds:
    """Ids shaped like the server's (32 hex digits) from a counter under a prefix: the same run makes the same ids,
    and so the same choices wherever an id seeds one (the order of remedies, the words of a reply)."""

    def __init__(self, seed: int, start_s: float) -> None:
        self.counter = itertools.count(1)
        self.prefix = _prefix(f"{seed}:{start_s}:0")

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):020x}"


def _prefix(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def simulation_settings(settings: Settings, seed: int) -> Settings:
    """`settings` for a simulated run: the built-in simulated infrastructure and adapter whatever is configured (a
    simulation must never act on real systems), seeded with `seed`, with no faults at the start (the run injects
    its own)."""
    return settings.model_copy(update={"simulation_seed": seed, "simulation_faults": (),
                                       "telemetry_source": "simulation", "remediation_adapter": "simulated",
                                       "remediation_routes": ()})


@contextlib.contextmanager
def simulated_parts(settings: Settings, spec: RunSpec, build: Callable[..., P],
                    knowledge: KnowledgeBase | None = None) -> Iterator[tuple[P, SimulatedClock]]:
    """The real parts, made by `build` (`engine.wiring.build`) on `settings`' data folder (see
    `simulation_settings`), on a clock at `spec.start_s`, closed after. A ready `knowledge` base may be passed in
    (tests share one). Raises what `build` raises (StoreError when another process holds the database)."""
    clock = SimulatedClock(spec.start_s)
    ids = RunIds(spec.seed, spec.start_s)
    parts = build(simulation_settings(settings, spec.seed), clock=clock, knowledge=knowledge, new_id=ids)
    try:
        # A second run of the same seed and start on the same folder must not reuse the first one's ids: the
        # samples the monitor recorded at the start instant say how many such runs the folder holds.
        assert parts.healing is not None  # every build makes it
        service, metric = _first_metric(parts)
        earlier = sum(1 for at, _ in parts.healing.ledger.series(service, metric, spec.start_s, 1_000_000)
                      if at == spec.start_s)
        ids.prefix = _prefix(f"{spec.seed}:{spec.start_s}:{earlier}")
        yield parts, clock
    finally:
        parts.close()


def _first_metric(parts: Product) -> tuple[str, str]:
    topology = parts.infrastructure.topology
    service = min(topology.services)
    return service, min(topology.services[service].baselines)


