"""A crash in the middle of a checkpoint: runhands is killed while git is writing the
workspace's tree (the index updated, its lock left behind, no tree and no event yet). The
resumed run checkpoints again and ends exactly as the run that never crashed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.crash_harness import KILLED, Outcome, Workplace, check_same_outcome, reference_run

pytestmark = pytest.mark.e2e

# On PATH before the real git: at the N-th `write-tree`, leave git's index lock behind (as
# a git killed mid-write does) and SIGKILL runhands, its parent.
WRAPPER = """#!/bin/sh
case " $* " in *" write-tree "*)
  n=$(cat "{counter}" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "{counter}"
  if [ "$n" = "{when}" ]; then touch "$GIT_DIR/index.lock"; kill -9 $PPID; exit 1; fi;;
esac
exec {git} "$@"
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return reference_run(tmp_path_factory.mktemp("reference"))


@pytest.mark.parametrize("when", [1, 2, 4])
def test_a_crash_inside_a_checkpoint_resumes_to_the_same_outcome(
    tmp_path: Path, reference: Outcome, when: int
) -> None:
    place = Workplace(tmp_path / "place")
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    git = wrappers / "git"
    real = shutil.which("git")
    git.write_text(WRAPPER.format(counter=tmp_path / "count", when=when, git=real))
    git.chmod(0o755)
    path = place.env["PATH"]
    with place.model:
        place.env["PATH"] = f"{wrappers}:{path}"
        assert place.run().code == KILLED
        crashed = place.log_bytes()
        assert (place.state / "crashy" / "checkpoints" / "index.lock").exists()
        place.env["PATH"] = path
        result = place.resume()
        place.resume_stderr = result.stderr
        check_same_outcome(place, result.code, reference, crashed)
