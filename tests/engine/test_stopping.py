"""A stop (Ctrl+C, SIGTERM) can arrive while a background loop is being started: between making its thread and
starting it. Stopping it then must not fail (it did: `cannot join thread before it is started`, exit 1 from
`firstline heal`), so the clean-up after it (closing the store) still runs."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from engine.desk.expiry import ExpiryTimer
from engine.notify.sender import SenderTimer
from engine.wiring import open_healing
from tests.conftest import ManualClock, make_settings


@pytest.fixture
def interrupted_start(monkeypatch):
    """Thread.start raises KeyboardInterrupt, as a signal handler would the moment before the thread ran."""
    def start(thread: threading.Thread) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", start)


def test_a_monitor_stopped_while_it_was_being_started_stops(tmp_path, interrupted_start):
    healing, store = open_healing(make_settings(tmp_path), clock=ManualClock())
    try:
        with pytest.raises(KeyboardInterrupt):
            healing.monitor.start()
        healing.monitor.stop()
        assert not healing.monitor.running
    finally:
        healing.close()
        store.close()


@pytest.mark.parametrize("timer", [lambda: ExpiryTimer(SimpleNamespace()),
                                   lambda: SenderTimer(SimpleNamespace(enabled=True))])
def test_a_timer_stopped_while_it_was_being_started_stops(interrupted_start, timer):
    made = timer()
    with pytest.raises(KeyboardInterrupt):
        made.start()
    made.stop()
