"""The token bill of `runhands run` (issue: "The token bill"): prints figures; not a test.

    .venv/bin/python bench/bench_token_bill.py [--mini /tmp/mini/bin/python]

Every request re-sends the system prompt, the tool definitions and the history, so the bytes
sent are the user's cost. A scripted 50-step task (49 tool calls of a typical small-repo
trajectory, like mini-swe-agent's: ls, cat, grep, editor view/str_replace/create, running a
test, then finish) goes through the real CLI against a scripted model on 127.0.0.1; the bench
sums the body of every chat/completions request as sent (its Content-Length) over the run,
and gives the first request's size, with estimated tokens (tiktoken's cl100k_base if it is
installed, else bytes/4). The figures are set against mini-swe-agent's from the issue (same
kind of 50-step task), or with --mini against mini-swe-agent run on this very task (its
default config, each editor call as the bash command mini would send; install it in a
scratch venv, never in this project's): PASS when runhands sends at most 1.1x mini's bytes
over 50 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.scripted_model import ScriptedModel, Turn  # noqa: E402

MINI_50_STEPS = 562_722  # mini-swe-agent, bytes sent over a 50-step task (the issue)
MINI_FIRST = 3_372  # its first request
TARGET = 1.1
CLI = [sys.executable, "-m", "controller", "run", "-n", "bill"]

TASK = "The add() function in calc.py returns the wrong result; fix it and make the tests pass."

FILES = {
    "calc.py": (
        '"""A tiny calculator."""\n\n\ndef add(a, b):\n    return a - b\n\n\n'
        "def sub(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
    ),
    "test_calc.py": (
        "from calc import add, mul, sub\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
        "def test_sub():\n    assert sub(5, 3) == 2\n\n\n"
        "def test_mul():\n    assert mul(2, 3) == 6\n\n\n"
        "if __name__ == '__main__':\n    test_add(); test_sub(); test_mul(); print('ok')\n"
    ),
    "README.md": "# calc\n\nA tiny calculator: add, sub, mul.\n",
    "setup.cfg": "[metadata]\nname = calc\nversion = 0.1\n",
}

# The task, once: (thought, tool, arguments); "{w}" is the workspace. 49 calls, then finish.
_ROUND = [
    ("Let me look at the repository first.", "execute_bash", {"command": "ls -la"}),
    ("Let me read the code.", "execute_bash", {"command": "cat calc.py"}),
    ("And the tests.", "str_replace_editor", {"command": "view", "path": "{w}/test_calc.py"}),
    ("Run the tests to see the failure.", "execute_bash", {"command": "python3 -B test_calc.py"}),
    ("Where is add used?", "execute_bash", {"command": "grep -rn 'add' --include=*.py ."}),
    (
        "add subtracts; fix it.",
        "str_replace_editor",
        {
            "command": "str_replace",
            "path": "{w}/calc.py",
            "old_str": "def add(a, b):\n    return a - b",
            "new_str": "def add(a, b):\n    return a + b",
        },
    ),
    ("Run the tests again.", "execute_bash", {"command": "python3 -B test_calc.py"}),
    ("Check the diff.", "execute_bash", {"command": "git diff --stat 2>/dev/null; wc -l *.py"}),
    (
        "Put the bug back to try another check.",
        "str_replace_editor",
        {
            "command": "str_replace",
            "path": "{w}/calc.py",
            "old_str": "def add(a, b):\n    return a + b",
            "new_str": "def add(a, b):\n    return a - b",
        },
    ),
    ("Look at the README.", "execute_bash", {"command": "head -20 README.md"}),
]
STEPS = 50
_METADATA = re.compile(
    r"\\n\[(?:Current working directory|Python interpreter|Command finished with exit code)"
    r"[^\]]*\]"
)


def script(workspace: Path) -> list[Turn]:
    calls = [_ROUND[i % len(_ROUND)] for i in range(STEPS - 1)]
    turns = [
        Turn(
            content=thought,
            tool_calls=[
                (tool, {k: v.format(w=workspace) if k == "path" else v for k, v in args.items()})
            ],
        )
        for thought, tool, args in calls
    ]
    done = Turn(content="Fixed.", tool_calls=[("finish", {"message": "add() fixed."})])
    return [*turns, done]


class MeasuredModel(ScriptedModel):
    """The scripted model, also keeping each request's size as sent (Content-Length)."""

    def __init__(self, turns: list[Turn]) -> None:
        self.sizes: list[int] = []
        super().__init__(turns)

    def _handler(self):  # type: ignore[override]
        base = super()._handler()
        sizes = self.sizes

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                sizes.append(int(self.headers.get("content-length", 0)))
                super().do_POST()

        return Handler


# mini-swe-agent's version of each call: one bash command (its default config has no editor).
def _as_bash(tool: str, args: dict[str, str]) -> str:
    if tool == "execute_bash":
        return args["command"]
    if args["command"] == "view":
        return f"nl -ba {Path(args['path']).name}"
    old, new = args["old_str"].split()[-3:], args["new_str"].split()[-3:]
    return f"sed -i '5s/{' '.join(old)}/{' '.join(new)}/' {Path(args['path']).name}"


_MINI = """
import json, sys
import yaml
from pathlib import Path
import minisweagent
from minisweagent.agents.default import DefaultAgent
from minisweagent.environments.local import LocalEnvironment
from minisweagent.models.litellm_textbased_model import LitellmTextbasedModel
base_url, workspace, task = sys.argv[1:4]
config = yaml.safe_load((Path(minisweagent.__file__).parent / "config/default.yaml").read_text())
settings = config.get("model", {})
settings["model_kwargs"] = {
    **settings.get("model_kwargs", {}), "api_base": base_url, "api_key": "bench-key"
}
settings |= {"model_name": "openai/bench", "cost_tracking": "ignore_errors"}
model = LitellmTextbasedModel(**settings)
env = LocalEnvironment(cwd=workspace, **config.get("environment", {}))
agent = DefaultAgent(model, env, **config["agent"])
print(json.dumps(agent.run(task)))
"""


def run_mini(python: str, workdir: Path) -> list[int]:
    """The same task through mini-swe-agent (its default config, text-based actions), run
    by `python` (a scratch venv with mini-swe-agent installed): the request sizes."""
    workspace = _workspace(workdir)
    turns = [
        Turn(content=f"THOUGHT: {thought}\n\n```mswea_bash_command\n{_as_bash(tool, args)}\n```")
        for thought, tool, args in (_ROUND[i % len(_ROUND)] for i in range(STEPS - 1))
    ]
    finish = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
    turns.append(Turn(content=f"THOUGHT: Fixed.\n\n```mswea_bash_command\n{finish}\n```"))
    env = {**os.environ, "HOME": str(workdir), "MSWEA_SILENT_STARTUP": "1"}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    with MeasuredModel(turns) as model:
        proc = subprocess.run(
            [python, "-c", _MINI, model.base_url, str(workspace), TASK],
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(model.sizes) == STEPS, f"mini: {len(model.sizes)} requests, expected {STEPS}"
    return model.sizes


def _workspace(workdir: Path) -> Path:
    workspace = workdir / "workspace"
    workspace.mkdir()
    for name, content in FILES.items():
        (workspace / name).write_text(content)
    return workspace


def _tokens() -> tuple[str, Any]:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base")
        return "tiktoken cl100k_base", lambda text: len(encoding.encode(text))
    except Exception:  # not installed, or no network for its files
        return "bytes/4", lambda text: len(text.encode()) // 4


def run(workdir: Path) -> tuple[list[int], list[dict[str, Any]]]:
    workspace = _workspace(workdir)
    env = {
        **os.environ,
        "HOME": str(workdir),
        "LLM_MODEL": "openai/bench",
        "LLM_API_KEY": "bench-key",
        "AGENT_ENABLE_STUCK_DETECTION": "false",  # the round repeats: not a loop here
        "FILE_STORE_PATH": str(workdir / "state"),
        "MAX_ITERATIONS": str(STEPS + 1),
        "PYTHONPATH": str(REPO),  # this checkout's code, not the venv's install
    }
    with MeasuredModel(script(workspace)) as model:
        env["LLM_BASE_URL"] = model.base_url
        proc = subprocess.run(
            [*CLI, "-t", TASK, "-d", str(workspace)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    assert len(model.sizes) == STEPS, f"{len(model.sizes)} requests, expected {STEPS}"
    return model.sizes, model.requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--mini",
        metavar="PYTHON",
        help="a python with mini-swe-agent installed (a scratch venv): run the same task "
        "through it and compare with the measured figures instead of the issue's",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sizes, bodies = run(Path(tmp))
    how, count = _tokens()
    texts = [json.dumps(b, separators=(",", ":")) for b in bodies]
    total, first = sum(sizes), sizes[0]
    mini_total, mini_first, source = MINI_50_STEPS, MINI_FIRST, "the issue's figures"
    if args.mini:
        with tempfile.TemporaryDirectory() as tmp:
            mini = run_mini(args.mini, Path(tmp))
        mini_total, mini_first, source = sum(mini), mini[0], "measured, same task"
    ratio = total / mini_total
    verdict = "PASS" if ratio <= TARGET else "MISS"
    metadata = sum(len(m.group(0)) for text in texts for m in _METADATA.finditer(text))
    print(f"token bill, {STEPS}-step scripted task (tokens: {how})")
    print(f"  runhands: {total:,} bytes (~{sum(map(count, texts)):,} tokens) over {STEPS} steps")
    print(
        f"    of which OpenHands' metadata lines of command results (cwd, python, finished): "
        f"{metadata:,} bytes ({metadata / total:.0%})"
    )
    print(f"  runhands first request: {first:,} bytes (~{count(texts[0]):,} tokens)")
    print(f"  mini-swe-agent ({source}): {mini_total:,} bytes, first request {mini_first:,}")
    print(
        f"  ratio to mini: {ratio:.2f}x over {STEPS} steps (target <= {TARGET}x: {verdict}); "
        f"first request {first / mini_first:.2f}x"
    )


def view_cost_ms(steps: int = 500, output_kb: int = 30) -> float:
    """What building the view sent to the model costs per request late in a long run:
    `steps` command results of `output_kb` KB each (controller/agent/lean_view.py)."""
    import time

    from controller.agent.lean_view import model_view
    from controller.trajectory.command_text import exit_line, join_command_text

    output = "\n".join("x" * 99 for _ in range(output_kb * 10))
    text = join_command_text(output, exit_line(0), cwd="/w", python="/usr/bin/python", exit_code=0)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "s"}]
    for n in range(steps):
        call = {"id": f"c{n}", "type": "function", "function": {"name": "x", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": text})
    start = time.perf_counter()
    model_view(messages, 5)
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    main()
    print(f"  building the view sent, 500 results of 30 KB: {view_cost_ms():.1f} ms a request")
