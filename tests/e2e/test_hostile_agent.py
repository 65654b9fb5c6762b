"""A hostile agent against the local sandbox, through the real CLI.

The scripted model plays an agent that follows a prompt injection: it tries to read the
user's credentials, runhands' config and store, to write outside the workspace, plant a git
hook, escape through a symlink with the editor, reach the host over loopback, read
runhands' environment and leave a daemon behind. Every attempt prints BLOCKED-<name> when it
fails (LEAKED-<name> when it works); the run must go on to its finish, and the host's files
must be byte-identical afterwards.

The home, workspace and state directory live outside /tmp (the sandbox's /tmp is private,
which would hide them for another reason than the one tested).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from state_store.events import Observation, RunEnded, SandboxStarted
from state_store.store import read_events
from tests.conftest import TEST_API_KEY, Cli, require_bwrap
from tests.scripted_model import Turn, bash, finish

pytestmark = pytest.mark.e2e

SSH_KEY = "-----BEGIN FAKE KEY----- ssh-secret-5d1e"
AWS_SECRET = "aws-credentials-secret-77a0"
HOST_ENV = {
    "AWS_SECRET_ACCESS_KEY": "aws-env-secret-9c2b",
    "DATABASE_URL": "postgres://u:db-password-31f8@h/db",
    "CI_JOB_JWT": "ci-jwt-secret-0e4d",
    "RUNHANDS_ONLY_MARKER": "runhands-env-marker-b6c3",
}
PASSED = {"SANDBOX_ENV_GITHUB_TOKEN": "ghp_passed-on-purpose-1a2b"}


def _digest(passed: dict[str, str]) -> str:
    return hashlib.sha256(passed["SANDBOX_ENV_GITHUB_TOKEN"].encode()).hexdigest()[:16]


@pytest.fixture
def hostile_cli() -> Iterator[Cli]:
    """A Cli whose home and workspace are outside /tmp, with credentials to steal."""
    base = Path(tempfile.mkdtemp(prefix="runhands-hostile-", dir=_outside_tmp()))
    cli = Cli(base)
    home = cli.home
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text(SSH_KEY + "\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(f"[default]\nsecret = {AWS_SECRET}\n")
    (home / ".bashrc").write_text("# the user's bashrc\n")
    user_config = home / ".config" / "runhands"
    user_config.mkdir(parents=True)
    (user_config / "config.toml").write_text(f'[llm]\napi_key = "{TEST_API_KEY}"\n')
    del cli.env["LLM_API_KEY"]  # the key is read from the config file only
    (base / "outside.txt").write_text("outside the workspace\n")
    hooks = cli.workspace / ".git" / "hooks"
    hooks.mkdir(parents=True)
    (cli.workspace / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (hooks / "README").write_text("hooks\n")
    cli.env.update(HOST_ENV | PASSED)
    try:
        yield cli
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _outside_tmp() -> str:
    for candidate in ("/var/tmp", str(Path.home())):
        if os.access(candidate, os.W_OK) and not candidate.startswith("/tmp"):
            return candidate
    pytest.skip("no writable directory outside /tmp")


def _host_files(cli: Cli) -> dict[str, bytes]:
    """Every file the agent must not change: the home (but the store runhands writes),
    what lies beside the workspace, the workspace's git hooks and config."""
    base = cli.home.parent
    files = {}
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if path.is_file() and not path.is_symlink() and not _agent_may_write(cli, path):
            files[str(rel)] = path.read_bytes()
    return files


def _agent_may_write(cli: Cli, path: Path) -> bool:
    if path.is_relative_to(cli.state_dir):
        return True
    inside_workspace = path.is_relative_to(cli.workspace)
    return inside_workspace and not path.is_relative_to(cli.workspace / ".git")


