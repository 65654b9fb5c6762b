"""The local sandbox's isolation: the mount plan and the editor's policy (no bubblewrap
needed), then real sandboxes under bubblewrap (its terminal, namespaces, process limit),
then how the controller picks the mode and builds the environment."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.config import load_config
from controller.run import sandbox_for_config
from controller.run.sandbox_for_config import hidden_host_paths, local_isolation
from controller.run.setup import sandbox_environment
from sandbox import LocalSandbox, SandboxError
from sandbox.editor import Editor
from sandbox.isolation import (
    IsolationSettings,
    PathPolicy,
    bwrap_problem,
    find_bwrap,
    plan_mounts,
)
from tests.conftest import require_bwrap


@pytest.fixture
def tree() -> Iterator[Path]:
    """A home with a key and a bashrc, a workspace that is a git repository, a private dir;
    outside /tmp, which the sandbox replaces by its own."""
    base = Path(tempfile.mkdtemp(prefix="runhands-isolation-", dir="/var/tmp"))
    (base / "home" / ".ssh").mkdir(parents=True)
    (base / "home" / ".ssh" / "id_rsa").write_text("KEY\n")
    (base / "home" / ".bashrc").write_text("# rc\n")
    (base / "ws" / ".git" / "hooks").mkdir(parents=True)
    (base / "ws" / ".git" / "config").write_text("[core]\n")
    (base / "private" / "tmp").mkdir(parents=True)
    (base / "private" / "empty").mkdir()
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _policy(tree: Path, mode: str = "workspace-write", **extra: object) -> PathPolicy:
    hidden = (str(tree / "home" / ".ssh"), str(tree / "home" / ".aws"))
    settings = IsolationSettings(mode=mode, hidden_paths=hidden, **extra)  # type: ignore[arg-type]
    mounts = plan_mounts(str(tree / "ws"), settings, str(tree / "private"))
    return PathPolicy(settings.mode, mounts, hidden)


# -- the policy, without bubblewrap -----------------------------------------------------------


def test_symlinks_are_followed_as_the_shell_would_before_checking(tree: Path) -> None:
    policy = _policy(tree)
    ws = tree / "ws"
    (ws / "key").symlink_to(tree / "home" / ".ssh" / "id_rsa")
    (ws / "rc").symlink_to("../home/.bashrc")  # relative, through ..
    (ws / "chain").symlink_to(ws / "rc")
    (ws / "dir").symlink_to(tree / "home")

    with pytest.raises(PermissionError, match="hidden from the agent"):
        policy.check_read(str(ws / "key"))
    with pytest.raises(PermissionError, match="hidden"):
        policy.check_read(str(ws / "dir" / ".ssh" / "id_rsa"))
    with pytest.raises(PermissionError, match="read-only in this sandbox"):
        policy.check_write(str(ws / "chain"))
    with pytest.raises(PermissionError, match="read-only"):
        policy.check_write(str(ws / "sub" / ".." / ".." / "home" / ".bashrc"))
    assert policy.check_read(str(ws / "chain")) == str(tree / "home" / ".bashrc")
    assert policy.check_write(str(ws / "new" / "file.py")) == str(ws / "new" / "file.py")


def test_hidden_paths_are_refused_even_when_absent_and_in_mode_none(tree: Path) -> None:
    policy = PathPolicy.unisolated([str(tree / "home" / ".aws"), str(tree / "home" / ".ssh")])
    with pytest.raises(PermissionError, match="hidden"):
        policy.check_write(str(tree / "home" / ".aws" / "credentials"))
    with pytest.raises(PermissionError, match="hidden"):
        policy.check_read(str(tree / "home" / ".ssh"))
    # Mode none constrains nothing else.
    assert policy.check_write(str(tree / "home" / ".bashrc")) == str(tree / "home" / ".bashrc")


def test_git_hooks_config_and_dot_openhands_are_read_only(tree: Path) -> None:
    (tree / "ws" / ".openhands").mkdir()
    policy = _policy(tree)
    for path in (".git/hooks/pre-commit", ".git/config", ".openhands/setup.sh"):
        with pytest.raises(PermissionError, match="read-only"):
            policy.check_write(str(tree / "ws" / path))
    assert policy.check_write(str(tree / "ws" / ".git" / "index"))  # commits still work


def test_the_private_tmp_and_kernel_files(tree: Path) -> None:
    policy = _policy(tree, mode="read-only")
    assert policy.check_write("/tmp/x.py") == str(tree / "private" / "tmp" / "x.py")
    with pytest.raises(PermissionError, match="read-only"):
        policy.check_write(str(tree / "ws" / "file"))
    for special in ("/proc/self/environ", "/dev/zero", "/sys/kernel"):
        with pytest.raises(PermissionError, match="kernel or device file"):
            policy.check_read(special)


def test_a_symlink_loop_is_an_error_not_a_hang(tree: Path) -> None:
    (tree / "ws" / "a").symlink_to(tree / "ws" / "b")
    (tree / "ws" / "b").symlink_to(tree / "ws" / "a")
    with pytest.raises(OSError) as caught:
        _policy(tree).check_read(str(tree / "ws" / "a"))
    assert caught.value.errno == errno.ELOOP


def test_hidden_inside_the_workspace_and_workspace_inside_hidden(tree: Path) -> None:
    state = tree / "ws" / "deep" / "state"
    state.mkdir(parents=True)
    settings = IsolationSettings(
        mode="workspace-write", hidden_paths=(str(state), str(tree / "home"))
    )
    mounts = plan_mounts(str(tree / "ws"), settings, str(tree / "private"))
    policy = PathPolicy(settings.mode, mounts, settings.hidden_paths)
    with pytest.raises(PermissionError, match="hidden"):
        policy.check_read(str(state / "events.jsonl"))
    # The way to it is a mount point, so it cannot be moved out from under its cover.
    assert (str(tree / "ws" / "deep"), "rw") in [(m.target, m.kind) for m in mounts]
    hidden_home = IsolationSettings(mode="workspace-write", hidden_paths=(str(tree),))
    with pytest.raises(SandboxError, match="hidden"):
        plan_mounts(str(tree), hidden_home, str(tree / "private"))
    inner = plan_mounts(str(tree / "ws"), hidden_home, str(tree / "private"))
    assert PathPolicy("workspace-write", inner, [str(tree)]).check_write(str(tree / "ws" / "f"))


def test_writable_paths_must_exist(tree: Path) -> None:
    settings = IsolationSettings(mode="workspace-write", writable_paths=(str(tree / "nope"),))
    with pytest.raises(SandboxError, match="writable_paths"):
        plan_mounts(str(tree / "ws"), settings, str(tree / "private"))


# -- real sandboxes under bubblewrap ----------------------------------------------------------


@pytest.fixture
def isolated(tree: Path) -> Iterator[LocalSandbox]:
    require_bwrap()
    settings = IsolationSettings(
        mode="workspace-write",
        network="off",
        hidden_paths=(str(tree / "home" / ".ssh"), str(tree / "ws" / "state")),
        max_processes=40,
    )
    (tree / "ws" / "state").mkdir()
    (tree / "ws" / "state" / "events.jsonl").write_text("secret log\n")
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    box = LocalSandbox(str(tree / "ws"), soft_timeout=0.5, env=env, isolation=settings)
    box.start()
    yield box
    box.close()


def test_the_shell_keeps_its_terminal_and_job_control(isolated: LocalSandbox) -> None:
    out = isolated.run("tty; set -o | grep -c 'monitor.*on'; echo $HOME; pwd").output
    assert out.split() == ["/dev/console", "1", "/tmp/home", isolated.workdir]
    assert isolated.run("sleep 30").still_running
    interrupted = isolated.run("C-c", is_input=True)
    assert not interrupted.still_running and interrupted.exit_code == 130
    timed_out = isolated.run("sleep 30", timeout=1)
    assert timed_out.timed_out and timed_out.still_running  # left running, as in OpenHands
    assert isolated.run("C-c", is_input=True).exit_code == 130
    assert isolated.run("echo back").output == "back\n"
    gone = isolated.run("exit 3")
    assert gone.exit_code == 3
    assert isolated.run("echo fresh; ls /tmp").output == "fresh\nhome\n"


def test_namespaces_and_a_process_limit(isolated: LocalSandbox) -> None:
    seen = isolated.run("ps -e --no-headers | wc -l; cat /proc/sys/kernel/hostname").output
    assert int(seen.split()[0]) <= 3  # bash, ps, wc: nothing of the host
    blocked = isolated.run("echo x > /proc/sys/kernel/hostname || echo BLOCKED").output
    assert "BLOCKED" in blocked
    assert isolated.process_limit in ("cgroup", "rlimit")
    fork_bomb = (
        "import os, time\nn = 0\ntry:\n    for _ in range(100):\n"
        "        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n"
        '        n += 1\nexcept OSError as e:\n    print("refused", e.errno)\nprint(n)'
    )
    out = isolated.run(f"python3 -c '{fork_bomb}'", timeout=20).output.split()
    assert out[:2] == ["refused", str(errno.EAGAIN)]
    assert int(out[2]) < 40


def test_hidden_paths_in_the_workspace_cannot_be_moved_aside(isolated: LocalSandbox) -> None:
    out = isolated.run(
        "cat state/events.jsonl; mv state state2 || echo BLOCKED-mv; "
        "mv .git .git2 || echo BLOCKED-git; ls -A state | wc -l"
    ).output
    assert "secret log" not in out
    assert "BLOCKED-mv" in out and "BLOCKED-git" in out
    assert out.split()[-1] == "0"
    assert Path(isolated.workdir, "state", "events.jsonl").read_text() == "secret log\n"


def test_the_editor_and_the_shell_share_the_private_tmp(isolated: LocalSandbox) -> None:
    editor = Editor(isolated)
    assert not editor.execute("create", "/tmp/probe.py", file_text="print(41 + 1)").error
    assert isolated.run("python3 /tmp/probe.py").output == "42\n"
    isolated.run("mkdir -p /tmp/made && echo hi > /tmp/made/f")
    listing = editor.execute("view", "/tmp").output
    assert "/tmp/made/f" in listing and "/tmp/probe.py" in listing


def test_network_off_means_no_loopback_of_the_host(isolated: LocalSandbox) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        out = isolated.run(f"echo hi > /dev/tcp/127.0.0.1/{port} && echo OPEN || echo CLOSED")
    assert out.output.strip().endswith("CLOSED")


def test_a_mode_that_cannot_be_had_fails_to_start(tree: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tree))  # no bubblewrap there
    box = LocalSandbox(str(tree / "ws"), isolation=IsolationSettings(mode="read-only"))
    with pytest.raises(SandboxError, match="isolation read-only is not available"):
        box.start()
    box.close()
    unisolated = LocalSandbox(str(tree / "ws"), isolation=IsolationSettings(network="off"))
    with pytest.raises(SandboxError, match="network"):
        unisolated.start()


# -- choosing the mode, the environment --------------------------------------------------------


def test_auto_is_workspace_write_with_bubblewrap_else_none_with_one_warning(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    config = load_config(environ={}, cwd=str(tmp_path), user_config_dir=str(tmp_path)).config
    if bwrap_problem(find_bwrap()) is None:
        assert local_isolation(config).mode == "workspace-write"
    monkeypatch.setenv("PATH", str(tmp_path))
    sandbox_for_config._warn_unisolated.cache_clear()
    modes = [local_isolation(config).mode for _ in range(3)]
    assert modes == ["none"] * 3
    assert capsys.readouterr().err.count("WITHOUT isolation") == 1
    assert local_isolation(config, mode="read-only").mode == "read-only"  # never weaker


def test_hidden_host_paths_cover_runhands_and_credentials(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    env = {"FILE_STORE_PATH": str(tmp_path / "store"), "SANDBOX_HIDDEN_PATHS": "~/secrets"}
    config = load_config(environ=env, cwd=str(tmp_path), user_config_dir=str(tmp_path)).config
    hidden = set(hidden_host_paths(config))
    expected = [
        "store",
        "config.toml",
        ".env",
        ".config/runhands",
        ".ssh",
        ".aws",
        ".kube",
        ".netrc",
        ".git-credentials",
        "secrets",
    ]
    assert {str(tmp_path / name) for name in expected} <= hidden


def test_the_environment_is_an_allow_list_plus_what_is_passed_on_purpose(tmp_path: Path) -> None:
    host = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TZ": "UTC",
        "DATABASE_URL": "postgres://u:pw@h/db",
        "CI_JOB_JWT": "jwt",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "SANDBOX_ENV_GITHUB_TOKEN": "ghp_x",
    }
    env = {**host, "SANDBOX_RUNTIME_STARTUP_ENV_VARS": '{"FROM_CONFIG": "yes"}'}
    config = load_config(environ=env, cwd=str(tmp_path), user_config_dir=str(tmp_path))
    assert config.warnings == []  # SANDBOX_ENV_* are not settings, nor errors
    assert sandbox_environment(config.config, host) == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TZ": "UTC",
        "GITHUB_TOKEN": "ghp_x",
        "FROM_CONFIG": "yes",
    }


def test_isolation_flag_is_a_setting_with_its_source(tmp_path: Path) -> None:
    loaded = load_config(
        environ={"SANDBOX_ISOLATION": "none"},
        flags={"sandbox.isolation": "read-only"},
        cwd=str(tmp_path),
        user_config_dir=str(tmp_path),
    )
    assert loaded.config.sandbox.isolation == "read-only"
    assert loaded.sources["sandbox.isolation"] == "flag --isolation"


def test_what_a_killed_runhands_left_is_removed_by_the_next_sandbox(tree: Path) -> None:
    require_bwrap()
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout
    left = Path(tempfile.gettempdir(), f"runhands-sandbox-{dead.strip()}-leftover")
    (left / "tmp").mkdir(parents=True)
    box = LocalSandbox(str(tree / "ws"), isolation=IsolationSettings(mode="read-only"))
    box.start()
    box.close()
    assert not left.exists()
