"""A fault-injection point for tests: crash, or fail with "no space left", just before the
N-th durable write of a process (each event line, snapshot, config, new log).

Off unless RUNHANDS_TEST_FAULT is set, e.g. `kill@12` (SIGKILL before the 12th write),
`enospc@12` (the 12th write fails with ENOSPC), `enospc@12-15` (writes 12 to 15 fail: a
disk that fills, then frees), `short@12` (the 12th write stops half-way, then fails with
ENOSPC: a disk that fills during the write). Only the test suite sets it.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "RUNHANDS_TEST_FAULT"


class FaultPoint:
    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get(ENV, "") if spec is None else spec
        self.kind, self.first, self.last = _parse(spec)
        self.writes = 0

    def before_write(self, size: int) -> int:
        """Count one durable write of `size` bytes and inject the configured fault when its
        turn comes; returns how many bytes may be written (the caller then fails with
        `no_space()` if that is fewer)."""
        if not self.kind:
            return size
        self.writes += 1
        if not self.first <= self.writes <= self.last:
            return size
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "short":
            return size // 2
        raise no_space()


def no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _parse(spec: str) -> tuple[str, int, int]:
    if not spec:
        return "", 0, 0
    kind, _, where = spec.partition("@")
    first, _, last = where.partition("-")
    numbers = first.isdigit() and (not last or last.isdigit())
    if kind not in {"kill", "enospc", "short"} or not numbers:
        raise ValueError(f"{ENV}={spec!r}: expected kill@N, enospc@N[-M] or short@N")
    return kind, int(first), int(last or first)
