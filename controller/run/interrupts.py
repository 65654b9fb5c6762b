"""Ctrl-C and SIGTERM: the first stops the run cleanly (KeyboardInterrupt, the run saved in
its state, exit 130); a second exits at once (every event already written is a whole line,
so the store stays loadable). While a run is being closed, a first signal is noted and does
not cut the closing short; a second still exits 130 at once."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

from controller.agent.outcome import ExitCode

_seen = 0
_closing = False


def _on_stop_signal(signum: int, frame: object) -> None:
    global _seen
    _seen += 1
    if _seen > 1:
        os._exit(ExitCode.INTERRUPTED)
    if not _closing:
        raise KeyboardInterrupt


def install() -> None:
    signal.signal(signal.SIGINT, _on_stop_signal)
    signal.signal(signal.SIGTERM, _on_stop_signal)


@contextlib.contextmanager
def closing() -> Iterator[None]:
    """The run's end is being saved: a first signal must not interrupt that. Only the main
    thread's run can be interrupted by a signal: a batch's runs leave the flag alone."""
    global _closing
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _closing = True
    try:
        yield
    finally:
        _closing = False
