"""Rule files edited while the server runs: noticed, loaded, checked, and swapped in without a restart.

Each decision calls `check()` first. At most once per `interval_s` it compares the files' names, sizes and
modification times with what was loaded; if anything changed it loads the files again and, if they are
valid, swaps the new version into the engine (decisions already running finish on the old one). Invalid
files leave the running rules in place; the problems are kept in `last_error` and logged. The loader reads a
file within fixed bounds (core/yamlfile.py: size, nesting, no aliases), so a hostile file costs little; and
should loading fail in any other way, that too is logged and the running rules stay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import Problem, RuleError
from engine.decision.ruleengine import RuleEngine
from rules.loader import rule_files
from rules.model import RuleBase

log = logging.getLogger("firstline.rules")
Signature = tuple[tuple[str, int, int], ...]


def signature(paths: Sequence[Path]) -> Signature:
    """What identifies the current state of the rule files: each file's path, size and mtime in ns."""
    files, _ = rule_files(paths)
    found = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:  # deleted between listing and stat: the next check sees it gone
            continue
        found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


class RuleSource:
    """Watches rule files and keeps `engine` on their latest valid version."""

    def __init__(self, paths: Sequence[Path], load: Callable[[], RuleBase], engine: RuleEngine,
                 interval_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.paths = list(paths)
        self.load = load
        self.engine = engine
        self.interval_s = interval_s
        self.clock = clock
        self.last_error: RuleError | None = None
        self.reloads = 0
        self._lock = threading.Lock()
        self._seen = signature(self.paths)
        self._checked_at = clock()

    def check(self) -> bool:
        """Reload if the files changed and the interval has passed; True if a new version went live."""
        if self.interval_s <= 0 or self.clock() - self._checked_at < self.interval_s:
            return False
        # One thread checks; the others go on with the current version rather than wait.
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._checked_at = self.clock()
            current = signature(self.paths)
            if current == self._seen:
                return False
            return self._reload(current)
        finally:
            self._lock.release()

    def reload(self) -> RuleBase:
        """Load the files now and swap them in; raises RuleError (and keeps the running rules) if invalid."""
        with self._lock:
            current = signature(self.paths)
            if not self._reload(current):
                assert self.last_error is not None
                raise self.last_error
            return self.engine.rulebase

    def _reload(self, current: Signature) -> bool:
        self._seen = current  # a broken file is reported once, not on every decision until it is fixed
        try:
            rulebase = self.load()
            if rulebase.version != self.engine.rulebase.version:
                self.engine.swap(rulebase)  # refused (RuleError) if it cannot be sharded
                self.reloads += 1
                log.info("rules reloaded: version %s, %d rules", rulebase.version, len(rulebase))
        except RuleError as error:
            self.last_error = error
            log.error("rule files changed but are invalid; still running version %s\n%s",
                      self.engine.rulebase.version, error)
            return False
        except Exception as error:  # whatever a file does, the server keeps its rules and goes on serving
            where = ", ".join(map(str, self.paths))
            self.last_error = RuleError([Problem(where, None, "", f"could not be loaded: {type(error).__name__}: "
                                                 f"{str(error)[:200]}")])
            log.exception("rule files changed but could not be loaded; still running version %s",
                          self.engine.rulebase.version)
            return False
        self.last_error = None
        return True
