"""Crash points (issue 8): the representative run of tests/crash_harness.py killed before
each of its durable writes, then before each of a few writes of the resume too, every
outcome compared with the run that never crashed. Prints the tally; not a test.

    .venv/bin/python bench/bench_crash.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.crash_harness import (  # noqa: E402
    Workplace,
    check_same_outcome,
    crash_then_resume,
    reference_run,
)

SECOND_CRASHES = (1, 2, 4, 9)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    reference = reference_run(root / "reference")
    tally: Counter[str] = Counter()
    times: list[float] = []
    point = 0
    while True:
        point += 1
        started = time.monotonic()
        crash = crash_then_resume(root / f"p{point}", f"kill@{point}")
        times.append(time.monotonic() - started)
        tally[_verdict(crash.place, crash.code, reference, crash.crashed)] += 1
        if not crash.killed:
            break
        for second in SECOND_CRASHES if point % 7 == 0 else ():
            again = crash_then_resume(
                root / f"p{point}-{second}", f"kill@{point}", f"kill@{second}"
            )
            tally[
                f"second crash: {_verdict(again.place, again.code, reference, again.crashed)}"
            ] += 1
    writes = point - 1
    print(
        f"reference run: {len(reference.events)} events, {writes} durable writes, "
        f"{reference.requests} model requests"
    )
    print(
        f"crash points tried: {writes} (+1 past the end), then a second crash during resume "
        f"at writes {SECOND_CRASHES} for every 7th point"
    )
    for verdict, count in sorted(tally.items()):
        print(f"  {verdict}: {count}")
    print(f"crash + resume: median {statistics.median(times):.2f} s per point (forked CLI)")


def _verdict(place: Workplace, code: int, reference: object, crashed: bytes) -> str:
    try:
        check_same_outcome(place, code, reference, crashed)  # type: ignore[arg-type]
    except AssertionError as e:
        return f"DIFFERENT ({str(e).splitlines()[0][:80]})"
    return "same outcome as the uncrashed run"


if __name__ == "__main__":
    main()
