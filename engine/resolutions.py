"""Learned resolutions as facts: thousands of "this fixed that" records consumed by a few generic rules.

One durable-rules rule per learned resolution does not scale (a ruleset of 512 rules hangs it, and a fact
that completes more than 64 activations at once is refused with error 303). Instead each resolution is a
row, indexed here by playbook; a decision asserts only its playbook's rows, as `resolution` facts after all
other facts (so each completes only its own activations), and the generic rules in
`rules/builtin/learned.yaml` join them with the telemetry. `bench/rules_scale.py` measures this against
sharding the same resolutions as rules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from engine.store import ResolutionRow
from engine.trace import Fact


class ResolutionBook:
    """Learned resolutions, indexed by playbook; safe to read while another thread adds."""

    def __init__(self, rows: Iterable[ResolutionRow] = ()) -> None:
        self._lock = threading.Lock()
        self._by_playbook: dict[str, tuple[ResolutionRow, ...]] = {}
        self.add(rows)

    def add(self, rows: Iterable[ResolutionRow]) -> None:
        grouped: dict[str, list[ResolutionRow]] = {}
        for row in rows:
            grouped.setdefault(row.playbook, []).append(row)
        with self._lock:
            for playbook, new in grouped.items():
                names = {r.name for r in new}
                kept = [r for r in self._by_playbook.get(playbook, ()) if r.name not in names]
                self._by_playbook[playbook] = (*kept, *new)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(rows) for rows in self._by_playbook.values())

    def facts_for(self, playbook: str | None) -> list[Fact]:
        """The `resolution` facts a decision about `playbook` needs: that playbook's rows only."""
        with self._lock:
            rows = self._by_playbook.get(playbook or "", ())
        return [Fact("resolution", {
            "name": r.name, "playbook": r.playbook, "service": r.service, "metric": r.metric, "action": r.action,
            "target": r.target, "successes": r.successes, "failures": r.failures,
        }) for r in rows]
