"""A stop signal inside a long-running command: the first Ctrl+C or SIGTERM raises KeyboardInterrupt, any later
one is waited for and ignored (it used to raise inside the clean-up and end the process by the signal), and
without a stop the handlers that were there before come back after. Each test sets the handlers it starts from
(a test run in the background starts with SIGINT ignored) and puts the process's own back."""

from __future__ import annotations

import signal

import pytest

from core.stopping import ALREADY_STOPPING, terminate_as_interrupt

STOPS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture
def handlers():
    """Python's own handlers to start from; the test process's are put back after each test."""
    before = {number: signal.getsignal(number) for number in STOPS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield {number: signal.getsignal(number) for number in STOPS}
    for number, handler in before.items():
        signal.signal(number, handler)


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
    assert cleaned_up
    assert {signal.getsignal(number) for number in STOPS} == {signal.SIG_IGN}  # survives the interpreter's exit
    signal.raise_signal(first)  # after the block: ignored, the process is on its way out
    assert capfd.readouterr().err.count(ALREADY_STOPPING.decode()) == len(then)


def test_without_a_stop_the_handlers_are_put_back_untouched(handlers):
    with terminate_as_interrupt():
        assert signal.getsignal(signal.SIGINT) is not handlers[signal.SIGINT]
    assert {number: signal.getsignal(number) for number in STOPS} == handlers


def test_a_signal_ignored_on_entry_stays_ignored(handlers):
    """`firstline serve &` from a script: the shell has SIGINT ignored, and a Ctrl+C meant for the script must not
    stop the server; SIGTERM still does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with terminate_as_interrupt():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # nothing happens
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
