"""Signals: the first one interrupts the run, but not the saving of its end; a second one
always exits 130 at once. Each case runs in a forked child (signals are per process)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from controller.run import interrupts


def _in_child(body: Callable[[], int]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            interrupts.install()
            code = body()
        except KeyboardInterrupt:
            code = 42
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_the_first_signal_interrupts() -> None:
    def body() -> int:
        os.kill(os.getpid(), signal.SIGINT)
        return 0

    assert _in_child(body) == 42  # KeyboardInterrupt: the run is stopped and saved


def test_a_first_signal_while_closing_does_not_cut_the_closing_short() -> None:
    def body() -> int:
        with interrupts.closing():
            os.kill(os.getpid(), signal.SIGTERM)
            return 7  # the closing went on to its end

    assert _in_child(body) == 7


def test_a_second_signal_during_shutdown_exits_130_at_once() -> None:
    def body() -> int:
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            with interrupts.closing():
                os.kill(os.getpid(), signal.SIGINT)
                return 0  # never reached
        return 1

    assert _in_child(body) == 130
