"""Workspace checkpoints: real git, real files. Trees are compared by id (same id: same
bytes, modes and links) and by walking the files."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import state_store.checkpoints as checkpoints
from state_store.checkpoints import (
    EMPTY_TREE,
    CheckpointError,
    CheckpointStore,
    FileChange,
    git_available,
)
from state_store.events import ChangeSummary, SkippedFile

pytestmark = pytest.mark.skipif(not git_available(), reason="git is not installed")

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    """The user's git (the test's), with a name and no auto-gc (it would write in .git)."""
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "gc.auto=0", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=GIT_ENV, input=input, capture_output=True, check=True)
    return proc.stdout.decode()


def write(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path


def files(root: Path) -> dict[str, tuple]:
    """Every file and link under root (not in .git): content and exec bit, or link target."""
    found: dict[str, tuple] = {}
    for directory, dirs, names in os.walk(root):  # links to directories: listed, not entered
        dirs[:] = [d for d in dirs if d != ".git"]
        links = [d for d in dirs if os.path.islink(os.path.join(directory, d))]
        for name in names + links:
            path = Path(directory, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            else:
                found[rel] = ("file", path.read_bytes(), bool(path.stat().st_mode & stat.S_IXUSR))
    return found


def digest(root: Path) -> dict[str, str]:
    """Every file under root (e.g. a .git directory) by content hash."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def object_files(git_dir: Path) -> set[str]:
    return {p.relative_to(git_dir).as_posix() for p in (git_dir / "objects").rglob("*")}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def store_for(tmp_path: Path, ws: Path, **options) -> CheckpointStore:
    return CheckpointStore(tmp_path / "run" / "checkpoints", ws, **options)


def fork_files(tmp_path: Path, store: CheckpointStore, tree: str, name: str) -> dict[str, tuple]:
    """The files of `tree`, checked out by a fork of the store into an empty directory."""
    store.copy_to(tmp_path / f"{name}-store")
    (tmp_path / name).mkdir()
    fork = CheckpointStore(tmp_path / f"{name}-store", tmp_path / name)
    fork.checkout(tree)
    assert fork.save().tree == tree
    return files(tmp_path / name)


# -- saving --------------------------------------------------------------------------------
def test_each_kind_of_change_is_saved_and_reported(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "one\ntwo\n")
    write(ws / "src" / "b.py", "print(1)\n")
    write(ws / "old.txt", "moved\n")
    store = store_for(tmp_path, ws)
    first = store.save()
    assert first.skipped == []
    assert store.changes(None, first.tree) == [
        FileChange(path="a.txt", status="added", added=2),
        FileChange(path="old.txt", status="added", added=1),
        FileChange(path="src/b.py", status="added", added=1),
    ]

    write(ws / "a.txt", "one\nTWO\nthree\n")  # edit
    write(ws / "src" / "deep" / "c.py", "x = 1\n")  # create, in a new sub-directory
    (ws / "old.txt").rename(ws / "new.txt")  # rename
    (ws / "src" / "b.py").chmod(0o755)  # chmod +x
    write(ws / "blob.bin", bytes(range(256)) * 4)  # binary
    os.symlink("a.txt", ws / "link")  # symlink, stored as a link
    second = store.save()
    assert store.changes(first.tree, second.tree) == [
        FileChange(path="a.txt", status="modified", added=2, removed=1),
        FileChange(path="blob.bin", status="added", binary=True),
        FileChange(path="link", status="added", added=1),
        FileChange(path="new.txt", status="added", added=1),
        FileChange(path="old.txt", status="deleted", removed=1),
        FileChange(path="src/b.py", status="modified"),
        FileChange(path="src/deep/c.py", status="added", added=1),
    ]
    assert store.summary(first.tree, second.tree) == ChangeSummary(files=7, added=5, removed=2)

    (ws / "a.txt").unlink()  # delete
    (ws / "link").unlink()
    write(ws / "link", "now a file\n")  # symlink -> file: type change
    third = store.save()
    assert store.changes(second.tree, third.tree) == [
        FileChange(path="a.txt", status="deleted", removed=3),
        FileChange(path="link", status="type changed", added=1, removed=1),
    ]
    assert store.changes(third.tree, third.tree) == []


