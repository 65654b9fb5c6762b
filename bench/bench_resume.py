"""Resume figure (issue 3): time from `runhands resume` to its first new model request, for a
10,000-event run, next to `import litellm` alone. Prints it; not a test.

    .venv/bin/python bench/bench_resume.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_inspect import RUN_ID, build_run  # noqa: E402
from bench_run import litellm_import_s  # noqa: E402

from controller.config import AppConfig  # noqa: E402
from state_store.store import RunStore  # noqa: E402
from tests.scripted_model import ScriptedModel, finish  # noqa: E402


def resume_once(tmp: Path) -> float:
    state, workspace = tmp / "state", tmp / "workspace"
    workspace.mkdir()
    run_dir = build_run(state, 10_000)
    log = run_dir / "events.jsonl"
    log.write_bytes(
        log.read_bytes().replace(b'"workdir":"/w"', f'"workdir":"{workspace}"'.encode())
    )
    store = RunStore.open(state, RUN_ID)
    store.save_config(AppConfig())
    store.close()
    env = {
        **os.environ,
        "HOME": str(tmp),
        "LLM_MODEL": "openai/bench",
        "LLM_API_KEY": "k",
        "FILE_STORE_PATH": str(state),
        "MAX_ITERATIONS": "100000",
    }
    with ScriptedModel([finish("more done")]) as model:
        env["LLM_BASE_URL"] = model.base_url
        arrived: list[float] = []
        original = model.next_turn

        def stamped(body):
            arrived.append(time.monotonic())
            return original(body)

        model.next_turn = stamped
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "controller", "resume", RUN_ID, "-t", "one more thing"],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
        )
    assert proc.returncode == 0, proc.stderr
    return arrived[0] - started


def main() -> None:
    resumes, imports = [], []
    for _ in range(3):
        imports.append(litellm_import_s())
        with tempfile.TemporaryDirectory() as tmp:
            resumes.append(resume_once(Path(tmp)))
    first, imp = statistics.median(resumes), statistics.median(imports)
    print(
        f"resume of a 10,000-event run: first new model request after {first:.2f} s; "
        f"`import litellm` alone {imp:.2f} s; difference {first - imp:.2f} s (median of 3)"
    )


if __name__ == "__main__":
    main()
