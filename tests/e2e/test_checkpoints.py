"""Workspace checkpoints through the real CLI: per-step diffs, the run's patch, fork and
rewind, on a workspace that is the user's own git repository with uncommitted changes.

The model follows a fixed script by position (tests/fixed_script.py), so a fork's model
picks up the script exactly where the fork's history stops. What a checkpoint holds is
read independently of our code with `git archive`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from state_store.events import Checkpoint, ModelResponse, RunEnded
from state_store.store import read_events
from tests.conftest import TEST_API_KEY, Cli
from tests.fixed_script import Step, bash, edit, fixed_script
from tests.scripted_model import ScriptedModel

pytestmark = pytest.mark.e2e

APP = "{workspace}/src/app.py"
SCRIPT: list[Step] = [
    [bash("mkdir -p src/sub && printf 'print(1)\\n' > src/sub/new.py")],  # 1: sub-directory
    [edit(command="str_replace", path=APP, old_str="x = 1", new_str="x = 2")],  # 2: edit
    [bash("mv src/app.py src/main.py")],  # 3: rename
    [bash("printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod +x run.sh")],  # 4: exec bit
    [bash("printf 'a\\000b\\377' > blob.bin")],  # 5: a binary file
    [bash("mkdir -p build && echo junk > build/out.o")],  # 6: ignored by .gitignore
    [bash("rm notes.txt")],  # 7: delete
    [("think", {"thought": "all done"})],  # 8: changes nothing
    [("finish", {"message": "finished the steps"})],  # 9
    [bash("echo more >> more.txt")],  # 10: for runs that go on (forks, rewinds)
    [bash("echo again >> more.txt")],  # 11
    [("finish", {"message": "finished again"})],  # 12
]
RUN = "parent"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=m"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repository(workspace: Path) -> str:
    """The user's project: committed files, a .gitignore, and an uncommitted edit."""
    (workspace / "src").mkdir()
    (workspace / "src" / "app.py").write_text("x = 1\nprint(x)\n")
    (workspace / "notes.txt").write_text("keep notes\n")
    (workspace / "README.md").write_text("hello\n")
    (workspace / ".gitignore").write_text("build/\n")
    git(workspace, "init", "-q")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "base")
    (workspace / "README.md").write_text("hello\nlocal edit, not committed\n")
    return git(workspace, "rev-parse", "HEAD").strip()


def files_of(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file under root (but .git and build/): content and exec bit."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in {".git", "build"} or not path.is_file():
            continue
        found[rel] = (path.read_bytes(), os.access(path, os.X_OK))
    return found


def dot_git(workspace: Path) -> dict[str, tuple[str, int]]:
    """The user's .git, byte for byte (content hash and mode of every file)."""
    return {
        p.relative_to(workspace).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mode,
        )
        for p in sorted((workspace / ".git").rglob("*"))
        if p.is_file()
    }


def archived(run_dir: Path, tree: str) -> dict[str, tuple[bytes, bool]]:
    """A checkpoint's files as `git archive` gives them (independent of runhands' code)."""
    data = subprocess.run(
        ["git", "--git-dir", str(run_dir / "checkpoints"), "archive", "--format=tar", tree],
        check=True,
        capture_output=True,
    ).stdout
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                content = tar.extractfile(member).read()  # type: ignore[union-attr]
                found[member.name] = (content, bool(member.mode & 0o100))
    return found


def step_trees(run_dir: Path) -> dict[int, str]:
    """The checkpoint in force at the end of each step (its last one)."""
    trees: dict[int, str] = {}
    for event in read_events(run_dir / "events.jsonl"):
        if isinstance(event, Checkpoint):
            trees[event.step] = event.tree
    for step in range(1, 10):
        trees.setdefault(step, trees[step - 1])
    return trees


