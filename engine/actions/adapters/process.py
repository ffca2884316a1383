"""The process adapter: restart_service stops a local process and starts it again from an allow-listed argv.

The process id is kept in `<data dir>/run/<service>.pid` with the command line it was started with, so a
restart after Firstline itself restarted still finds it, and a recycled pid is never mistaken for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError, RemediationError
from engine.infra.topology import Topology

STOP_WAIT_S = 5.0
POLL_S = 0.05


class ProcessAdapter:
    name = "process"

    def __init__(self, commands: Mapping[str, list[str]], run_dir: Path) -> None:
        self.commands = {service: list(argv) for service, argv in commands.items()}
        self.run_dir = run_dir
        self._children: dict[int, subprocess.Popen] = {}  # ours to reap when we stop them

    @classmethod
    def from_settings(cls, entries: tuple[str, ...], topology: Topology, run_dir: Path) -> ProcessAdapter:
        commands: dict[str, list[str]] = {}
        for entry in entries:
            service, sep, command = entry.partition("=")
            service = service.strip()
            if not sep or service not in topology.services:
                raise ConfigurationError(f"process command {entry!r}: write `service=program arg ...` with a "
                                         f"service of the infrastructure file", key="process_commands")
            argv = shlex.split(command)
            if not argv:
                raise ConfigurationError(f"process command for {service} is empty", key="process_commands")
            commands[service] = argv
        if not commands:
            raise ConfigurationError("the process adapter needs FIRSTLINE_PROCESS_COMMANDS (`service=program ...`)",
                                     key="process_commands")
        return cls(commands, run_dir)

    def supports(self, action: str) -> bool:
        return action == "restart_service"

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        argv = self.commands.get(target)
        if argv is None:
            raise RemediationError(f"no process command for {target}; add `{target}=...` to "
                                   "FIRSTLINE_PROCESS_COMMANDS", action=action, target=target)
        old = self.running_pid(target)
        if old is not None:
            self._stop(old)
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as error:
            raise RemediationError(f"cannot start {argv[0]}: {error.strerror}", action=action,
                                   target=target) from None
        self._children[child.pid] = child
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._pidfile(target).write_text(json.dumps({"pid": child.pid, "argv": argv}), encoding="utf-8")
        # Until exec has happened the child still looks like us; wait for it, and notice one that died at once.
        deadline = time.monotonic() + STOP_WAIT_S
        while self.running_pid(target) != child.pid and child.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if child.poll() is not None:
            raise RemediationError(f"{argv[0]} exited at once with {child.returncode}", action=action,
                                   target=target)
        stopped = f"stopped pid {old}, " if old is not None else ""
        return f"restart_service on {target}: {stopped}started pid {child.pid}"

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        return None  # a restart cannot be taken back

    def close(self) -> None:
        return None  # the processes belong to the service, not to Firstline: they keep running

    def running_pid(self, service: str) -> int | None:
        """The pid of the process we started for `service`, if it is still that process."""
        try:
            record = json.loads(self._pidfile(service).read_text(encoding="utf-8"))
            pid = int(record["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return pid if [a.decode() for a in cmdline] == record["argv"] else None

    def stop(self, service: str) -> None:
        """Stop the process we started for `service` (for tests and shutdown scripts)."""
        pid = self.running_pid(service)
        if pid is not None:
            self._stop(pid)
        self._pidfile(service).unlink(missing_ok=True)

    def _stop(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(POLL_S)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(POLL_S)
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait()  # already gone: this only records its exit status

    def _pidfile(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so it does not linger as a zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
