"""The engine: from a user's message to a decision, an action and a reply, and the self-healing beside it.

Its rooms (see docs/architecture.md): `store` (every SQL statement), `infra` (topology, telemetry, the
simulation), `actions` (the actuator and its safety gate), `decision` (facts, rules, trace), `learning`,
`healing`, `chat` (the assistant and the dialogue), `access` (tokens); `wiring` builds them all.

The names below are the engine's public surface for web/, firstline/ and embedding code; they are pinned by
tests/core/test_layering.py. They load on first use, so importing one room does not load them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.chat.assistant import Answer, Assistant
    from engine.chat.dialogue import Dialogue, Exchange, Stage
    from engine.decision.pack import load_pack, load_rulebase
    from engine.desk.desk import EscalationOutcome
    from engine.wiring import Parts, build, open_healing, open_index

_HOMES = {
    "Answer": "engine.chat.assistant", "Assistant": "engine.chat.assistant",
    "Dialogue": "engine.chat.dialogue", "EscalationOutcome": "engine.desk.desk",
    "Exchange": "engine.chat.dialogue", "Stage": "engine.chat.dialogue",
    "Parts": "engine.wiring", "build": "engine.wiring", "load_pack": "engine.decision.pack",
    "load_rulebase": "engine.decision.pack", "open_healing": "engine.wiring", "open_index": "engine.wiring",
}
__all__ = ["Answer", "Assistant", "Dialogue", "EscalationOutcome", "Exchange", "Parts", "Stage", "build", "load_pack",
           "load_rulebase", "open_healing", "open_index"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
