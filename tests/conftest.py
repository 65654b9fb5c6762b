"""Shared fixtures: the scripted model server and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.scripted_model import ScriptedModel, Turn

REPO = Path(__file__).resolve().parent.parent
# Looks like a key, and must never appear in any file, log or output.
TEST_API_KEY = "test-key-DO-NOT-LEAK-7f3a9c1e5b"


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    """Runs the CLI in a child process with an isolated HOME and workspace."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.workspace = tmp_path / "workspace"
        self.state_dir = self.home / ".openhands-state"
        self.home.mkdir()
        self.workspace.mkdir()
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "LANG": "C.UTF-8",
            "LLM_MODEL": "openai/scripted-model",
            "LLM_API_KEY": TEST_API_KEY,
            "LLM_NUM_RETRIES": "2",
            "LLM_RETRY_MIN_WAIT": "0.01",
            "LLM_RETRY_MAX_WAIT": "0.05",
            "SANDBOX_SOFT_TIMEOUT": "5",
        }

    def run(
        self,
        *args: str,
        model: ScriptedModel | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 120,
        fresh: bool = False,
    ) -> CliResult:
        """`runhands ARGS`, forked from this process (litellm already imported: the ~3.5 s
        import is paid once per test process), or with `fresh` a new interpreter running
        `python -m controller` (the entry point itself)."""
        full_env = dict(self.env)
        if model is not None:
            full_env["LLM_BASE_URL"] = model.base_url
        full_env.update(env or {})
        if not fresh:
            from tests.forked_cli import run_forked

            done = run_forked(
                list(args), env=full_env, cwd=self.workspace, timeout=timeout, stdin=stdin
            )
            return CliResult(done.code, done.stdout, done.stderr)
        proc = subprocess.run(
            [sys.executable, "-m", "controller", *args],
            cwd=self.workspace,
            env=full_env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def saved_bytes(self) -> bytes:
        """Everything runhands wrote under the state directory."""
        if not self.state_dir.exists():
            return b""
        return b"".join(p.read_bytes() for p in sorted(self.state_dir.rglob("*")) if p.is_file())

    def run_dirs(self) -> list[Path]:
        if not self.state_dir.exists():
            return []
        return sorted(p for p in self.state_dir.iterdir() if p.is_dir())


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def scripted():
    """`with scripted([...]) as model:` starts a scripted model server for one test."""
    servers: list[ScriptedModel] = []

    def start(script: Iterable[Turn]) -> ScriptedModel:
        server = ScriptedModel(script)
        servers.append(server)
        return server.__enter__()

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def require_bwrap() -> None:
    """Skip a test that needs bubblewrap where it cannot work; under CI it must."""
    from sandbox.isolation import bwrap_problem, find_bwrap

    problem = bwrap_problem(find_bwrap())
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (under CI the isolation tests must run)")
    pytest.skip(problem)
