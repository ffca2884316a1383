"""A stop signal inside a long-running command: the first Ctrl+C or SIGTERM raises KeyboardInterrupt, any later
one is waited for and ignored (it used to raise inside the clean-up and end the process by the signal), and the
handlers that were there before come back after."""

from __future__ import annotations

import signal

import pytest

from core.stopping import ALREADY_STOPPING, stopping, terminate_as_interrupt


@pytest.mark.parametrize(("first", "then"), [
    (signal.SIGINT, [signal.SIGINT, signal.SIGINT]),
    (signal.SIGTERM, [signal.SIGTERM]),
    (signal.SIGINT, [signal.SIGTERM, signal.SIGINT]),
    (signal.SIGTERM, [signal.SIGINT, signal.SIGINT, signal.SIGTERM]),
])
def test_the_first_stop_signal_interrupts_and_later_ones_wait_for_the_clean_up(capfd, handlers, first, then):
    cleaned_up = False
    with terminate_as_interrupt():
        try:
            signal.raise_signal(first)  # handled before it returns: no race with a thread the kernel might pick
            pytest.fail("the first stop signal did not interrupt")
        except KeyboardInterrupt:
            for number in then:  # pressed again while the clean-up runs
                signal.raise_signal(number)
            cleaned_up = True
    assert cleaned_up and stopping()
    assert {signal.getsignal(number) for number in handlers} == {signal.SIG_IGN}  # survives the interpreter's exit
    signal.raise_signal(first)  # after the block: ignored, the process is on its way out
    assert capfd.readouterr().err.count(ALREADY_STOPPING.decode()) == len(then)


def test_without_a_stop_the_handlers_are_put_back_untouched(handlers):
    with terminate_as_interrupt():
        assert signal.getsignal(signal.SIGINT) is not handlers[signal.SIGINT]
    assert {number: signal.getsignal(number) for number in handlers} == handlers and not stopping()


@pytest.fixture
def handlers():
    """The test process's own handlers, put back after each test (a stop keeps its own to the end otherwise)."""
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield before
    for number, handler in before.items():
        signal.signal(number, handler)
