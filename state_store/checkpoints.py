"""Workspace checkpoints: the workspace's files saved as git trees in a private store.

After every tool call that may have changed files, `save` makes the store's index equal the
workspace and returns its tree id: content-addressed, so unchanged files cost nothing. The
store is a git directory of the run's own (`<run_dir>/checkpoints`) driven through the `git`
binary with its own index; the user's repository is only ever read (`seed_from_repository`).
A checkpoint is a tree id, no commits: gc never runs, so loose objects are never pruned.

Every git call runs without the caller's `GIT_*` variables and without system or global
config (no hooks, fsmonitor or excludesFile of the user), and `info/attributes` turns off
every content conversion (eol, filters, ident), so checkout gives back the exact bytes.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from state_store.events import ChangeSummary, SkippedFile
from state_store.files import sync_directory, write_atomic

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
BASE_REF = "refs/runhands/base"
# The skipped files of each saved tree that had some (`<dir>/<tree>.json`): a deletion of
# one of them in a diff is not the agent's (see `CheckpointStore._base`).
SKIPPED_DIR = "runhands-skipped"

_NO_GIT = "git is not installed: checkpoints need it"
_STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "type changed"}
# Highest-precedence attributes: no eol conversion, clean/smudge filter, ident or encoding,
# whatever the workspace's .gitattributes say (a checkpoint holds the bytes as they are).
_ATTRIBUTES = "* -text -ident !eol !crlf !filter !working-tree-encoding\n"
_CONFIG = """\
[core]
\trepositoryformatversion = 0
\tbare = false
\tfileMode = true
\tsymlinks = true
\tautocrlf = false
\tquotePath = false
\tuntrackedCache = true
\tlogAllRefUpdates = false
{fsync}[gc]
\tauto = 0
"""
# Objects (loose, or packs from a seed or a big step) and index on disk before the caller's
# event says they exist.
_FSYNC_COMPONENTS = "loose-object,pack,pack-metadata,index"
_FSYNC = f"\tfsync = {_FSYNC_COMPONENTS}\n\tfsyncMethod = batch\n"
# From this many paths in one save, update-index streams every blob into one pack instead of
# a loose file each (measured: 1,000 files of 20 KB, ~1 s loose vs ~0.45 s packed); below,
# loose objects keep the number of packs (searched on every lookup) low.
_BULK_PATHS = 100
_BULK = ("-c", "core.bigFileThreshold=1", "-c", "pack.compression=1")
# The user's side of the seed's fetch: no delta search (measured on a 10,000-file commit of
# loose objects: 34 s with it, 8 s without), fast compression; packed objects are reused.
_UPLOAD_PACK = "git -c pack.window=0 -c pack.compression=1 upload-pack"


class CheckpointError(Exception):
    """A checkpoint could not be saved, restored or read (one line, for the user)."""


class Saved(msgspec.Struct, frozen=True, kw_only=True):
    tree: str
    skipped: list[SkippedFile] = []


class FileChange(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    status: str  # "added", "modified", "deleted", "type changed"
    added: int = 0  # lines (0 for binary files)
    removed: int = 0
    binary: bool = False


def git_available() -> bool:
    return shutil.which("git") is not None


def _clean_env() -> dict[str, str]:
    """The environment without the caller's git settings or the user's global config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", LC_ALL="C", GIT_TERMINAL_PROMPT="0"
    )
    return env


def _git(
    args: Sequence[str],
    env: dict[str, str],
    *,
    doing: str,
    cwd: Path | None = None,
    input: bytes | None = None,
    ok: tuple[int, ...] = (0,),
) -> bytes:
    """Run git; its output, or a CheckpointError saying what failed and git's first line."""
    try:
        proc = subprocess.run(
            ["git", *args], env=env, cwd=cwd, input=input, capture_output=True, check=False
        )
    except OSError as e:
        raise CheckpointError(_NO_GIT if not git_available() else f"cannot {doing}: {e}") from None
    if proc.returncode not in ok:
        line = _first_line(proc.stderr) or f"git {args[0]} exited with {proc.returncode}"
        raise CheckpointError(f"cannot {doing}: {line}")
    return proc.stdout


def _first_line(data: bytes) -> str:
    """git's first error line (warnings may come before it), else its first line."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (errors or lines or [""])[0]


def _display(raw: bytes) -> str:
    """A path for people and JSON (undecodable bytes shown as escapes)."""
    return raw.decode("utf-8", "backslashreplace")


def _size(n: float) -> str:
    """E.g. "20 MB", "35.2 MB"."""
    units = ["B", "KB", "MB", "GB"]
    while n >= 1024 and len(units) > 1:
        n /= 1024
        units.pop(0)
    return f"{n:.1f}".removesuffix(".0") + " " + units[0]


def _nul_list(data: bytes) -> list[bytes]:
    return [p for p in data.split(b"\0") if p]


@functools.cache
def _fsync_accepted() -> bool:
    """Whether git knows these fsync settings: one that knows core.fsync but not one of
    the values warns (an older one ignores them, harmlessly)."""
    args = ["-c", f"core.fsync={_FSYNC_COMPONENTS}", "-c", "core.fsyncMethod=batch"]
    try:
        proc = subprocess.run(
            ["git", *args, "hash-object", "--stdin"],
            env=_clean_env(),
            input=b"",
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return b"warning" not in proc.stderr


def _init_repo(git_dir: Path) -> None:
    """Create the store (0700) if missing; (re)write its config if it is not ours."""
    if not (git_dir / "HEAD").is_file():
        git_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        args = ["init", "-q", "--bare", "--template=", str(git_dir)]
        _git(args, _clean_env(), doing=f"create the checkpoint store {git_dir}")
    config = _CONFIG.format(fsync=_FSYNC if _fsync_accepted() else "").encode()
    _write_if_changed(git_dir / "config", config)
    (git_dir / "info").mkdir(exist_ok=True)
    _write_if_changed(git_dir / "info" / "attributes", _ATTRIBUTES.encode())


def _write_if_changed(path: Path, data: bytes) -> bool:
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    try:
        write_atomic(path, data)
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None
    return True


def _escape(rel: str) -> str:
    """An anchored gitignore pattern matching exactly `rel` (glob characters escaped)."""
    escaped = "".join("\\" + c if c in "\\*?[" else c for c in rel)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def _exclude_file(workspace: str, ignore: Iterable[str], exclude: Iterable[Path]) -> bytes:
    lines = ["# Written by runhands on every open: checkpoint_ignore, then paths never saved."]
    lines += [p for p in ignore if p.strip()]
    for path in exclude:
        rel = os.path.relpath(os.path.realpath(path), workspace)
        if rel != "." and not rel.startswith("..") and "\n" not in rel:
            lines.append(_escape(rel))
    return ("\n".join(lines) + "\n").encode()


class CheckpointStore:
    """The checkpoints of one workspace, in the git directory `git_dir` (created on first use).

    `ignore`: extra gitignore-style patterns; `exclude`: paths never saved (the state
    directory when it lies inside the workspace; `git_dir` itself always is); `secrets`:
    a file whose content holds one is left out (read only when it changed). Both are
    written to `<git_dir>/info/exclude` on every open, beside the workspace's .gitignore
    files. One writer at a time (the caller holds the run's lock).
    """

    def __init__(
        self,
        git_dir: Path,
        workspace: Path,
        *,
        ignore: Sequence[str] = (),
        max_file_bytes: int = 20 * 2**20,
        exclude: Sequence[Path] = (),
        secrets: Sequence[str] = (),
    ) -> None:
        self.git_dir = Path(os.path.abspath(git_dir))
        # This process's last save: while `ls-files` lists no change, the index (which only
        # this store writes) still holds its tree, so `write-tree` is skipped.
        self._last: Saved | None = None
        # A file holding one of these (e.g. a .env with the model's key) is never stored.
        self._secrets = [s.encode() for s in secrets if s]
        self.workspace = Path(os.path.realpath(workspace))
        self.max_file_bytes = max_file_bytes
        self._env = {
            **_clean_env(),
            "GIT_DIR": str(self.git_dir),
            "GIT_WORK_TREE": str(self.workspace),
            "GIT_INDEX_FILE": str(self.git_dir / "index"),
        }
        _init_repo(self.git_dir)
        patterns = _exclude_file(str(self.workspace), ignore, [*exclude, self.git_dir])
        changed = _write_if_changed(self.git_dir / "info" / "exclude", patterns)
        if changed and (self.git_dir / "index").exists():
            self._drop_ignored()  # new patterns apply to files saved before them too

    def _git(
        self,
        *args: str,
        doing: str,
        input: bytes | None = None,
        ok: tuple[int, ...] = (0,),
        env: dict[str, str] | None = None,
    ) -> bytes:
        return _git(args, env or self._env, doing=doing, cwd=self.workspace, input=input, ok=ok)

    def _unlock(self) -> None:
        # A process killed mid-write leaves the lock; there is a single writer, so it is stale.
        (self.git_dir / "index.lock").unlink(missing_ok=True)

    # -- saving ----------------------------------------------------------------------------
    def save(self) -> Saved:
        """Make the index equal the workspace; its tree, and every file left out."""
        self._unlock()
        doing = f"save a checkpoint of {self.workspace}"
        listed = self._git(
            "ls-files", "-z", "-t", "-m", "-o", "-d", "--exclude-standard", doing=doing
        )
        if not listed and self._last is not None:  # nothing changed: the index is as saved
            return self._last
        update, force_remove, skipped = self._sort_changes(_nul_list(listed))
        if force_remove:
            self._git(
                "update-index", "--force-remove", "-z", "--stdin", input=force_remove, doing=doing
            )
        if update:
            bulk = _BULK if update.count(b"\0") >= _BULK_PATHS else ()
            args = (*bulk, "update-index", "--add", "--remove", "--replace", "-z", "--stdin")
            self._git(*args, input=update, doing=doing)
        tree = self._git("write-tree", doing=doing).decode().strip()
        skipped.sort(key=lambda s: s.path)
        self._record_skipped(tree, skipped)
        self._last = Saved(tree=tree, skipped=skipped)
        return self._last

    def _sort_changes(self, listed: list[bytes]) -> tuple[bytes, bytes, list[SkippedFile]]:
        """What `update-index` gets (NUL-separated paths), what is removed from the index
        although present, and the files left out."""
        tracked: dict[bytes, bool] = {}
        for line in listed:  # "<tag> <path>": '?' untracked, else tracked (changed, deleted)
            tag, path = line[:1], line[2:]
            tracked[path] = tracked.get(path, False) or tag != b"?"
        # Tracked paths first: a file that became a directory leaves the index before the
        # files inside it come in (update-index refuses the other order).
        ordered = sorted(tracked.items(), key=lambda item: not item[1])
        update: list[bytes] = []
        force_remove: list[bytes] = []
        skipped: list[SkippedFile] = []
        links = _LeadingLinks(os.fsencode(self.workspace))
        for path, is_tracked in ordered:
            reason = self._reason_to_skip(path, links)
            if reason is None:
                update.append(path)
                continue
            if reason:
                skipped.append(SkippedFile(path=_display(path.rstrip(b"/")), reason=reason))
            if is_tracked:
                force_remove.append(path)
        return _nul_join(update), _nul_join(force_remove), skipped

    def _reason_to_skip(self, path: bytes, links: _LeadingLinks) -> str | None:
        """None: let update-index add, update or remove it; "": remove it from the index
        silently (not a file git stores); else why it is left out."""
        if path.endswith(b"/"):  # git lists an untracked nested repository as "dir/"
            return "nested git repository"
        if links.beyond(path):  # update-index refuses it ("beyond a symbolic link")
            return ""
        full = os.path.join(links.root, path)
        try:
            st = os.lstat(full)
        except OSError:
            return None  # gone: --remove drops it
        if stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode):
            return None  # a link, a submodule, or a tracked file that became a directory
        if not stat.S_ISREG(st.st_mode):
            return ""  # fifo, socket, device: git does not store them
        if st.st_size > self.max_file_bytes:
            return f"larger than {_size(self.max_file_bytes)} ({_size(st.st_size)})"
        if not os.access(full, os.R_OK):
            return "unreadable"
        if self._secrets and self._holds_secret(full):
            return "holds a secret runhands knows (e.g. an API key)"
        return None

    def _holds_secret(self, path: bytes) -> bool:
        try:
            with open(path, "rb") as file:
                data = file.read(self.max_file_bytes + 1)
        except OSError:
            return False
        return any(secret in data for secret in self._secrets)

    def _record_skipped(self, tree: str, skipped: list[SkippedFile]) -> None:
        """The latest save of a tree says which files it left out."""
        path = self.git_dir / SKIPPED_DIR / f"{tree}.json"
        if not skipped:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(exist_ok=True)
        _write_if_changed(path, msgspec.json.encode(skipped))

    def _skipped_in(self, tree: str) -> list[str]:
        try:
            data = (self.git_dir / SKIPPED_DIR / f"{tree}.json").read_bytes()
            return [s.path for s in msgspec.json.decode(data, type=list[SkippedFile])]
        except (OSError, msgspec.DecodeError):
            return []

    # -- a repository as the starting point ------------------------------------------------
    def seed_from_repository(self) -> str | None:
        """If the workspace is the top of a git repository with a commit, import that commit
        (depth 1, under BASE_REF) and start the index from its tree, so that the files the
        user tracks stay tracked even if ignored; the commit id, else None. Only reads the
        user's repository."""
        commit = self._head_commit()
        if commit is None:
            return None
        self._unlock()
        self._last = None
        try:
            self._fetch(commit)
            self._git("read-tree", commit, doing="read the repository's commit")
            self._drop_ignored()
            # Stat info for every entry: without it every save would hash every file.
            self._git("update-index", "-q", "--refresh", doing="index the workspace", ok=(0, 1))
        except CheckpointError:
            (self.git_dir / "index").unlink(missing_ok=True)  # the next save starts afresh
            return None
        return commit

    def _head_commit(self) -> str | None:
        env, ws = _clean_env(), self.workspace
        try:
            top = _git(["-C", str(ws), "rev-parse", "--show-toplevel"], env, doing="")
            if os.path.realpath(os.fsdecode(top.rstrip(b"\n"))) != str(ws):
                return None
            args = ["-C", str(ws), "rev-parse", "--verify", "-q", "HEAD^{commit}"]
            return _git(args, env, doing="").decode().strip() or None
        except CheckpointError:
            return None

    def _fetch(self, commit: str) -> None:
        # As a bare repository (no work tree, no submodules: nothing of the user's written).
        env = {k: v for k, v in self._env.items() if k not in ("GIT_WORK_TREE", "GIT_INDEX_FILE")}
        args = ["-c", "core.bare=true", "fetch", "-q", "--depth=1", "--no-tags"]
        args += ["--no-write-fetch-head", "--no-recurse-submodules", "--no-auto-gc"]
        args += [f"--upload-pack={_UPLOAD_PACK}"]
        _git(
            [*args, str(self.workspace), f"+{commit}:{BASE_REF}"],
            env,
            doing="import the repository's commit",
            cwd=self.git_dir,
        )

    def _drop_ignored(self) -> None:
        """Entries matching our own patterns go (not those matching the workspace's
        .gitignore files: what the user tracks stays tracked)."""
        self._last = None
        exclude = f"--exclude-from={self.git_dir / 'info' / 'exclude'}"
        doing = "apply checkpoint_ignore"
        listed = self._git("ls-files", "-z", "-c", "-i", exclude, doing=doing)
        if listed:
            self._git("update-index", "--force-remove", "-z", "--stdin", input=listed, doing=doing)

    def tree_of(self, commit: str) -> str:
        out = self._git("rev-parse", "--verify", "-q", f"{commit}^{{tree}}", doing=f"read {commit}")
        return out.decode().strip()

    # -- restoring -------------------------------------------------------------------------
    def checkout(self, tree: str) -> None:
        """Make the workspace equal `tree` in place: files of the index missing from it are
        deleted, its files written with their mode; untracked and ignored files stay."""
        self._unlock()
        self._last = None
        self._git("read-tree", "-u", "--reset", tree, doing=f"restore checkpoint {tree[:12]}")

    def copy_to(self, git_dir: Path) -> None:
        """A new store at `git_dir` holding all our objects (hard links where possible:
        objects never change), our refs, and no index; for a fork."""
        dest = Path(os.path.abspath(git_dir))
        try:
            dest.mkdir(mode=0o700, parents=True)
            # The objects' data is on disk already; their new names must be too (in parallel:
            # the file system commits concurrent syncs together, measured 5x faster).
            made = _copy_tree(self.git_dir / "objects", dest / "objects", link=True)
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(sync_directory, made))
            for name in ("refs", SKIPPED_DIR):
                _copy_tree(self.git_dir / name, dest / name, link=False)
            for name in ("packed-refs", "shallow"):
                if (self.git_dir / name).is_file():
                    shutil.copy2(self.git_dir / name, dest / name)
        except OSError as e:
            raise CheckpointError(f"cannot copy the checkpoints to {dest}: {e}") from None
        _init_repo(dest)
        sync_directory(dest.parent)

    # -- reading ---------------------------------------------------------------------------
    def diff(self, old: str | None, new: str, *, stat: bool = False, binary: bool = False) -> str:
        """The unified diff from `old` (None: nothing) to `new`. `binary`: a patch that
        `git apply` accepts on a copy of `old` (binary contents included, no renames).
        `stat`: the `--stat` summary. Deletions that are not the agent's are left out (see
        `_base`). Bytes that are not UTF-8 (a file in another encoding) are shown as U+FFFD,
        except in a `binary` patch, where they are kept as surrogate escapes: write it with
        `.encode(errors="surrogateescape")` to get git's exact bytes."""
        if binary:
            options = ["-p", "--binary", "--full-index", "--no-renames"]
        else:
            options = ["--stat" if stat else "-p", "-M"]
        base = self._base(old or EMPTY_TREE, new)
        out = self._git(
            "diff-tree",
            "-r",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            *options,
            base,
            new,
            doing="compare checkpoints",
        )
        return out.decode("utf-8", "surrogateescape" if binary else "replace")

    def changes(self, old: str | None, new: str) -> list[FileChange]:
        """Each file changed from `old` to `new`, sorted by path."""
        base = self._base(old or EMPTY_TREE, new)
        out = self._git(
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--raw",
            "--numstat",
            base,
            new,
            doing="compare checkpoints",
        )
        return _parse_changes(out)

    def summary(self, old: str | None, new: str) -> ChangeSummary:
        changes = self.changes(old, new)
        return ChangeSummary(
            files=len(changes),
            added=sum(c.added for c in changes),
            removed=sum(c.removed for c in changes),
        )

    def _base(self, old: str, new: str) -> str:
        """`old` without the files missing from `new` only because checkpoints leave them
        out: those matching our ignore/exclude patterns (checked now, against the patterns
        of this open) and those `save` skipped for `new` (recorded per tree under
        SKIPPED_DIR). E.g. a tracked file of the seed commit that checkpoint_ignore drops
        is not a deletion in the run's patch."""
        out = self._git(
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--name-only",
            "--diff-filter=D",
            old,
            new,
            doing="compare checkpoints",
        )
        deleted = _nul_list(out)
        if not deleted:
            return old
        skipped = [os.fsencode(p) for p in self._skipped_in(new)]
        left_out = {p for p in deleted if any(_under(p, s) for s in skipped)}
        left_out |= self._ignored(deleted)
        return self._tree_without(old, sorted(left_out)) if left_out else old

    def _ignored(self, paths: list[bytes]) -> set[bytes]:
        # In an empty work tree: only info/exclude applies, not the workspace's .gitignore.
        with tempfile.TemporaryDirectory() as empty:
            env = {**self._env, "GIT_WORK_TREE": empty}
            out = _git(
                ["check-ignore", "--no-index", "-z", "--stdin"],
                env,
                doing="compare checkpoints",
                cwd=Path(empty),
                input=_nul_join(paths),
                ok=(0, 1),
            )
        return set(_nul_list(out))

    def _tree_without(self, tree: str, paths: list[bytes]) -> str:
        index = self.git_dir / "index.diff"
        env = {**self._env, "GIT_INDEX_FILE": str(index)}
        doing = "compare checkpoints"
        try:
            self._git("read-tree", tree, env=env, doing=doing)
            args = ("update-index", "--force-remove", "-z", "--stdin")
            self._git(*args, input=_nul_join(paths), env=env, doing=doing)
            return self._git("write-tree", env=env, doing=doing).decode().strip()
        finally:
            index.unlink(missing_ok=True)

    def verify(self, tree: str) -> None:
        """Raise CheckpointError if `tree` or any object it references is missing."""
        try:
            self._git("rev-list", "--objects", "--quiet", tree, doing="verify")
        except CheckpointError:
            if not git_available():
                raise
            raise CheckpointError(
                f"checkpoint {tree[:12]} is damaged: its objects are missing from {self.git_dir}"
            ) from None


class _LeadingLinks:
    """Whether a workspace path lies beyond a symbolic link (a directory replaced by a link)."""

    def __init__(self, root: bytes) -> None:
        self.root = root
        self._dirs: dict[bytes, bool] = {}

    def beyond(self, path: bytes) -> bool:
        parent = os.path.dirname(path.rstrip(b"/"))
        return bool(parent) and self._is_link_or_beyond(parent)

    def _is_link_or_beyond(self, directory: bytes) -> bool:
        if directory not in self._dirs:
            parent = os.path.dirname(directory)
            result = bool(parent) and self._is_link_or_beyond(parent)
            if not result:
                result = os.path.islink(os.path.join(self.root, directory))
            self._dirs[directory] = result
        return self._dirs[directory]


def _nul_join(paths: Iterable[bytes]) -> bytes:
    return b"".join(p + b"\0" for p in paths)


def _under(path: bytes, skipped: bytes) -> bool:
    return path == skipped or path.startswith(skipped + b"/")


def _parse_changes(out: bytes) -> list[FileChange]:
    """`diff-tree -z --raw --numstat`: ":<modes> <ids> <status>\\0<path>\\0" records, then
    "<added>\\t<removed>\\t<path>\\0" ("-" for binary files)."""
    fields = out.split(b"\0")
    status: dict[bytes, str] = {}
    counts: dict[bytes, tuple[bytes, bytes]] = {}
    i = 0
    while i < len(fields):
        field = fields[i]
        if field.startswith(b":"):
            letter = field.split()[-1].decode()[:1]
            status[fields[i + 1]] = _STATUS.get(letter, letter)
            i += 2
            continue
        if field:
            added, removed, path = field.split(b"\t", 2)
            counts[path] = (added, removed)
        i += 1
    return [_change(path, status[path], counts.get(path)) for path in sorted(status)]


def _change(path: bytes, status: str, counts: tuple[bytes, bytes] | None) -> FileChange:
    if counts is None or counts[0] == b"-":
        return FileChange(path=_display(path), status=status, binary=counts is not None)
    return FileChange(
        path=_display(path), status=status, added=int(counts[0]), removed=int(counts[1])
    )


def _copy_tree(src: Path, dest: Path, *, link: bool) -> list[Path]:
    """Copy a directory tree, hard-linking files when `link` (copying across devices); the
    directories made."""
    made = []
    for root, _dirs, files in os.walk(src):
        target = dest / os.path.relpath(root, src)
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        made.append(target)
        for name in files:
            _link_or_copy(Path(root, name), target / name, link=link)
    return made


def _link_or_copy(src: Path, dest: Path, *, link: bool) -> None:
    if link:
        try:
            os.link(src, dest)
            return
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
    shutil.copy2(src, dest)
