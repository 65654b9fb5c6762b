"""What a driver running several runs in one process (a batch) hands each run, instead of
the process-wide things a single run may use (signal handlers, stderr)."""

from __future__ import annotations

import threading
from typing import NamedTuple


class RunControls(NamedTuple):
    # Set: the run stops at the next event boundary, or in the middle of a model call or a
    # command, saved in its state as Ctrl-C leaves a single run (resumable).
    stop: threading.Event | None = None
    # Held while the run's sandbox starts: at most so many start at once.
    start_gate: threading.Semaphore | None = None


# A run alone in its process: Ctrl-C and SIGTERM stop it (controller/run/interrupts.py).
UNCONTROLLED = RunControls()
