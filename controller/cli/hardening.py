"""Keeping runhands' own process out of reach of the commands it runs.

runhands' environment holds the model keys. A command of an unisolated sandbox runs as the
same user, and the kernel lets a process read the environment and memory of any
"dumpable" process of its user (`/proc/<pid>/environ`, `/proc/<pid>/mem`, ptrace). A
non-dumpable process's /proc entries belong to root, and it cannot be traced. Root is not
stopped by this: the isolated sandbox's own PID namespace hides runhands from it.
"""

from __future__ import annotations

import ctypes
import sys

_PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """Linux: mark this process non-dumpable (also: no core dumps, no debugger attaching
    without root). The commands runhands starts are not affected: exec makes them dumpable
    again. True when it took effect; elsewhere, or if refused, nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc prctl: a very unusual Linux
        return False
