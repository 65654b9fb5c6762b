"""Isolation of the local sandbox: what the agent may see and write, enforced twice.

The persistent shell runs inside bubblewrap (`bwrap_argv`): the system read-only, the
workspace, `[sandbox] writable_paths` and a private /tmp writable (`workspace-write`), or
only the private /tmp (`read-only`); hidden paths covered by empty read-only directories
or /dev/null; its own PID, IPC and UTS namespaces (and network namespace when the network
is off), no capabilities, killed with runhands. The editor works in runhands itself, so
the same mount plan is read by `PathPolicy`, which resolves each path as the shell would
see it (symlinks and `..` included) before a file is opened: the editor reaches exactly
what the shell reaches. In mode `none` nothing constrains the shell, but the policy still
refuses hidden paths.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import posixpath
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple

import msgspec

from sandbox.protocol import SandboxError
from sandbox.pty_transport import Launch

Mode = Literal["workspace-write", "read-only", "none"]
Network = Literal["on", "off"]
# Processes (threads, in fact) the sandbox may have at once: a fork bomb stops there.
DEFAULT_MAX_PROCESSES = 2048
# Where the shell finds its home and its /tmp inside the sandbox.
PRIVATE_TMP = "/tmp"
PRIVATE_HOME = "/tmp/home"
# Never opened by the editor: their files are the kernel's, not the agent's (and the
# host's /proc would show runhands' own environment).
_SPECIAL = ("/proc", "/dev", "/sys")
# Kernel knobs root could write even without capabilities: read-only, as Docker does.
_PROC_READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
_PROC_MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
# Where services listen on unix sockets, hidden whole: a read-only mount does not stop
# connect(), and the Docker engine's socket is root on the host (so are systemd's, the
# session bus starts programs outside any sandbox...). Only the resolver's file is kept.
_SERVICE_DIRS = ("/run", "/var/run")
_RESOLV_CONF = "/etc/resolv.conf"
_MAX_SYMLINKS = 40


class IsolationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the local sandbox enforces; paths are absolute paths of this machine."""

    mode: Mode = "none"
    network: Network = "on"
    writable_paths: tuple[str, ...] = ()
    hidden_paths: tuple[str, ...] = ()
    max_processes: int = DEFAULT_MAX_PROCESSES


MountKind = Literal["ro", "rw", "hide-dir", "hide-file", "dev", "proc"]


class Mount(NamedTuple):
    """One mount of the sandbox's view: `target` shows `source` (a path of this machine)."""

    target: str
    kind: MountKind
    source: str = ""


def inside(path: str, root: str) -> bool:
    """Whether `path` is `root` or lies below it (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


# -- does bubblewrap work here? ---------------------------------------------------------------


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def bwrap_problem(bwrap: str | None) -> str | None:
    """Why bubblewrap cannot isolate here (None: it can), found by starting a sandbox
    with every namespace we use; once per process and binary."""
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt install bubblewrap)"
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    argv += [*_NAMESPACES, "--unshare-net", "--", shutil.which("true") or "/bin/true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap did not start: {exc}"
    if done.returncode != 0:
        reason = " ".join(done.stderr.split())[:300] or f"exit code {done.returncode}"
        return f"bubblewrap does not work here: {reason}"
    return None


# --die-with-parent: nothing survives runhands; --new-session and --as-pid-1 make the shell a
# session leader, so it can take the pty as its controlling terminal (job control, C-c).
_NAMESPACES = [
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    "--new-session",
    "--as-pid-1",
    "--cap-drop",
    "ALL",
]


# -- the mount plan ---------------------------------------------------------------------------


def plan_mounts(workdir: str, settings: IsolationSettings, private: str) -> list[Mount]:
    """The sandbox's view, parents before children (a later mount covers an earlier one);
    `private` holds the private /tmp and an empty directory."""
    mounts = [Mount("/", "ro", "/"), Mount("/dev", "dev"), Mount("/proc", "proc")]
    mounts += [Mount(p, "ro", p) for p in _PROC_READ_ONLY if os.path.lexists(p)]
    mounts += [Mount(p, "hide-file", os.devnull) for p in _PROC_MASKED if os.path.lexists(p)]
    mounts.append(Mount(PRIVATE_TMP, "rw", os.path.join(private, "tmp")))
    roots = writable_roots(workdir, settings)
    for root in roots:
        mounts.append(Mount(root, "rw", root))
        mounts += _protected(root, os.path.join(private, "empty"))
    hiding = _hiding(sorted_view(mounts), roots, settings.hidden_paths)
    mounts += hiding + _kept_services(hiding)
    if inside_hidden(os.path.realpath(workdir), mounts):
        raise SandboxError(f"the working directory {workdir} is among the hidden paths")
    return sorted_view(mounts)


def writable_roots(workdir: str, settings: IsolationSettings) -> list[str]:
    """The workspace and `writable_paths` (workspace-write only); each must exist."""
    if settings.mode != "workspace-write":
        return []
    roots = [os.path.realpath(workdir)]
    for path in settings.writable_paths:
        real = os.path.realpath(path)
        if not os.path.isdir(real):
            raise SandboxError(f"[sandbox] writable_paths: {path} is not an existing directory")
        roots.append(real)
    return roots


def sorted_view(mounts: list[Mount]) -> list[Mount]:
    """By depth, keeping the given order among equals: bubblewrap mounts a parent before
    what lies inside it, and the last mount of a path wins."""
    return sorted(mounts, key=lambda m: len([p for p in m.target.split("/") if p]))


def _protected(root: str, empty: str) -> list[Mount]:
    """Read-only inside a writable root: `.git/hooks` and `.git/config` (the agent may
    commit, not plant a hook) and `.openhands/`. `.git` is bound over itself: a mount
    point cannot be renamed, so it cannot be swapped for a copy with hooks."""
    git = os.path.join(root, ".git")
    mounts: list[Mount] = []
    if os.path.isdir(git) and not os.path.islink(git):
        hooks = os.path.join(git, "hooks")
        has_hooks = os.path.isdir(hooks) and not os.path.islink(hooks)
        mounts += [Mount(git, "rw", git), Mount(hooks, "ro", hooks if has_hooks else empty)]
        config = os.path.join(git, "config")
        if os.path.isfile(config) and not os.path.islink(config):
            mounts.append(Mount(config, "ro", config))
    dot_openhands = os.path.join(root, ".openhands")
    if os.path.isdir(dot_openhands) and not os.path.islink(dot_openhands):
        mounts.append(Mount(dot_openhands, "ro", dot_openhands))
    return mounts


def _hiding(view: list[Mount], roots: list[str], hidden: Iterable[str]) -> list[Mount]:
    """Covers for the hidden paths the view would show. Inside a writable root, each
    directory on the way is bound over itself, so the agent cannot move a hidden path
    aside (out of its cover) nor put a new one in its place."""
    mounts: list[Mount] = []
    for path in _outermost(hidden):
        covering = _covering(view, path)
        if covering is None or covering.kind not in ("ro", "rw"):
            continue  # already hidden
        if covering.source != covering.target:
            continue  # the sandbox shows something else there (its private /tmp)
        root = next((r for r in roots if inside(path, r) and path != r), None)
        if root is not None:
            names = os.path.relpath(path, root).split(os.sep)[:-1]
            steps = [os.path.join(root, *names[: i + 1]) for i in range(len(names))]
            mounts += [Mount(step, "rw", step) for step in steps]
        kind: MountKind = "hide-dir" if os.path.isdir(path) else "hide-file"
        mounts.append(Mount(path, kind, "" if kind == "hide-dir" else os.devnull))
    return mounts


def _outermost(paths: Iterable[str]) -> list[str]:
    """Existing paths, real, without those inside another one (hidden with it)."""
    real = {os.path.realpath(p) for p in paths if os.path.lexists(p)}
    return sorted(p for p in real if not any(q != p and inside(p, q) for q in real))


def _covering(mounts: list[Mount], path: str) -> Mount | None:
    return next((m for m in reversed(mounts) if inside(path, m.target)), None)


def inside_hidden(path: str, mounts: list[Mount]) -> bool:
    covering = _covering(sorted_view(mounts), path)
    return covering is not None and covering.kind in ("hide-dir", "hide-file")


def service_dirs() -> list[str]:
    """Where services listen (real paths), to hide: /run, and the user's runtime
    directory when it lies elsewhere."""
    dirs = [*_SERVICE_DIRS, os.environ.get("XDG_RUNTIME_DIR", "")]
    return sorted({os.path.realpath(d) for d in dirs if d and os.path.isdir(d)})


def _kept_services(hidden: list[Mount]) -> list[Mount]:
    """What must stay visible in a hidden service directory: the resolver configuration
    /etc/resolv.conf often links to (systemd-resolved, resolvconf)."""
    resolv = os.path.realpath(_RESOLV_CONF)
    if os.path.isfile(resolv) and any(inside(resolv, m.target) for m in hidden):
        return [Mount(resolv, "ro", resolv)]
    return []


# -- the bubblewrap command -------------------------------------------------------------------


def bwrap_argv(
    bwrap: str, mounts: list[Mount], settings: IsolationSettings, cwd: str, tty: str
) -> list[str]:
    """bubblewrap's command line for the mount plan; the terminal `tty` of this machine is
    the sandbox's /dev/console, which the shell opens to make it its own."""
    argv = [bwrap]
    remount: list[str] = []
    for mount in mounts:
        argv += _mount_args(mount)
        if mount.kind == "hide-dir":
            remount += ["--remount-ro", mount.target]  # once what lies inside is mounted
        if mount.kind == "dev":
            argv += ["--dev-bind", tty, "/dev/console"]
    argv += remount + _NAMESPACES
    if settings.network == "off":
        argv.append("--unshare-net")
    return [*argv, "--chdir", cwd, "--"]


def _mount_args(mount: Mount) -> list[str]:
    if mount.kind == "dev":
        return ["--dev", mount.target]
    if mount.kind == "proc":
        return ["--proc", mount.target]
    if mount.kind == "hide-dir":
        return ["--tmpfs", mount.target]
    flag = "--bind" if mount.kind == "rw" else "--ro-bind"
    return [flag, mount.source, mount.target]


# -- one isolated sandbox ----------------------------------------------------------------------


class Confinement:
    """What one isolated local sandbox holds: its private directory (the /tmp and home the
    shell sees, an empty directory to cover with), its mount plan and process limit. It
    starts each shell of the sandbox (`launch`) and checks its file operations (`policy`)."""

    def __init__(self, workdir: str, settings: IsolationSettings) -> None:
        self.workdir = workdir
        self.settings = settings
        self.policy: PathPolicy | None = None
        self._bwrap = ""
        self._private: str | None = None
        self._mounts: list[Mount] = []
        self._limit: ProcessLimit | None = None

    def start(self) -> None:
        """Raises SandboxError when the mode cannot be had here: never weaker."""
        if self.policy is not None:
            return
        bwrap = find_bwrap()
        problem = bwrap_problem(bwrap)
        if problem or bwrap is None:
            raise SandboxError(f"isolation {self.settings.mode} is not available: {problem}")
        settings = msgspec.structs.replace(
            self.settings, hidden_paths=(*self.settings.hidden_paths, *service_dirs())
        )
        private = _private_dir()
        try:
            self._mounts = plan_mounts(self.workdir, settings, private)
        except SandboxError:
            shutil.rmtree(private, ignore_errors=True)
            raise
        self._private, self._bwrap = private, bwrap
        self.policy = PathPolicy(settings.mode, self._mounts, settings.hidden_paths)
        self._limit = ProcessLimit(settings.max_processes)

    def launch(self, tty: str, cwd: str) -> Launch:
        assert self._limit is not None, "start() first"
        argv = bwrap_argv(self._bwrap, self._mounts, self.settings, cwd, tty)
        return Launch(self._limit.wrap(argv), "/dev/console", "/", self._limit.setup())

    @property
    def process_limit(self) -> str:
        """How processes are limited: "cgroup", "rlimit" or "none"."""
        return self._limit.kind if self._limit else "none"

    def close(self) -> None:
        """After the shell is gone: what is left in the cgroup, the private directory."""
        if self._limit is not None:
            self._limit.close()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None


_PRIVATE_PREFIX = "runhands-sandbox-"


def _private_dir() -> str:
    """A new directory holding the sandbox's /tmp (with its home) and an empty directory
    to cover with; real, so opened files can be compared with it. Those of runhands
    processes that died (killed: nothing removed them) go first."""
    _remove_dead_private_dirs()
    prefix = f"{_PRIVATE_PREFIX}{os.getpid()}-"
    private = os.path.realpath(tempfile.mkdtemp(prefix=prefix))
    os.makedirs(os.path.join(private, "tmp", os.path.relpath(PRIVATE_HOME, PRIVATE_TMP)))
    os.mkdir(os.path.join(private, "empty"))
    return private


def _remove_dead_private_dirs() -> None:
    parent = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            owner = name.removeprefix(_PRIVATE_PREFIX).split("-")[0]
            if name.startswith(_PRIVATE_PREFIX) and owner.isdigit() and not _alive(owner):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _alive(pid: str) -> bool:
    return os.path.exists(f"/proc/{pid}")


# -- the same rules for the file operations -----------------------------------------------------


class PathPolicy:
    """The sandbox's view of the file system for the file operations done in runhands:
    paths are resolved as the shell would resolve them, then mapped to this machine."""

    def __init__(self, mode: Mode, mounts: list[Mount], hidden: Iterable[str]) -> None:
        self.mode = mode
        self._mounts = mounts
        # Hidden even when absent: the editor must not create them either.
        self._hidden = sorted({os.path.abspath(os.path.expanduser(p)) for p in hidden})
        self._hidden += sorted({os.path.realpath(p) for p in self._hidden} - set(self._hidden))

    @classmethod
    def unisolated(cls, hidden: Iterable[str]) -> PathPolicy:
        return cls("none", [Mount("/", "rw", "/")], hidden)

    def resolve(self, path: str) -> str:
        """`path` (absolute) with symlinks and `..` resolved in the sandbox's view; the
        missing end of a path is kept as it is. OSError(ELOOP) on a symlink loop."""
        todo = [p for p in reversed(path.split("/")) if p]
        resolved, links = "/", 0
        while todo:
            name = todo.pop()
            if name in (".", ".."):
                resolved = posixpath.dirname(resolved) if name == ".." else resolved
                continue
            candidate = posixpath.join(resolved, name)
            host = None if self._closed(candidate) else self.host_path(candidate)
            target = _readlink(host) if host else None
            if target is None:
                resolved = candidate
                continue
            links += 1
            if links > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, f"too many levels of symbolic links in {path}")
            resolved = "/" if target.startswith("/") else resolved
            todo += [p for p in reversed(target.split("/")) if p]
        return resolved

    def host_path(self, path: str) -> str | None:
        """Where a resolved sandbox path lives on this machine; None when nothing of this
        machine is there (hidden, or the kernel's own files)."""
        mount = _covering(self._mounts, path)
        if mount is None or mount.kind not in ("ro", "rw"):
            return None
        rest = path[len(mount.target) :].lstrip("/")
        return posixpath.join(mount.source, rest) if rest else mount.source

    def check_read(self, path: str) -> str:
        """The file of this machine to read for sandbox path `path`; PermissionError when
        the sandbox does not show it."""
        return self._check(path, write=False)

    def check_write(self, path: str) -> str:
        """The file of this machine to write for sandbox path `path`; PermissionError when
        the sandbox may not write it."""
        return self._check(path, write=True)

    def hidden(self, resolved: str) -> bool:
        """Whether a resolved sandbox path is hidden from the agent: covered, or inside a
        hidden path (absent ones too) that lies in the mount showing it (a writable root
        inside a hidden directory is shown)."""
        mount = _covering(self._mounts, resolved)
        if mount is None or mount.kind in ("hide-dir", "hide-file"):
            return True
        return any(inside(resolved, h) and inside(h, mount.target) for h in self._hidden)

    def _check(self, path: str, *, write: bool) -> str:
        resolved = self.resolve(path)
        shown = path if resolved == path else f"{path} (which leads to {resolved})"
        if any(inside(resolved, s) for s in _SPECIAL):
            raise PermissionError(
                f"Permission denied: {shown} is a kernel or device file; the editor does not "
                "open those (use execute_bash)"
            )
        host = self.host_path(resolved)
        if host is None or self.hidden(resolved):
            raise PermissionError(f"Permission denied: {shown} is hidden from the agent")
        if write and not self._writable(resolved):
            raise PermissionError(
                f"Permission denied: {shown} is read-only in this sandbox (isolation "
                f"{self.mode}: only {', '.join(self.writable())} can be written)"
            )
        return host

    def writable(self) -> list[str]:
        """The writable places, outermost first, as the agent sees them."""
        tops = [m.target for m in self._mounts if m.kind == "rw"]
        return [t for t in tops if not any(o != t and inside(t, o) for o in tops)]

    def _writable(self, resolved: str) -> bool:
        mount = _covering(self._mounts, resolved)
        return mount is not None and mount.kind == "rw"

    def _closed(self, path: str) -> bool:
        """Hidden or special: what lies there is never looked at (no symlink followed)."""
        return self.hidden(path) or any(inside(path, s) for s in _SPECIAL)


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None  # not a symlink, or missing


def open_checked(host_path: str, flags: int, mode: int = 0o666) -> int:
    """Open a path PathPolicy checked, refusing if it changed in between (a component
    swapped for a symlink by something running in the sandbox)."""
    fd = os.open(host_path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return fd  # no /proc here: the check before opening is all there is
    if opened != host_path:
        os.close(fd)
        raise PermissionError(f"Permission denied: {host_path} changed while it was opened")
    return fd


# -- a limit on processes ----------------------------------------------------------------------


class ProcessLimit:
    """At most `limit` tasks in the sandbox. A pids cgroup when this machine lets runhands
    make one (cgroup v2, or v1's pids hierarchy): it holds for root too. Otherwise
    RLIMIT_NPROC in the shell, which counts all of the user's processes and which the
    kernel does not apply to root: then there is no limit (`kind` says which)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cgroup = _make_cgroup(limit)
        self.kind = "cgroup" if self.cgroup else "rlimit" if os.getuid() != 0 else "none"

    def wrap(self, argv: list[str]) -> list[str]:
        """The command, started inside the cgroup (before bubblewrap forks)."""
        if not self.cgroup:
            return argv
        join = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
        return ["/bin/sh", "-c", join, self.cgroup, *argv]

    def setup(self) -> str:
        """Shell commands for the sandbox's first shell."""
        if self.kind != "rlimit":
            return ""
        return f"ulimit -u {self.limit + _user_tasks()} 2>/dev/null; "

    def close(self) -> None:
        """Kill what is left in the cgroup and remove it; idempotent."""
        if self.cgroup:
            _remove_cgroup(self.cgroup)
            self.cgroup = None


def _cgroup_parents() -> Iterator[str]:
    """This process's own cgroup directories that could hold a pids-limited child."""
    own = _own_cgroups()
    for mount_point, root, fstype, options in _cgroup_mounts():
        key = "" if fstype == "cgroup2" else "pids" if "pids" in options.split(",") else None
        if key is None or key not in own:
            continue
        path = own[key]
        rel = path[len(root) :] if inside(path, root) else path
        yield os.path.join(mount_point, rel.lstrip("/"))


def _own_cgroups() -> dict[str, str]:
    """Controller ("" for cgroup v2) -> this process's cgroup path."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                found[name] = path
    return found


def _cgroup_mounts() -> Iterator[tuple[str, str, str, str]]:
    """(mount point, root, fstype, super options) of the cgroup file systems."""
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, tail = line.partition(" - ")
            parts, rest = fields.split(), tail.split()
            if len(parts) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
                yield parts[4], parts[3], rest[0], rest[2]


def _make_cgroup(limit: int) -> str | None:
    for parent in _cgroup_parents():
        _remove_stale(parent)
        path = os.path.join(parent, f"runhands-{os.getpid()}-{secrets.token_hex(4)}")
        with contextlib.suppress(OSError):
            _enable_pids(parent)
        try:
            os.mkdir(path)
        except OSError:
            continue
        try:
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(limit))
            return path
        except OSError:
            _remove_cgroup(path)
    return None


def _enable_pids(parent: str) -> None:
    """cgroup v2: a child has pids.max only when its parent hands the controller down."""
    control = os.path.join(parent, "cgroup.subtree_control")
    if not os.path.exists(control):
        return  # v1
    with open(control) as f:
        if "pids" in f.read().split():
            return
    with open(control, "w") as f:
        f.write("+pids")


def _remove_stale(parent: str) -> None:
    """Cgroups of runhands processes that died without removing theirs (empty ones only:
    rmdir refuses a cgroup that still has processes)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            owner = name.split("-")[1] if name.startswith("runhands-") else ""
            if owner.isdigit() and not _alive(owner):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(parent, name))


def _remove_cgroup(path: str) -> None:
    for _ in range(200):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            _kill_cgroup(path)
            time.sleep(0.005)


def _kill_cgroup(path: str) -> None:
    with contextlib.suppress(OSError), open(os.path.join(path, "cgroup.procs")) as f:
        for pid in f.read().split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)


def _user_tasks() -> int:
    """How many tasks (threads) this user has now: RLIMIT_NPROC counts them all."""
    uid, count = os.getuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{name}/task"))
    return count