def test_modes_links_and_bytes_are_kept(tmp_path: Path, ws: Path) -> None:
    write(ws / "run.sh", "#!/bin/sh\necho hi\n", mode=0o755)
    write(ws / "data.bin", b"\0\xff\x00binary\r\n")
    write(ws / "crlf.txt", b"windows\r\nline\r\n")
    write(ws / ".gitattributes", "* text=auto eol=crlf\n*.txt filter=lfs ident\n")
    os.symlink("missing-target", ws / "dangling")
    os.symlink("..", ws / "up")
    store = store_for(tmp_path, ws)
    tree = store.save().tree
    out = git(tmp_path, f"--git-dir={store.git_dir}", "ls-tree", "-r", tree)
    modes = {line.split("\t")[1]: line.split()[0] for line in out.splitlines()}
    assert modes == {
        ".gitattributes": "100644",
        "crlf.txt": "100644",
        "dangling": "120000",
        "data.bin": "100644",
        "run.sh": "100755",
        "up": "120000",
    }
    assert fork_files(tmp_path, store, tree, "fork") == files(ws)


def test_ignored_files_are_left_out(tmp_path: Path, ws: Path) -> None:
    write(ws / ".gitignore", "build/\n")
    write(ws / "build" / "out.o", "object\n")
    write(ws / "notes.tmp", "scratch\n")
    write(ws / "keep.txt", "keep\n")
    write(ws / "sub" / ".gitignore", "*.log\n")
    write(ws / "sub" / "x.log", "log\n")
    store = store_for(tmp_path, ws, ignore=["*.tmp", "# a comment"])
    saved = store.save()
    assert [c.path for c in store.changes(None, saved.tree)] == [
        ".gitignore",
        "keep.txt",
        "sub/.gitignore",
    ]
    assert saved.skipped == []  # ignored files are not "skipped": they were never wanted


def test_patterns_are_rewritten_on_every_open(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.tmp", "a\n")
    write(ws / "b.txt", "b\n")
    first = store_for(tmp_path, ws, ignore=["*.tmp"]).save()
    store = store_for(tmp_path, ws)  # the configuration changed between two processes
    second = store.save()
    assert store.changes(first.tree, second.tree) == [
        FileChange(path="a.tmp", status="added", added=1)
    ]
    store = store_for(tmp_path, ws, ignore=["*.txt"])  # applies to saved files too
    third = store.save()
    assert [c.path for c in store.changes(None, third.tree)] == ["a.tmp"]
    assert store.changes(second.tree, third.tree) == []  # left out, not deleted
    assert (ws / "b.txt").exists()


def test_state_directory_inside_the_workspace_is_excluded(tmp_path: Path, ws: Path) -> None:
    write(ws / "code.py", "x\n")
    state = ws / ".state [1]*"  # glob characters are taken literally
    write(state / "run" / "events.jsonl", "{}\n")
    write(ws / ".state [1]x", "not excluded\n")
    store = CheckpointStore(state / "run" / "checkpoints", ws, exclude=[state])
    saved = store.save()
    assert [c.path for c in store.changes(None, saved.tree)] == [".state [1]x", "code.py"]
    # the store's own directory is excluded even when the caller does not say so
    other = CheckpointStore(ws / "cp", ws)
    listed = [c.path for c in other.changes(None, other.save().tree)]
    assert not [p for p in listed if p.startswith("cp/")]
    assert ".state [1]*/run/events.jsonl" in listed


def test_too_large_files_are_skipped_and_listed_each_time(tmp_path: Path, ws: Path) -> None:
    write(ws / "small.txt", "x" * 100)
    write(ws / "grows.txt", "y" * 100)
    write(ws / "huge.bin", b"z" * 5000)
    store = store_for(tmp_path, ws, max_file_bytes=1000)
    first = store.save()
    assert first.skipped == [SkippedFile(path="huge.bin", reason="larger than 1000 B (4.9 KB)")]
    write(ws / "grows.txt", "y" * 2048)  # tracked, then too large: out of the checkpoint
    second = store.save()
    assert second.skipped == [
        SkippedFile(path="grows.txt", reason="larger than 1000 B (2 KB)"),
        SkippedFile(path="huge.bin", reason="larger than 1000 B (4.9 KB)"),
    ]
    assert store.save() == second  # nothing changed: the same tree, still listed
    assert [c.path for c in store.changes(None, second.tree)] == ["small.txt"]
    # the run's patch does not delete it: it was left out, not deleted
    assert store.changes(first.tree, second.tree) == []
    assert checkpoints._size(35.2 * 2**20) == "35.2 MB"
    assert checkpoints._size(20 * 2**20) == "20 MB"


def test_nested_git_repositories_are_skipped(tmp_path: Path, ws: Path) -> None:
    write(ws / "top.txt", "top\n")
    nested = ws / "vendor" / "lib"
    write(nested / "lib.c", "int x;\n")
    git(nested, "init", "-q")
    git(nested, "add", "-A")
    git(nested, "commit", "-qm", "lib")
    git(ws / "vendor", "init", "-q", "empty")  # no commit yet
    before = digest(nested / ".git")
    store = store_for(tmp_path, ws)
    saved = store.save()
    assert saved.skipped == [
        SkippedFile(path="vendor/empty", reason="nested git repository"),
        SkippedFile(path="vendor/lib", reason="nested git repository"),
    ]
    assert [c.path for c in store.changes(None, saved.tree)] == ["top.txt"]
    store.checkout(saved.tree)
    assert digest(nested / ".git") == before


def test_unreadable_files_are_skipped(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(ws / "ok.txt", "ok\n")
    secret = write(ws / "secret.txt", "secret\n", mode=0o000)
    real_access = os.access

    def access(path, mode: int) -> bool:  # root reads everything: pretend it cannot
        return os.fsdecode(path) != str(secret) and real_access(path, mode)

    monkeypatch.setattr(checkpoints.os, "access", access)
    saved = store_for(tmp_path, ws).save()
    assert saved.skipped == [SkippedFile(path="secret.txt", reason="unreadable")]


def test_special_paths_do_not_break_a_save(tmp_path: Path, ws: Path) -> None:
    write(ws / "d" / "x.txt", "x\n")
    write(ws / "f", "file\n")
    write(ws / "real" / "y.txt", "y\n")
    write(ws / "name with spaces\tand tab", "s\n")
    write(ws / "caf\xe9.txt", "accent\n")
    store = store_for(tmp_path, ws)
    store.save()
    shutil.rmtree(ws / "d")
    os.symlink("real", ws / "d")  # a directory replaced by a link: d/x.txt is gone
    (ws / "f").unlink()
    write(ws / "f" / "inside.txt", "dir now\n")  # a file replaced by a directory
    os.mkfifo(ws / "pipe")  # not a file git stores
    saved = store.save()
    assert store.changes(None, saved.tree) == [
        FileChange(path="caf\xe9.txt", status="added", added=1),
        FileChange(path="d", status="added", added=1),
        FileChange(path="f/inside.txt", status="added", added=1),
        FileChange(path="name with spaces\tand tab", status="added", added=1),
        FileChange(path="real/y.txt", status="added", added=1),
    ]


def test_a_save_of_many_files_writes_one_pack(tmp_path: Path, ws: Path) -> None:
    for i in range(checkpoints._BULK_PATHS + 10):
        write(ws / f"d{i % 7}" / f"f{i}.txt", f"file {i}\n" * 10)
    store = store_for(tmp_path, ws)
    first = store.save().tree
    assert len(list((store.git_dir / "objects" / "pack").glob("*.pack"))) == 1
    write(ws / "d0" / "f0.txt", "changed\n")
    second = store.save().tree
    assert len(list((store.git_dir / "objects" / "pack").glob("*.pack"))) == 1  # loose
    assert store.summary(first, second) == ChangeSummary(files=1, added=1, removed=10)
    store.verify(second)
    assert fork_files(tmp_path, store, second, "fork") == files(ws)


def test_unchanged_save_returns_the_same_tree_and_writes_no_object(
    tmp_path: Path, ws: Path
) -> None:
    write(ws / "a" / "b.txt", "b\n")
    write(ws / "c.txt", "c\n")
    store = store_for(tmp_path, ws)
    tree = store.save().tree
    objects = object_files(store.git_dir)
    (ws / "c.txt").touch()  # new stat, same content
    assert store.save().tree == tree
    assert store.save().tree == tree
    assert object_files(store.git_dir) == objects


def test_a_stale_index_lock_does_not_break_save(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "a\n")
    store = store_for(tmp_path, ws)
    store.save()
    write(store.git_dir / "index.lock", b"left by a killed process")
    write(ws / "b.txt", "b\n")
    saved = store.save()
    assert [c.path for c in store.changes(None, saved.tree)] == ["a.txt", "b.txt"]
    assert not (store.git_dir / "index.lock").exists()


def test_store_is_private_and_ignores_the_callers_git_settings(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    write(home / ".gitconfig", "[core]\n\texcludesFile = ~/ignore\n\thooksPath = /nonexistent\n")
    write(home / "ignore", "*.txt\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "elsewhere-index"))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(tmp_path / "elsewhere-objects"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.excludesfile'='{home / 'ignore'}'")
    write(ws / "a.txt", "a\n")
    store = store_for(tmp_path, ws)
    saved = store.save()
    assert [c.path for c in store.changes(None, saved.tree)] == ["a.txt"]
    assert stat.S_IMODE(store.git_dir.stat().st_mode) == 0o700
    assert not list(tmp_path.glob("elsewhere*"))


# -- restoring -----------------------------------------------------------------------------
def test_checkout_goes_back_and_forth_and_leaves_untracked_files(tmp_path: Path, ws: Path) -> None:
    write(ws / ".gitignore", "build/\n")
    write(ws / "a.txt", "version 1\n")
    write(ws / "gone.txt", "deleted later\n")
    write(ws / "tool.sh", "#!/bin/sh\n", mode=0o644)
    store = store_for(tmp_path, ws, max_file_bytes=1000)
    old = store.save().tree
    old_files = files(ws)

    write(ws / "a.txt", "version 2\n")
    (ws / "gone.txt").unlink()
    (ws / "tool.sh").chmod(0o755)
    write(ws / "new" / "file.txt", "new\n")
    os.symlink("a.txt", ws / "alias")
    new = store.save().tree
    new_files = files(ws)
    write(ws / "build" / "out.o", "ignored output\n")  # after the save: untracked, ignored
    write(ws / "big.bin", b"b" * 5000)  # skipped

    store.save()  # the caller saves first, then rewinds
    store.checkout(old)
    left_alone = {"build/out.o", "big.bin"}
    assert {k: v for k, v in files(ws).items() if k not in left_alone} == old_files
    assert (ws / "build" / "out.o").read_text() == "ignored output\n"
    assert (ws / "big.bin").stat().st_size == 5000
    assert not (ws / "new").exists()  # emptied directories go too
    assert store.save().tree == old  # the index is the tree, with fresh stat info

    store.checkout(new)  # and forward again (undo the rewind)
    assert {k: v for k, v in files(ws).items() if k not in left_alone} == new_files
    assert store.save().tree == new


def test_checkout_restores_files_changed_since_the_last_save(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "saved\n")
    store = store_for(tmp_path, ws)
    tree = store.save().tree
    write(ws / "a.txt", "changed, not saved\n")
    write(ws / "b.txt", "untracked, not saved\n")
    store.checkout(tree)
    assert (ws / "a.txt").read_text() == "saved\n"
    assert (ws / "b.txt").exists()


def test_fork_copies_the_store_and_checks_out_into_an_empty_directory(
    tmp_path: Path, ws: Path
) -> None:
    write(ws / "src" / "main.py", "print('hi')\n")
    write(ws / "run.sh", "#!/bin/sh\n", mode=0o755)
    os.symlink("src/main.py", ws / "main")
    write(ws / "big.bin", b"b" * 5000)
    store = store_for(tmp_path, ws, max_file_bytes=1000)
    first = store.save()
    write(ws / "src" / "main.py", "print('changed')\n")
    tree = store.save().tree
    source = digest(store.git_dir)

    forked = fork_files(tmp_path, store, first.tree, "fork")
    assert forked == {k: v for k, v in files(ws).items() if k != "big.bin"} | {
        "src/main.py": ("file", b"print('hi')\n", False)
    }
    assert digest(store.git_dir) == source  # the source store is not modified
    fork = CheckpointStore(tmp_path / "fork-store", tmp_path / "fork")
    assert fork.changes(first.tree, tree) == [
        FileChange(path="src/main.py", status="modified", added=1, removed=1)
    ]
    fork.verify(tree)


# -- diffs ---------------------------------------------------------------------------------
def test_binary_patch_applies_on_a_copy_of_the_old_state(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "one\ntwo\nthree\n")
    write(ws / "bin.dat", bytes(range(256)))
    write(ws / "latin1.txt", "caf\xe9\n".encode("latin-1"))
    write(ws / "exec.sh", "#!/bin/sh\n")
    write(ws / "moved.txt", "a file that moves\n" * 5)
    write(ws / "d" / "gone.txt", "bye\n")
    store = store_for(tmp_path, ws)
    old = store.save().tree
    shutil.copytree(ws, tmp_path / "copy", symlinks=True)

    write(ws / "a.txt", "one\n2\nthree\nfour\n")
    write(ws / "bin.dat", bytes(reversed(range(256))) + b"\0more")
    write(ws / "latin1.txt", "na\xefve\n".encode("latin-1"))
    (ws / "exec.sh").chmod(0o755)
    (ws / "moved.txt").rename(ws / "moved-to.txt")
    shutil.rmtree(ws / "d")
    write(ws / "d", "d is a file now\n")
    os.symlink("a.txt", ws / "link")
    write(ws / "new" / "empty.txt", "")
    new = store.save().tree

    patch = store.diff(old, new, binary=True)
    assert "GIT binary patch" in patch
    assert "+na\udcefve" in patch  # the latin-1 byte, kept
    assert "+na\ufffdve" in store.diff(old, new)  # for display: replaced
    git(tmp_path / "copy", "init", "-q")  # `git apply` in a repository of its own
    git(
        tmp_path / "copy",
        "apply",
        "--whitespace=nowarn",
        input=patch.encode(errors="surrogateescape"),
    )
    applied = CheckpointStore(tmp_path / "copy-store", tmp_path / "copy").save()
    assert applied.tree == new  # same id: same bytes, modes and links
    assert files(tmp_path / "copy") == files(ws)


def test_display_diff_and_stat(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "one\n")
    write(ws / "bin.dat", b"\0\1\2")
    write(ws / "moved.txt", "same content, renamed\n" * 5)
    store = store_for(tmp_path, ws)
    old = store.save().tree
    write(ws / "a.txt", "one\ntwo\n")
    write(ws / "bin.dat", b"\0\1\2\3")
    (ws / "moved.txt").rename(ws / "renamed.txt")
    new = store.save().tree
    diff = store.diff(old, new)
    assert "+two\n" in diff
    assert "Binary files a/bin.dat and b/bin.dat differ" in diff
    assert "rename from moved.txt\nrename to renamed.txt" in diff
    assert "\x1b[" not in diff
    stat_out = store.diff(old, new, stat=True)
    assert "a.txt" in stat_out and "3 files changed" in stat_out
    assert store.diff(None, old).count("new file mode") == 3
    assert store.diff(EMPTY_TREE, old) == store.diff(None, old)


# -- a git repository as the workspace -----------------------------------------------------
def make_repository(ws: Path) -> str:
    write(ws / ".gitignore", "*.log\nbuild/\n")
    write(ws / "src" / "app.py", "def main():\n    return 1\n")
    write(ws / "tracked.log", "committed although ignored\n")
    write(ws / "doomed.txt", "deleted by the agent\n")
    write(ws / "data.bin", b"d" * 3000)
    write(ws / "secrets" / "key.pem", "excluded by checkpoint_ignore\n")
    git(ws, "init", "-q")
    git(ws, "add", "-A", "-f")
    git(ws, "commit", "-qm", "first")
    write(ws / "src" / "app.py", "def main():\n    return 2\n")
    git(ws, "commit", "-qam", "second")
    return git(ws, "rev-parse", "HEAD").strip()


def test_a_repository_workspace_is_seeded_from_its_head(tmp_path: Path, ws: Path) -> None:
    head = make_repository(ws)
    write(ws / "uncommitted.txt", "not committed yet\n")
    write(ws / "build" / "out.o", "ignored\n")
    user_git = digest(ws / ".git")
    store = store_for(tmp_path, ws, ignore=["secrets/"], max_file_bytes=4000)
    assert store.seed_from_repository() == head
    base = store.tree_of(head)
    first = store.save()
    assert [c.path for c in store.changes(base, first.tree)] == ["uncommitted.txt"]
    assert "tracked.log" in store.diff(None, first.tree, stat=True)  # tracked stays tracked

    write(ws / "src" / "app.py", "def main():\n    return 3\n")
    write(ws / "tracked.log", "changed\n")
    (ws / "doomed.txt").unlink()
    write(ws / "data.bin", b"D" * 5000)  # too large now: left out, not deleted
    write(ws / "src" / "new.py", "NEW = True\n")
    last = store.save()
    assert last.skipped == [SkippedFile(path="data.bin", reason="larger than 3.9 KB (4.9 KB)")]
    store.checkout(first.tree)
    store.checkout(last.tree)
    patch = store.diff(base, last.tree, binary=True)
    assert "secrets/key.pem" not in patch and "data.bin" not in patch
    assert store.changes(base, last.tree) == [
        FileChange(path="doomed.txt", status="deleted", removed=1),
        FileChange(path="src/app.py", status="modified", added=1, removed=1),
        FileChange(path="src/new.py", status="added", added=1),
        FileChange(path="tracked.log", status="modified", added=1, removed=1),
        FileChange(path="uncommitted.txt", status="added", added=1),
    ]
    assert store.summary(base, last.tree) == ChangeSummary(files=5, added=4, removed=3)
    store.verify(last.tree)
    assert digest(ws / ".git") == user_git  # the user's repository is never written

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(ws), str(clone))
    git(clone, "apply", input=patch.encode(errors="surrogateescape"))
    expected = {k: v for k, v in files(ws).items() if k not in ("build/out.o", "data.bin")}
    assert {k: v for k, v in files(clone).items() if k != "data.bin"} == expected
    assert (clone / "data.bin").read_bytes() == b"d" * 3000  # the commit's, untouched


def test_seed_does_nothing_outside_a_repositorys_top(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "a\n")
    assert store_for(tmp_path, ws).seed_from_repository() is None  # not a repository
    git(ws, "init", "-q")
    assert store_for(tmp_path, ws).seed_from_repository() is None  # no commit yet
    git(ws, "add", "-A")
    git(ws, "commit", "-qm", "c")
    sub = write(ws / "sub" / "b.txt", "b\n").parent
    assert CheckpointStore(tmp_path / "sub-store", sub).seed_from_repository() is None


def test_seed_keeps_gitignored_but_committed_files(tmp_path: Path, ws: Path) -> None:
    make_repository(ws)
    store = store_for(tmp_path, ws)
    assert store.seed_from_repository() is not None
    write(ws / "other.log", "new and ignored\n")
    saved = store.save()
    out = git(tmp_path, f"--git-dir={store.git_dir}", "ls-tree", "-r", "--name-only", saved.tree)
    assert "tracked.log" in out.split() and "other.log" not in out.split()


def test_submodules_stay_gitlinks_and_are_never_written(tmp_path: Path, ws: Path) -> None:
    lib = tmp_path / "lib"
    write(lib / "lib.c", "int v = 1;\n")
    git(lib, "init", "-q")
    git(lib, "add", "-A")
    git(lib, "commit", "-qm", "lib")
    write(ws / "main.c", "int main;\n")
    git(ws, "init", "-q")
    git(ws, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib")
    git(ws, "add", "main.c")
    git(ws, "commit", "-qm", "with a submodule")
    write(ws / "lib" / "lib.c", "int v = 2;\n")
    git(ws / "lib", "commit", "-qam", "moved on")  # the submodule's HEAD moves
    user_git, lib_files = digest(ws / ".git"), digest(ws / "lib")
    store = store_for(tmp_path, ws)
    head = store.seed_from_repository()
    assert head is not None
    first = store.save()
    assert store.changes(store.tree_of(head), first.tree) == [
        FileChange(path="lib", status="modified", added=1, removed=1)
    ]
    assert "+Subproject commit" in store.diff(store.tree_of(head), first.tree)
    store.checkout(store.tree_of(head))
    store.checkout(first.tree)
    store.verify(first.tree)
    assert digest(ws / ".git") == user_git
    assert digest(ws / "lib") == lib_files


# -- damage and errors ---------------------------------------------------------------------
def test_verify_reports_a_missing_object(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "a\n")
    write(ws / "sub" / "b.txt", "b\n")
    store = store_for(tmp_path, ws)
    tree = store.save().tree
    store.verify(tree)
    blob = git(tmp_path, f"--git-dir={store.git_dir}", "rev-parse", f"{tree}:sub/b.txt").strip()
    (store.git_dir / "objects" / blob[:2] / blob[2:]).unlink()
    with pytest.raises(CheckpointError, match=f"checkpoint {tree[:12]} is damaged: its objects"):
        store.verify(tree)
    with pytest.raises(CheckpointError, match="is damaged"):
        store.verify("0" * 40)


def test_git_failures_are_one_line_errors(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_for(tmp_path, ws)
    with pytest.raises(CheckpointError, match=r"^cannot restore checkpoint 000000000000: .+$"):
        store.checkout("0" * 40)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert not git_available()
    with pytest.raises(CheckpointError, match=r"^git is not installed: checkpoints need it$"):
        CheckpointStore(tmp_path / "new-store", ws)


def test_a_save_after_a_checkout_is_the_restored_tree(tmp_path: Path, ws: Path) -> None:
    write(ws / "a.txt", "1\n")
    store = store_for(tmp_path, ws)
    first = store.save().tree
    write(ws / "a.txt", "2\n")
    second = store.save().tree
    assert store.save().tree == second  # nothing changed
    store.checkout(first)
    assert store.save().tree == first
    assert (ws / "a.txt").read_text() == "1\n"
