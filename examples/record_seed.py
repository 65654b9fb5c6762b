"""Regenerate `examples/seed-hi/` and `examples/seed-hi.trajectory.json`.

Runs the real CLI on the seed task, "write a bash script that prints hi", against the
scripted model server of the tests (no network, no key), then keeps the run directory and
its OpenHands-shape export. Usage: `.venv/bin/python examples/record_seed.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent
sys.path.insert(0, str(REPO))

from tests.scripted_model import ScriptedModel, Turn, bash, finish  # noqa: E402

RUN_ID = "seed-hi"
TASK = "write a bash script that prints hi"
SCRIPT = "#!/usr/bin/env bash\necho hi\n"


def script(workdir: Path) -> list[Turn]:
    """What a model typically does: create the script, make it executable, run it, finish."""
    create = {"command": "create", "path": str(workdir / "hi.sh"), "file_text": SCRIPT}
    return [
        Turn(
            content="I'll write the script hi.sh in the working directory.",
            tool_calls=[("str_replace_editor", create)],
        ),
        bash("chmod +x hi.sh"),
        bash("./hi.sh"),
        finish("Created hi.sh, an executable bash script that prints hi; running it prints hi."),
    ]


def runhands(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "controller", *args], cwd=REPO, env=env, check=True)


def main() -> None:
    scratch = Path(tempfile.gettempdir()) / "runhands-seed-hi"
    shutil.rmtree(scratch, ignore_errors=True)
    workdir, state = scratch / "workspace", scratch / "state"
    workdir.mkdir(parents=True)
    with ScriptedModel(script(workdir)) as model:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(scratch),
            "LANG": "C.UTF-8",
            "LLM_MODEL": "openai/scripted-model",
            "LLM_API_KEY": "not-a-real-key-scripted-model-server",
            "LLM_BASE_URL": model.base_url,
            "FILE_STORE_PATH": str(state),
        }
        runhands("run", "-n", RUN_ID, "-d", str(workdir), "-t", TASK, env=env)
        trajectory = EXAMPLES / f"{RUN_ID}.trajectory.json"
        runhands("trajectory", RUN_ID, "-o", str(trajectory), env=env)
    target = EXAMPLES / RUN_ID
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for name in ("events.jsonl", "snapshot.json", "config.json"):
        shutil.copy(state / RUN_ID / name, target / name)
    shutil.rmtree(scratch)
    print(f"recorded {target} and {trajectory}")


if __name__ == "__main__":
    main()
