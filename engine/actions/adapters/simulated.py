"""The simulated adapter: actions change the built-in simulated infrastructure's metrics for real."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.actions.catalogue import ACTIONS
from engine.infra.simulation import SimulatedInfrastructure


class SimulatedAdapter:
    name = "simulated"

    def __init__(self, infrastructure: SimulatedInfrastructure) -> None:
        self.infrastructure = infrastructure

    def supports(self, action: str) -> bool:
        return action in ACTIONS

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        return self.infrastructure.execute(action, target, params)

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        return self.infrastructure.undo(action, target)

    def close(self) -> None:
        return None