class Parent:
    """One scripted run of the first 9 steps, shared by the read-only tests."""

    def __init__(self, root: Path) -> None:
        self.cli = Cli(root)
        self.base = make_repository(self.cli.workspace)
        self.git_before = dot_git(self.cli.workspace)
        self.model = ScriptedModel(fixed_script(SCRIPT, self.cli.workspace)).__enter__()
        result = self.cli.run("run", "-n", RUN, "--json", "-t", "do the steps", model=self.model)
        assert result.returncode == 0, result.stderr
        self.ended = json.loads(result.stdout.splitlines()[-1])
        self.run_dir = self.cli.state_dir / RUN
        self.trees = step_trees(self.run_dir)

    def runhands(self, *args: str, model: ScriptedModel | None = None) -> Any:
        return self.cli.run(*args, model=model)


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory):
    made = Parent(tmp_path_factory.mktemp("checkpoints"))
    yield made
    made.model.__exit__(None, None, None)


def test_every_step_is_checkpointed_and_the_end_says_what_changed(parent: Parent) -> None:
    events = read_events(parent.run_dir / "events.jsonl")
    first = next(e for e in events if isinstance(e, Checkpoint))
    assert (first.step, first.base_commit) == (0, parent.base)
    # One checkpoint per call that changed files; the ignored build dir and the think
    # step change nothing, so they add none.
    assert sorted({e.step for e in events if isinstance(e, Checkpoint)}) == [0, 1, 2, 3, 4, 5, 7]
    assert archived(parent.run_dir, parent.trees[9]) == files_of(parent.cli.workspace)
    changes = parent.ended["changes"]  # what the run changed (the README edit was there before)
    assert changes == {"files": 6, "added": 5, "removed": 3}, changes
    ended = [e for e in events if isinstance(e, RunEnded)]
    assert ended[-1].changes is not None and ended[-1].changes.files == 6


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (1, ["+++ b/src/sub/new.py", "+print(1)"]),
        (2, ["--- a/src/app.py", "-x = 1", "+x = 2"]),
        (3, ["rename from src/app.py", "rename to src/main.py"]),
        (4, ["new file mode 100755", "+++ b/run.sh", "+echo hi"]),
        (5, ["Binary files /dev/null and b/blob.bin differ"]),
        (6, []),
        (7, ["deleted file mode 100644", "-keep notes"]),
        (8, []),
    ],
)
def test_what_each_step_changed(parent: Parent, step: int, expected: list[str]) -> None:
    result = parent.runhands("diff", RUN, "--step", str(step))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for line in expected:
        assert line in lines, result.stdout
    if not expected:
        assert result.stdout == ""
    # Nothing from any other step.
    assert "build/out.o" not in result.stdout


def test_diff_between_steps_and_stat(parent: Parent) -> None:
    between = parent.runhands("diff", RUN, "--from", "3", "--to", "5")
    assert between.returncode == 0, between.stderr
    assert "+++ b/run.sh" in between.stdout and "blob.bin" in between.stdout
    assert "src/sub/new.py" not in between.stdout
    stat = parent.runhands("diff", RUN, "--stat")
    assert stat.returncode == 0, stat.stderr
    for name in ("src/sub/new.py", "run.sh", "blob.bin", "notes.txt", "src/{app.py => main.py}"):
        assert name in stat.stdout
    assert "README.md" not in stat.stdout  # edited before the run: not the run's change
    assert "5 files changed, 4 insertions(+), 2 deletions(-)" in stat.stdout


