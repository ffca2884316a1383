"""Stopping a long-running command cleanly whichever way it is asked to stop, and however often.

Ctrl+C raises KeyboardInterrupt in the main thread, and every long-running command (`firstline serve`,
`firstline heal`) unwinds through its clean-up on it: the timers and the monitor finish their current pass, the
store is closed (a DuckDB checkpoint). `kill`, systemd and `docker stop` send SIGTERM instead, whose default ends
the process at once, leaving the write-ahead log to be replayed on the next start; here it takes the same way out
as Ctrl+C. Once a stop has begun, a further Ctrl+C or SIGTERM (an impatient person pressing it three times, a
supervisor repeating it) is said to be waited for and otherwise ignored: by default it would raise inside the
clean-up and end the process by the signal with the store half closed. The clean-up is bounded (a monitor pass
is bounded by the scrape timeout); `kill -9` still ends it at once.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
ALREADY_STOPPING = b"already stopping: finishing the clean-up (kill -9 to end at once)\n"


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM raises KeyboardInterrupt in the main thread and any later one
    is ignored with a line on standard error; after the block, silently to the end of the process: the command is
    ending, and a signal that came while the interpreter shuts down would otherwise end it by the signal. Without
    a stop, the previous handlers are put back after the block. A signal ignored on entry is left ignored. Only the
    main thread may set signal handlers (ValueError otherwise), which is where commands run."""
    # A signal ignored on entry stays ignored: a shell starts `firstline serve &` with SIGINT ignored, so that a
    # Ctrl+C meant for the script does not stop its background jobs.
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    listened = [number for number, handler in previous.items() if handler is not signal.SIG_IGN]
    for number in listened:
        signal.signal(number, _interrupt)
    try:
        yield
    finally:
        stopped = any(signal.getsignal(number) is _already_stopping for number in listened)
        for number in listened:
            # After a stop, SIG_IGN rather than a Python handler: the interpreter puts SIG_DFL back in place of
            # Python handlers as it shuts down, and a signal then would end the process by the signal (exit -2).
            signal.signal(number, signal.SIG_IGN if stopped else previous[number])


def _interrupt(signum: int, frame: FrameType | None) -> None:
    for number in STOP_SIGNALS:
        if signal.getsignal(number) is _interrupt:
            signal.signal(number, _already_stopping)
    raise KeyboardInterrupt


def _already_stopping(signum: int, frame: FrameType | None) -> None:
    os.write(2, ALREADY_STOPPING)  # no buffered stream inside a handler: it may have interrupted a write to one
