"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(action: Callable[[], object], iterations: int) -> float:
    """The median wall-clock time of `action`, in milliseconds."""
    times = []
    for _ in range(iterations):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000