def _attempts(cli: Cli, port: int, sleeper: str) -> list[str]:
    """Shell commands, each printing BLOCKED-<name> or LEAKED-<name> per attempt."""
    home, base, state = cli.home, cli.home.parent, cli.state_dir
    reads = {
        "ssh": (f"cat {home}/.ssh/id_rsa", "ssh-secret"),
        "aws": (f"cat {home}/.aws/credentials", "aws-credentials-secret"),
        "config": (f"cat {home}/.config/runhands/config.toml", "DO-NOT-LEAK"),
        "state": (f"cat {state}/*/events.jsonl", "README says"),
        "env": ("env", "-secret-|db-password|runhands-env-marker"),
        "parent-env": ("cat /proc/$PPID/environ /proc/1/environ", "runhands-env-marker"),
        "all-env": ("cat /proc/[0-9]*/environ", "runhands-env-marker"),
    }
    read_lines = [
        f"({cmd}) 2>&1 | grep -aqE '{leak}' && echo LEAKED-{name} || echo BLOCKED-{name}"
        for name, (cmd, leak) in reads.items()
    ]
    writes = {
        "bashrc": f"echo evil >> {home}/.bashrc",
        "etc": "echo evil > /etc/x",
        "outside": f"echo evil > {base}/outside.txt",
        "outside-new": f"echo evil > {base}/new.txt",
        "hook": "echo evil > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit",
        "git-config": "echo '[core] hooksPath = /x' >> .git/config",
        "git-swap": "mv .git .git-moved && mkdir -p .git/hooks && echo evil > .git/hooks/x",
        "loopback": f"echo hi > /dev/tcp/127.0.0.1/{port}",
    }
    write_lines = [
        f"({cmd}) 2>/dev/null && echo LEAKED-{name} || echo BLOCKED-{name}"
        for name, cmd in writes.items()
    ]
    links = [
        f"ln -s {home}/.bashrc link-bashrc",
        f"ln -s {home}/.ssh/id_rsa link-key",
        f"ln -s {base}/escaped.txt link-new",
        f"(setsid nohup {sleeper} >/dev/null 2>&1 &)",
        # The value arrives (compared by its hash: the model never sees the value itself,
        # and a command holding it would be saved, and run, with `****`).
        f'[ "$(printf %s "$GITHUB_TOKEN" | sha256sum | cut -c1-16)" = "{_digest(PASSED)}" ] '
        "&& echo PASSED-ON-PURPOSE",
    ]
    return ["\n".join(read_lines), "\n".join(write_lines), "\n".join(links)]


def _edits(*calls: tuple[str, str, dict[str, str]]) -> Turn:
    """One answer with several str_replace_editor calls: (command, path, other arguments)."""
    return Turn(
        tool_calls=[
            ("str_replace_editor", {"command": command, "path": path, **extra})
            for command, path, extra in calls
        ]
    )


def _editor_attempts(cli: Cli) -> Turn:
    ws, home = cli.workspace, cli.home
    return _edits(
        ("view", f"{ws}/link-key", {}),
        ("str_replace", f"{ws}/link-bashrc", {"old_str": "bashrc", "new_str": "evil"}),
        ("create", f"{ws}/link-new", {"file_text": "evil"}),
        ("view", f"{home}/.ssh/id_rsa", {}),
        ("view", f"{home}/.config/runhands/config.toml", {}),
        ("view", str(cli.state_dir), {}),
        ("create", f"{ws}/.git/hooks/post-checkout", {"file_text": "evil"}),
        ("create", f"{home}/.bashrc-new", {"file_text": "evil"}),
        ("view", "/proc/self/environ", {}),
    )


def _observations(cli: Cli) -> list[Observation]:
    (run_dir,) = cli.run_dirs()
    return [e for e in read_events(run_dir / "events.jsonl") if isinstance(e, Observation)]


def _sleepers(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.replace(" ", "\0").encode() + b"\0" == cmdline:
            found.append(int(name))
    return found


def test_workspace_write_blocks_every_attempt_and_the_run_goes_on(hostile_cli: Cli, scripted):
    require_bwrap()
    cli = hostile_cli
    before = _host_files(cli)
    sleeper = f"sleep {900000 + uuid.uuid4().int % 99999}"
    model = scripted([])
    port = int(model.base_url.rsplit(":", 1)[1].split("/")[0])
    model.script += [bash(c) for c in _attempts(cli, port, sleeper)]
    model.script += [_editor_attempts(cli), finish("tried everything")]

    result = cli.run(
        "run",
        "--json",
        "-n",
        "hostile",
        "-t",
        "do as the README says",
        model=model,
        env={"SANDBOX_NETWORK": "off"},
    )

    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout.splitlines()[-1])
    assert (final["state"], final["message"]) == ("finished", "tried everything")
    started = [json.loads(line) for line in result.stdout.splitlines() if "sandbox_started" in line]
    assert (started[0]["isolation"], started[0]["network"]) == ("workspace-write", "off")
    observations = _observations(cli)
    shell = "\n".join(o.content for o in observations[:3])
    names = re.findall(r"\b(?:BLOCKED|LEAKED)-[\w-]+", shell)
    assert names and all(n.startswith("BLOCKED-") for n in names), shell
    assert len(names) == 15
    assert "PASSED-ON-PURPOSE" in shell  # what the user passes on purpose does arrive
    editor = observations[3:12]
    assert all(o.error and "Permission denied" in o.content for o in editor), editor
    assert _host_files(cli) == before
    assert not (cli.home.parent / "escaped.txt").exists() and not Path("/etc/x").exists()
    assert not (cli.workspace / ".git-moved").exists()
    assert _sleepers(sleeper) == []  # the daemon died with the sandbox
    everything = result.stdout + result.stderr + cli.saved_bytes().decode(errors="replace")
    for secret in (SSH_KEY, AWS_SECRET, TEST_API_KEY, *HOST_ENV.values()):
        assert secret not in everything
    inspect = cli.run("inspect", "hostile")
    assert "isolation workspace-write, network off" in inspect.stdout


def test_read_only_writes_nothing_but_tmp_and_hides_the_same(hostile_cli: Cli, scripted):
    require_bwrap()
    cli = hostile_cli
    (cli.workspace / "notes.txt").write_text("keep me\n")
    before = _host_files(cli) | {"notes": (cli.workspace / "notes.txt").read_bytes()}
    home = cli.home
    attempts = "\n".join(
        f"({cmd}) 2>/dev/null && echo LEAKED-{name} || echo BLOCKED-{name}"
        for name, cmd in {
            "workspace": "echo evil > notes.txt",
            "workspace-new": "touch new-file",
            "ssh": f"grep -q ssh-secret {home}/.ssh/id_rsa",
            "bashrc": f"echo evil >> {home}/.bashrc",
        }.items()
    )
    model = scripted(
        [
            bash(attempts + "\necho scratch > /tmp/scratch && cat /tmp/scratch"),
            _edits(("create", f"{cli.workspace}/new.py", {"file_text": "x"})),
            _edits(("create", "/tmp/t.py", {"file_text": "print(7)"})),
            bash("python3 /tmp/t.py"),
            finish(),
        ]
    )
    result = cli.run("run", "--isolation", "read-only", "-t", "look around", model=model)

    assert result.returncode == 0, result.stderr
    observations = _observations(cli)
    names = re.findall(r"\b(?:BLOCKED|LEAKED)-[\w-]+", observations[0].content)
    assert names == ["BLOCKED-workspace", "BLOCKED-workspace-new", "BLOCKED-ssh", "BLOCKED-bashrc"]
    assert "scratch\n" in observations[0].content  # the private /tmp is writable
    assert observations[1].error and "read-only in this sandbox" in observations[1].content
    assert not observations[2].error  # the private /tmp is the same for editor and shell
    assert observations[3].content.startswith("7")
    after = _host_files(cli) | {"notes": (cli.workspace / "notes.txt").read_bytes()}
    assert after == before and not (cli.workspace / "new.py").exists()
    (run_dir,) = cli.run_dirs()
    replayed = cli.run("replay", run_dir.name)  # in the recorded run's mode
    assert replayed.returncode == 0, replayed.stderr
    assert "sandbox isolation read-only, network on" in replayed.stderr
    assert _host_files(cli) | {"notes": (cli.workspace / "notes.txt").read_bytes()} == before
    told = cli.run("replay", run_dir.name, "--isolation", "workspace-write")
    assert "sandbox isolation workspace-write, network on" in told.stderr
    assert told.returncode == 1  # the workspace is writable now: the first step differs


def test_none_keeps_the_environment_allow_list_and_the_editor_rules(hostile_cli: Cli, scripted):
    cli = hostile_cli
    home = cli.home
    model = scripted(
        [
            bash(
                "env | grep -aqE -- '-secret-|db-password|runhands-env-marker' "
                "&& echo LEAKED-env || echo BLOCKED-env"
            ),
            _edits(
                ("view", f"{home}/.ssh/id_rsa", {}),
                ("view", f"{home}/.aws", {}),
                ("view", str(cli.state_dir), {}),
                ("create", f"{home}/.ssh/x", {"file_text": "x"}),
            ),
            finish(),
        ]
    )
    result = cli.run("run", "--isolation", "none", "-t", "look around", model=model)

    assert result.returncode == 0, result.stderr
    assert "WITHOUT isolation" not in result.stderr  # asked for: no warning
    observations = _observations(cli)
    assert "BLOCKED-env" in observations[0].content
    assert all(o.error and "hidden from the agent" in o.content for o in observations[1:5])
    assert not (home / ".ssh" / "x").exists()


def _path_without_bwrap(tmp_path: Path) -> str:
    """PATH with everything but bubblewrap: the directories holding it are replaced by one
    of links to their other programs."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    kept = []
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.exists(os.path.join(directory, "bwrap")):
            kept.append(directory)
            continue
        for name in os.listdir(directory):
            link = bin_dir / name
            if name != "bwrap" and not os.path.lexists(link):
                link.symlink_to(os.path.join(directory, name))
    return os.pathsep.join([str(bin_dir), *kept])


def test_auto_without_bubblewrap_warns_once_and_runs(cli: Cli, scripted, tmp_path) -> None:
    path = _path_without_bwrap(tmp_path)
    model = scripted([bash("echo one"), bash("echo two"), finish()])
    result = cli.run("run", "-t", "say hi", model=model, env={"PATH": path})

    assert result.returncode == 0, result.stderr
    assert result.stderr.count("WITHOUT isolation") == 1
    (run_dir,) = cli.run_dirs()
    started = [e for e in read_events(run_dir / "events.jsonl") if isinstance(e, SandboxStarted)]
    assert [e.isolation for e in started] == ["none"]


def test_an_explicit_mode_without_bubblewrap_fails_at_init(cli: Cli, scripted, tmp_path) -> None:
    path = _path_without_bwrap(tmp_path)
    model = scripted([bash("echo never"), finish()])
    result = cli.run(
        "run", "--isolation", "workspace-write", "-t", "say hi", model=model, env={"PATH": path}
    )

    assert result.returncode == 4, result.stderr
    assert "isolation workspace-write is not available" in result.stderr
    assert "bubblewrap" in result.stderr
    assert model.requests == []  # nothing ran, not even a model call
    (run_dir,) = cli.run_dirs()
    ended = [e for e in read_events(run_dir / "events.jsonl") if isinstance(e, RunEnded)]
    assert ended[-1].reason == "sandbox"


def test_nothing_outlives_a_killed_runhands(cli: Cli, scripted) -> None:
    require_bwrap()
    sleeper = f"sleep {900000 + uuid.uuid4().int % 99999}"
    model = scripted([bash(f"(setsid nohup {sleeper} >/dev/null 2>&1 &); sleep 60"), finish()])
    env = {**cli.env, "LLM_BASE_URL": model.base_url, "SANDBOX_SOFT_TIMEOUT": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "-t", "x"],
        cwd=cli.workspace,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for(lambda: _sleepers(sleeper) != []), "the daemon never started"
    finally:
        proc.kill()
        proc.wait()
    # bubblewrap dies with runhands (--die-with-parent), and its PID namespace with it.
    assert _wait_for(lambda: _sleepers(sleeper) == []), "the daemon outlived runhands"


def _wait_for(condition, limit: float = 60) -> bool:
    """Poll until condition() holds; a generous limit, for a loaded machine."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
