"""Stopping a long-running command cleanly whichever way it is asked to stop.

Ctrl+C raises KeyboardInterrupt in the main thread, and every long-running command (`firstline serve`,
`firstline heal`) already unwinds through its clean-up on it: the timers and the monitor finish their current
pass, the store is closed (a DuckDB checkpoint). `kill`, systemd and `docker stop` send SIGTERM instead, whose
default ends the process at once, leaving the write-ahead log to be replayed on the next start; here it takes the
same way out as Ctrl+C.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread; the previous handler is put back
    after. A second SIGTERM during the clean-up is ignored. Only the main thread may set signal handlers (ValueError
    otherwise), which is where commands run."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM (some supervisors repeat it) must not cut the clean-up the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt
