"""The expiry clock calls the desk on its interval, survives a failed pass, and stops when told."""

import threading

from engine.desk.expiry import ExpiryTimer


class FakeDesk:
    def __init__(self, fail_first: bool) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.twice = threading.Event()

    def expire_due(self) -> list[str]:
        self.calls += 1
        if self.calls >= 2:
            self.twice.set()
        if self.fail_first and self.calls == 1:
            raise RuntimeError("the database was busy")
        return []


def test_the_timer_keeps_going_after_a_failed_pass_and_stops(caplog):
    desk = FakeDesk(fail_first=True)
    timer = ExpiryTimer(desk, interval_s=0.01).start()
    try:
        assert desk.twice.wait(10)
    finally:
        timer.stop()
    calls = desk.calls
    assert "expiring overdue escalations failed" in caplog.text
    assert not timer._thread.is_alive() and desk.calls == calls
