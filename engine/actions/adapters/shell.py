"""The shell adapter: a command per action from an allow-list in the settings, run as an argv list.

Never a shell (no `shell=True`), never text from a user: the only placeholder is `{target}`, and targets are
service names from the infrastructure file, checked by the router before anything runs.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Mapping
from typing import Any

from core.errors import ConfigurationError, RemediationError
from engine.actions.catalogue import ACTIONS

PLACEHOLDER = re.compile(r"\{[^}]*\}")
TARGET = "{target}"
SAFE_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
OUTPUT_CHARS = 300


class ShellAdapter:
    name = "shell"

    def __init__(self, commands: Mapping[str, list[str]], timeout_s: float) -> None:
        self.commands = {action: list(argv) for action, argv in commands.items()}
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, entries: tuple[str, ...], timeout_s: float) -> ShellAdapter:
        commands: dict[str, list[str]] = {}
        for entry in entries:
            action, sep, command = entry.partition("=")
            action = action.strip()
            if not sep or action not in ACTIONS:
                raise ConfigurationError(f"shell command {entry!r}: write `action=program arg ...` with a known "
                                         "action", key="shell_commands")
            try:
                argv = shlex.split(command)
            except ValueError as error:
                raise ConfigurationError(f"shell command for {action}: {error}", key="shell_commands") from None
            if not argv:
                raise ConfigurationError(f"shell command for {action} is empty", key="shell_commands")
            unknown = {p for arg in argv for p in PLACEHOLDER.findall(arg)} - {TARGET}
            if unknown:
                raise ConfigurationError(f"shell command for {action}: only {TARGET} may be filled in, not "
                                         f"{', '.join(sorted(unknown))}", key="shell_commands")
            commands[action] = argv
        if not commands:
            raise ConfigurationError("the shell adapter needs FIRSTLINE_SHELL_COMMANDS (`action=program arg ...`)",
                                     key="shell_commands")
        return cls(commands, timeout_s)

    def supports(self, action: str) -> bool:
        return action in self.commands

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        if not SAFE_TARGET.match(target):
            raise RemediationError(f"refusing target {target!r}", action=action, target=target)
        argv = [arg.replace(TARGET, target) for arg in self.commands[action]]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise RemediationError(f"{argv[0]} did not finish in {self.timeout_s:g} s and was killed",
                                   action=action, target=target) from None
        except OSError as error:
            raise RemediationError(f"cannot run {argv[0]}: {error.strerror}", action=action, target=target) from None
        output = (done.stdout or done.stderr).strip()[-OUTPUT_CHARS:]
        if done.returncode != 0:
            raise RemediationError(f"{argv[0]} exited with {done.returncode}: {output}", action=action,
                                   target=target)
        return f"{action} on {target}: ran {shlex.join(argv)}" + (f": {output}" if output else "")

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        return None  # a command has no known inverse

    def close(self) -> None:
        return None
