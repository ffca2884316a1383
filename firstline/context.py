"""What every command shares: the settings, read once and only when a command needs them, and how a command prints
what it found, as JSON under `--json` or else as lines of text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.text import terminal_safe

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


def echo_json_or_lines(as_json: bool, document: object, lines: Iterable[str], ensure_ascii: bool = False) -> None:
    """Print `document` as JSON indented by two when `as_json` (a command's `--json`), else each of `lines` on a line
    of its own.

    `lines` is read only when it is printed: pass a generator, and `--json` formats no line (nor fails on a field
    the text needs). `ensure_ascii` is `json.dumps`'s: off, so names print as typed; the older listings (tokens,
    users) keep their escapes.
    """
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=ensure_ascii))
        return
    for line in lines:
        click.echo(terminal_safe(line))  # a label or body from outside cannot drive the terminal