def test_the_patch_applies_to_a_clean_checkout_and_reproduces_the_work(
    parent: Parent, tmp_path: Path
) -> None:
    out = tmp_path / "fix.patch"
    result = parent.runhands("patch", RUN, "-o", str(out))
    assert result.returncode == 0, result.stderr
    clean = tmp_path / "clean"
    git(tmp_path, "clone", "-q", str(parent.cli.workspace), str(clean))
    git(clean, "checkout", "-q", parent.base)
    applied = subprocess.run(["git", "apply", str(out)], cwd=clean, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert files_of(clean) == files_of(parent.cli.workspace)  # README's edit included
    assert dot_git(parent.cli.workspace) == parent.git_before


@pytest.mark.parametrize("at", [2, 5])
def test_fork_takes_the_files_and_the_conversation_of_a_step(
    parent: Parent, tmp_path: Path, at: int
) -> None:
    log_before = (parent.run_dir / "events.jsonl").read_bytes()
    files_before = files_of(parent.cli.workspace)
    target = tmp_path / "fork"
    name = f"fork{at}"
    with ScriptedModel(fixed_script(SCRIPT, target)) as model:
        # Limit the fork to one more step: what matters is where it starts.
        result = parent.runhands(
            "fork",
            RUN,
            "--at",
            str(at),
            "-n",
            name,
            "-d",
            str(target),
            "-i",
            str(at + 1),
            model=model,
        )
        first_request = model.requests[0]["messages"]
    assert result.returncode == 3, result.stderr  # its one step used, at its limit
    # The fork's first request carries exactly the parent's first `at` steps.
    expected = json.loads(
        json.dumps(parent.model.requests[at]["messages"]).replace(
            str(parent.cli.workspace), str(target)
        )
    )
    assert first_request == expected
    # Its workspace was the checkpoint of step `at`, plus what its own step did.
    fork_dir = parent.cli.state_dir / name
    fork_events = read_events(fork_dir / "events.jsonl")
    forked_tree = next(e.tree for e in fork_events if type(e).__name__ == "RunForked")
    assert forked_tree == parent.trees[at]
    assert archived(fork_dir, forked_tree) == archived(parent.run_dir, parent.trees[at])
    own = [e for e in fork_events if isinstance(e, ModelResponse) and e.step > at]
    assert [e.step for e in own] == [at + 1]
    # The parent is untouched: log and files.
    assert (parent.run_dir / "events.jsonl").read_bytes() == log_before
    assert files_of(parent.cli.workspace) == files_before
    assert dot_git(parent.cli.workspace) == parent.git_before
    listed = parent.runhands("list", "--json")
    row = next(json.loads(line) for line in listed.stdout.splitlines() if name in line)
    assert (row["parent"], row["forked_at"]) == (RUN, at)
    inspected = parent.runhands("inspect", name)
    assert f"from {RUN} at step {at}" in inspected.stdout


def test_a_fork_of_a_fork_with_a_new_instruction(parent: Parent, tmp_path: Path) -> None:
    first, second = tmp_path / "f1", tmp_path / "f2"
    with ScriptedModel(fixed_script(SCRIPT, first)) as model:
        made = parent.runhands(
            "fork",
            RUN,
            "--at",
            "9",
            "-n",
            "ff1",
            "-d",
            str(first),
            "-t",
            "one more file",
            model=model,
        )
    assert made.returncode == 0, made.stderr  # steps 10, 11, then finish
    assert (first / "more.txt").read_text() == "more\nagain\n"
    with ScriptedModel(fixed_script(SCRIPT, second)) as model:
        again = parent.runhands(
            "fork", "ff1", "--at", "10", "-n", "ff2", "-d", str(second), model=model
        )
        request = model.requests[0]["messages"]
    assert again.returncode == 0, again.stderr
    assert (second / "more.txt").read_text() == "more\nagain\n"
    assert request[-2]["content"].startswith("[s=9]")  # the answer of step 10
    said = [m["content"] for m in request if m["role"] == "user"]
    assert said[-1] == "one more file"
    inspected = parent.runhands("inspect", "ff2")
    assert "from ff1 at step 10" in inspected.stdout and f"from {RUN} at step 9" in inspected.stdout


def test_fork_needs_an_instruction_at_a_finished_step(parent: Parent, tmp_path: Path) -> None:
    result = parent.runhands("fork", RUN, "--at", "9", "-d", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "finished" in result.stderr and not (tmp_path / "x").exists()


def test_bad_input_is_one_line_and_exit_2(parent: Parent, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("mine\n")
    log_before = (parent.run_dir / "events.jsonl").read_bytes()
    cases = [
        (("diff", RUN, "--step", "42"), "step 42 does not exist"),
        (("fork", RUN, "--at", "99", "-d", str(tmp_path / "n")), "step 99 does not exist"),
        (("fork", RUN, "--at", "2", "-d", str(busy)), "is not empty"),
        (("rewind", RUN, "--to", "-1"), "step -1 does not exist"),
        (("diff", "nope"), "no run named 'nope'"),
        (("diff", RUN, "--step", "2", "--from", "1"), "not both"),
    ]
    for args, message in cases:
        result = parent.runhands(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)
    assert (busy / "x").read_text() == "mine\n" and sorted(busy.iterdir()) == [busy / "x"]
    assert (parent.run_dir / "events.jsonl").read_bytes() == log_before


def test_rewind_and_its_undo(cli: Cli) -> None:
    make_repository(cli.workspace)
    git_before = dot_git(cli.workspace)
    with ScriptedModel(fixed_script(SCRIPT, cli.workspace)) as model:
        assert cli.run("run", "-n", "r", "-t", "do the steps", model=model).returncode == 0
    run_dir = cli.state_dir / "r"
    trees = step_trees(run_dir)
    final = files_of(cli.workspace)

    rewound = cli.run("rewind", "r", "--to", "3")
    assert rewound.returncode == 0, rewound.stderr
    assert files_of(cli.workspace) == archived(run_dir, trees[3])
    assert (cli.workspace / "build" / "out.o").exists()  # ignored files are left alone
    assert "runhands rewind r --to 9" in rewound.stderr
    listed = json.loads(cli.run("list", "--json").stdout.splitlines()[0])
    assert listed["reason"] == "rewound"

    undone = cli.run("rewind", "r", "--to", "9")  # undo: back where the run was
    assert undone.returncode == 0, undone.stderr
    assert files_of(cli.workspace) == final

    # Changes the run did not make: refused, nothing changed; --force keeps them.
    (cli.workspace / "mine.txt").write_text("my own work\n")
    log_before = (run_dir / "events.jsonl").read_bytes()
    refused = cli.run("rewind", "r", "--to", "3")
    assert refused.returncode == 2 and "mine.txt" in refused.stderr
    assert (run_dir / "events.jsonl").read_bytes() == log_before
    assert (cli.workspace / "mine.txt").exists()
    forced = cli.run("rewind", "r", "--to", "3", "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (cli.workspace / "mine.txt").exists()
    assert cli.run("rewind", "r", "--to", "9").returncode == 0
    assert (cli.workspace / "mine.txt").read_text() == "my own work\n"

    # Back to step 3 and on: the model's next request carries exactly steps 1 to 3.
    assert cli.run("rewind", "r", "--to", "3", "--force").returncode == 0
    with ScriptedModel(fixed_script(SCRIPT, cli.workspace)) as model:
        resumed = cli.run("resume", "r", "-i", "10", model=model)
        request = model.requests[0]["messages"]
    assert resumed.returncode == 3, resumed.stderr  # step 10 is its limit
    answers = [m["content"] for m in request if m["role"] == "assistant"]
    assert answers == ["[s=0]", "[s=1]", "[s=2]"]
    assert dot_git(cli.workspace) == git_before


def test_no_checkpoints_without_git_and_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    nogit = tmp_path / "bin"
    nogit.mkdir()
    for tool in ("bash", "sh", "cat", "echo", "env", "ls", "printf", "mkdir", "rm"):
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (nogit / tool).symlink_to(found)
    script = [[bash("echo hi > a.txt")], [("finish", {"message": "ok"})]]
    with ScriptedModel(fixed_script(script, cli.workspace)) as model:
        result = cli.run("run", "-n", "old", "-t", "x", model=model, env={"PATH": str(nogit)})
    assert result.returncode == 0, result.stderr
    assert "git is not installed" in result.stderr
    for args in (("diff", "old"), ("patch", "old"), ("rewind", "old", "--to", "0")):
        refused = cli.run(*args)
        assert refused.returncode == 2
        assert "has no workspace checkpoints" in refused.stderr


def test_deleted_checkpoint_objects_and_a_gone_workspace(cli: Cli) -> None:
    script = [[bash("echo hi > a.txt")], [bash("echo ho > b.txt")], [("finish", {"message": "ok"})]]
    with ScriptedModel(fixed_script(script, cli.workspace)) as model:
        assert cli.run("run", "-n", "x", "-t", "x", model=model).returncode == 0
    objects = cli.state_dir / "x" / "checkpoints" / "objects"
    for path in objects.rglob("*"):
        if path.is_file() and path.parent.name != "info":
            path.unlink()
    damaged = cli.run("diff", "x")
    assert damaged.returncode == 2 and "damaged" in damaged.stderr, damaged.stderr
    for path in cli.workspace.iterdir():
        path.unlink()
    cli.workspace.rmdir()
    gone = subprocess.run(
        [sys.executable, "-m", "controller", "rewind", "x", "--to", "1"],
        cwd=cli.home,
        env=cli.env,
        capture_output=True,
        text=True,
    )
    assert gone.returncode == 2 and "is gone" in gone.stderr, gone.stderr


def test_the_patch_is_saved_at_every_end_even_a_failed_one(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "patches"
    out.mkdir()
    script = [[bash("echo a > a.txt")], [bash("echo b > b.txt")], [bash("echo c > c.txt")]]
    with ScriptedModel(fixed_script(script, cli.workspace)) as model:
        result = cli.run(
            "run", "-n", "lim", "-i", "2", "-t", "x", model=model,
            env={"SAVE_PATCH_PATH": str(out)},
        )  # fmt: skip
    assert result.returncode == 3, result.stderr  # the step limit
    patch = (out / "lim.patch").read_text()
    assert "+++ b/a.txt" in patch and "+++ b/b.txt" in patch and "c.txt" not in patch
    assert patch == cli.run("patch", "lim").stdout


def test_replay_compares_the_files_with_the_recorded_checkpoints(cli: Cli, tmp_path: Path) -> None:
    (cli.workspace / "given.txt").write_text("was there\n")
    script = [
        [bash("cat given.txt > copy.txt")],
        [bash("date +%N > stamp.txt")],  # prints nothing: only the file tells
        [("finish", {"message": "ok"})],
    ]
    with ScriptedModel(fixed_script(script, cli.workspace)) as model:
        assert cli.run("run", "-n", "rec", "-t", "x", model=model).returncode == 0
    replay_dir = tmp_path / "replay"
    replay_dir.mkdir()
    replayed = subprocess.run(
        [sys.executable, "-m", "controller", "replay", "rec"],
        cwd=replay_dir,
        env=cli.env,
        capture_output=True,
        text=True,
    )
    assert replayed.returncode == 1, replayed.stderr
    assert "starts as the recorded run's workspace did" in replayed.stderr
    assert "[1/3]" in replayed.stderr and "... same" in replayed.stderr.split("[2/3]")[0]
    assert "files differ from the recorded checkpoint: stamp.txt (modified)" in replayed.stderr
    assert (replay_dir / "copy.txt").read_text() == "was there\n"


def test_a_file_holding_the_model_key_is_never_checkpointed(cli: Cli) -> None:
    # Unisolated: an isolated sandbox hides .env, so the agent could not copy the key.
    cli.env["SANDBOX_ISOLATION"] = "none"
    (cli.workspace / ".env").write_text(f"LLM_API_KEY={TEST_API_KEY}\n")
    script = [[bash("echo note > note.txt && cp .env copy.env")], [("finish", {"message": "ok"})]]
    with ScriptedModel(fixed_script(script, cli.workspace)) as model:
        result = cli.run("run", "-n", "sec", "-t", "x", model=model)
    assert result.returncode == 0, result.stderr
    run_dir = cli.state_dir / "sec"
    saved = archived(run_dir, step_trees(run_dir)[1])
    assert sorted(saved) == ["note.txt"]
    skipped = [
        f.path
        for e in read_events(run_dir / "events.jsonl")
        if isinstance(e, Checkpoint)
        for f in e.skipped
    ]
    assert set(skipped) == {".env", "copy.env"}
    assert "copy.env: holds a secret" in result.stderr
    patch = cli.run("patch", "sec").stdout
    assert TEST_API_KEY not in patch and "note.txt" in patch
