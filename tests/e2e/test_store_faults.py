"""The store under faults: a disk that is full, fills during a write, or fills for a moment.
Every write is complete or undone; the run stops with a clear message and exit code 7; the
log keeps only whole lines, the last good snapshot stays, and `resume` continues to the
same outcome as the run that never failed (tests/crash_harness.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from state_store.store import load_log, read_snapshot
from tests.crash_harness import RUN, Outcome, Workplace, check_same_outcome, reference_run

pytestmark = pytest.mark.e2e

STORAGE = 7


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return reference_run(tmp_path_factory.mktemp("reference"))


# The first writes create the run (config, log); the later ones are events and snapshots,
# a failing write of each kind among them; a range is a disk that fills, then frees.
FAULTS = [
    "enospc@1",
    "enospc@2",
    "enospc@3",
    "enospc@4",
    "enospc@17",
    "enospc@40",
    "enospc@41",
    "enospc@75",
    "enospc@20-23",
    "enospc@30-200",
    "short@5",
    "short@26",
    "short@58",
]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_full_disk_stops_cleanly_and_resume_continues(
    tmp_path: Path, reference: Outcome, fault: str
) -> None:
    place = Workplace(tmp_path)
    with place.model:
        first = place.run(fault=fault)
        assert first.code == STORAGE, first.stderr
        assert "No space left on device" in first.stderr
        assert "Traceback" not in first.stderr
        saved = place.log_bytes()
        if not saved:  # the run could not be created: its name is free again
            assert "could not be created" in first.stderr
            again = place.run()
            check_same_outcome(place, again.code, reference, b"")
            return
        assert saved.endswith(b"\n")
        load_log(place.log_path)  # whole lines only, every one in its place
        read_snapshot(place.state / RUN)  # the last good snapshot, whole
        assert f"runhands resume {RUN}" in first.stderr
        result = place.resume()
        place.resume_stderr = result.stderr
        check_same_outcome(place, result.code, reference, saved)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.mark.skipif(shutil.which("mount") is None, reason="no mount command")
def test_a_real_small_filesystem_fills_then_is_enlarged(tmp_path: Path, reference: Outcome) -> None:
    """A tmpfs too small for the run as the state directory (needs root, as in CI)."""
    place = Workplace(tmp_path)
    if not _mount_tmpfs(place.state, "24k"):
        pytest.skip("cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)")
    try:
        with place.model:
            first = place.run()
            assert first.code == STORAGE, first.stderr
            assert "No space left on device" in first.stderr
            saved = place.log_bytes()
            load_log(place.log_path)
            remount = ["mount", "-o", "remount,size=4m", str(place.state)]
            subprocess.run(remount, check=True)
            result = place.resume()
            place.resume_stderr = result.stderr
            check_same_outcome(place, result.code, reference, saved)
    finally:
        subprocess.run(["umount", "-l", str(place.state)], check=False)
