"""What every command shares: the settings, read once and only when a command needs them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings


class Context:
    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    def settings(self, **overrides: object) -> Settings:
        # Imported here, not above: the settings bring pydantic, and `firstline --help` should not pay for it.
        from core.settings import load_settings

        if overrides:
            return load_settings(self.config, **overrides)
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings
