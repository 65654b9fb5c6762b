"""Which sandbox a run gets, from its configuration: the local machine (isolated as the
config asks) or a container."""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from controller.config import AppConfig
from controller.config.volumes import Volume, VolumeError, parse_volumes
from controller.errors import UserError
from controller.run.setup import passed_environment, resolve_workdir
from sandbox import Sandbox, SandboxError
from sandbox.isolation import (
    IsolationSettings,
    Mode,
    Network,
    bwrap_problem,
    find_bwrap,
    inside,
)
from sandbox.local import LocalSandbox

if TYPE_CHECKING:
    from sandbox.docker_engine import Mount


class SandboxConfigError(UserError):
    """The sandbox settings are unusable: a usage error, found before anything starts."""


def agent_workdir(config: AppConfig, host_workdir: str) -> str:
    """Where the agent works: the host directory itself, or its mount point in a container."""
    if config.core.runtime == "docker":
        return config.core.workspace_mount_path_in_sandbox
    return host_workdir


def make_sandbox(
    config: AppConfig,
    run_id: str,
    host_workdir: str,
    env: dict[str, str],
    scope: str,
    stop: threading.Event | None = None,
) -> Sandbox:
    """`scope` (the state directory) tells this run's containers from other directories';
    `stop` ends a command's wait (see BashSession)."""
    if config.core.runtime == "docker":
        return _docker_sandbox(config, run_id, host_workdir, scope, stop)
    return local_sandbox(config, host_workdir, env, stop=stop)


# -- the local runtime --------------------------------------------------------------------

# Where credentials usually live: hidden from every sandbox.
CREDENTIAL_PATHS = (
    "~/.ssh",
    "~/.gnupg",
    "~/.aws",
    "~/.azure",
    "~/.config/gcloud",
    "~/.kube",
    "~/.docker",
    "~/.netrc",
    "~/.git-credentials",
)


def local_sandbox(
    config: AppConfig,
    host_workdir: str,
    env: dict[str, str],
    *,
    mode: Mode | None = None,
    network: Network | None = None,
    stop: threading.Event | None = None,
) -> LocalSandbox:
    """The local sandbox, isolated as `mode` (default: the config's) asks."""
    isolation = local_isolation(config, mode=mode, network=network)
    _guard_config_dir(host_workdir, isolation)
    return LocalSandbox(
        host_workdir,
        soft_timeout=config.sandbox.soft_timeout,
        # [sandbox] timeout: the longest one execute_bash call waits for a command that
        # keeps printing; the command goes on, and the model may wait for more.
        max_wait=config.sandbox.timeout,
        env=env,
        isolation=isolation,
        stop=stop,
    )


def _guard_config_dir(host_workdir: str, isolation: IsolationSettings) -> None:
    """Create runhands' config directory when it is missing where the agent may write (the
    workspace is $HOME): hidden once it exists, nothing can be planted there for the next
    run."""
    if isolation.mode != "workspace-write":
        return
    path = os.path.realpath(platformdirs.user_config_dir("runhands"))
    roots = [host_workdir, *isolation.writable_paths]
    if not os.path.exists(path) and any(inside(path, os.path.realpath(r)) for r in roots):
        with contextlib.suppress(OSError):
            os.makedirs(path, mode=0o700, exist_ok=True)


def local_isolation(
    config: AppConfig, *, mode: Mode | None = None, network: Network | None = None
) -> IsolationSettings:
    """The isolation the config asks for. "auto" is workspace-write when bubblewrap works
    here, else none (with one warning); an explicit mode is passed on as it is, so the
    sandbox fails to start (exit 4) rather than run weaker than asked."""
    sandbox = config.sandbox
    requested = mode or sandbox.isolation
    return IsolationSettings(
        mode=_auto_mode() if requested == "auto" else requested,
        network=network or sandbox.network,
        writable_paths=tuple(_host_path(p) for p in sandbox.writable_paths),
        hidden_paths=tuple(hidden_host_paths(config)),
    )


def hidden_host_paths(config: AppConfig) -> list[str]:
    """What no sandbox shows the agent, whatever the mode: runhands' own files (every
    run's store, its config files, .env), the usual credential stores, and `[sandbox]
    hidden_paths`."""
    state_dir = str(Path(config.core.file_store_path).expanduser().resolve())
    own = [*runhands_own_paths(state_dir), _host_path("~/.config/runhands")]
    listed = [*CREDENTIAL_PATHS, *config.sandbox.hidden_paths]
    return own + [_host_path(p) for p in listed]


def _host_path(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def _auto_mode() -> Mode:
    problem = bwrap_problem(find_bwrap())
    if problem is None:
        return "workspace-write"
    _warn_unisolated(problem)
    return "none"


@functools.cache
def _warn_unisolated(problem: str) -> None:
    """Once per process, however many sandboxes it starts."""
    print(
        f"runhands: warning: {problem}; the local sandbox runs WITHOUT isolation (the agent "
        'can read and change whatever you can). Set [sandbox] isolation = "none" '
        "(SANDBOX_ISOLATION=none) to accept this without the warning.",
        file=sys.stderr,
        flush=True,
    )


def check_docker_settings(config: AppConfig) -> None:
    """Fail before anything starts when the docker runtime cannot be set up."""
    if config.core.runtime != "docker":
        return
    if not _image(config):
        raise SandboxConfigError(
            "the docker runtime needs an image: set SANDBOX_RUNTIME_CONTAINER_IMAGE "
            "(any image with bash, e.g. python:3.12-slim)"
        )
    _network_mode(config)
    state_dir = str(Path(config.core.file_store_path).expanduser().resolve())
    _mounts(config, resolve_workdir(config), state_dir)  # SANDBOX_VOLUMES, what they reach


def _image(config: AppConfig) -> str | None:
    sandbox = config.sandbox
    return sandbox.runtime_container_image or sandbox.base_container_image


def _docker_sandbox(
    config: AppConfig, run_id: str, host_workdir: str, scope: str, stop: threading.Event | None
) -> Sandbox:
    from sandbox.docker import DockerSandbox

    sandbox = config.sandbox
    image = _image(config)
    if not image:
        raise SandboxError("no image: set SANDBOX_RUNTIME_CONTAINER_IMAGE")
    mounts = _mounts(config, host_workdir, scope)
    for warning in _docker_warnings(config, host_workdir):
        print(f"runhands: warning: {warning}", file=sys.stderr, flush=True)
    return DockerSandbox(
        image,
        run_id=run_id,
        workdir=config.core.workspace_mount_path_in_sandbox,
        mounts=mounts,
        user=_user(sandbox.user_id),
        # Only what the user passes on purpose: the host's environment stays out.
        env=passed_environment(config, os.environ),
        soft_timeout=sandbox.soft_timeout,
        max_wait=sandbox.timeout,
        network_mode=_network_mode(config),
        mem_limit=sandbox.memory_limit,
        nano_cpus=int(sandbox.cpus * 1e9) if sandbox.cpus else None,
        keep_alive=sandbox.keep_runtime_alive,
        scope=scope,
        stop=stop,
    )


def _network_mode(config: AppConfig) -> str | None:
    """`[sandbox] network = "off"` is docker's network_mode none; "on" keeps network_mode
    (the engine's default: a bridge, through which the host is reachable)."""
    sandbox = config.sandbox
    # OpenHands' SANDBOX_USE_HOST_NETWORK (docker_runtime.py: network_mode='host').
    mode = sandbox.network_mode or ("host" if sandbox.use_host_network else None)
    if sandbox.network == "on":
        return mode
    if mode not in (None, "none"):
        raise SandboxConfigError(
            f"[sandbox] network is off but network_mode is {mode!r}: "
            "unset network_mode and use_host_network, or set network = on"
        )
    return "none"


def runhands_own_paths(state_dir: str) -> dict[str, str]:
    """runhands' own files, which no sandbox may see or change (path: what it is): every
    run's store, the user config directory, and the `config.toml` and `.env` read from the
    current directory."""
    cwd = os.getcwd()
    return {
        state_dir: "the state directory",
        platformdirs.user_config_dir("runhands"): "runhands' config directory",
        os.path.join(cwd, "config.toml"): "the config file",
        os.path.join(cwd, ".env"): "the .env file",
    }


def _mounts(config: AppConfig, host_workdir: str, state_dir: str) -> list[Mount]:
    """SANDBOX_VOLUMES, plus the working directory at the workspace mount point when no
    volume is mounted there, plus what hides the hidden paths lying inside them (a path
    the user mounts itself is shown, unless it is runhands' own: that is refused)."""
    from sandbox.docker_mounts import enclosing, hiding_mounts

    mounts = _user_mounts(config, host_workdir)
    own = runhands_own_paths(state_dir)
    for mount in mounts:
        if found := enclosing(mount.host, own):
            raise SandboxConfigError(
                f"cannot mount {mount.host} into the container: it lies inside {own[found]} "
                f"{found}, which no sandbox may reach"
            )
    _make_hideable(platformdirs.user_config_dir("runhands"), mounts)
    return mounts + hiding_mounts(mounts, [*hidden_host_paths(config), state_dir])


def _user_mounts(config: AppConfig, host_workdir: str) -> list[Mount]:
    """SANDBOX_VOLUMES, and the working directory unless a volume is the workspace."""
    from sandbox.docker_engine import Mount

    mounts = [
        Mount(host=v.host, container=v.container, read_only=v.mode == "ro")
        for v in _volumes(config)
    ]
    target = config.core.workspace_mount_path_in_sandbox
    if all(m.container.rstrip("/") != target.rstrip("/") for m in mounts):
        _check_workdir(host_workdir)
        mounts.append(Mount(host=host_workdir, container=target, read_only=False))
    return mounts


def _volumes(config: AppConfig) -> list[Volume]:
    try:
        return parse_volumes(config.sandbox.volumes or "")
    except VolumeError as e:
        raise SandboxConfigError(str(e)) from None


def _check_workdir(host_workdir: str) -> None:
    """The working directory, mounted without being listed in SANDBOX_VOLUMES, must not be
    the whole machine nor show the engine's socket."""
    from sandbox.docker_mounts import engine_sockets, reached_socket

    if os.path.realpath(host_workdir) == "/":
        raise SandboxConfigError(
            "the working directory is /: the container would get the whole machine; "
            "run from a project directory or give one with -d"
        )
    if socket := reached_socket(host_workdir, engine_sockets(os.environ)):
        raise SandboxConfigError(
            f"the working directory {host_workdir} holds the container engine's socket "
            f"{socket} (whoever reaches it is root on this machine); use another directory, "
            "or list it in SANDBOX_VOLUMES to mount it on purpose"
        )


def _make_hideable(path: str, mounts: list[Mount]) -> None:
    """Create runhands' config directory when a mount would show where it belongs: hidden
    once it exists, the agent cannot plant a config there for the next run."""
    from sandbox.isolation import inside

    real = os.path.realpath(path)
    if not os.path.exists(real) and any(inside(real, os.path.realpath(m.host)) for m in mounts):
        with contextlib.suppress(OSError):
            os.makedirs(real, mode=0o700, exist_ok=True)


def _docker_warnings(config: AppConfig, host_workdir: str) -> list[str]:
    """What the user asked for on purpose that hands the agent the host."""
    from sandbox.docker_mounts import engine_sockets, reached_socket

    sockets = engine_sockets(os.environ)
    warnings = [
        f"SANDBOX_VOLUMES mounts {m.host} at {m.container}, which holds the container "
        f"engine's socket {socket}: the agent can control the engine, and so is root on "
        "this machine"
        for m in _user_mounts(config, host_workdir)
        if (socket := reached_socket(m.host, sockets))
    ]
    if _network_mode(config) == "host":
        warnings.append(
            "network_mode is host: the agent reaches every service of this machine, "
            "those on 127.0.0.1 included"
        )
    return warnings


def _user(user_id: int | None) -> str:
    """uid:gid for the container: SANDBOX_USER_ID, else the user running runhands (as
    OpenHands does), never the image's default (often root). The group is the host user's
    primary group when the uid exists here, so files the agent creates in a mount belong
    to that user."""
    if user_id is None:
        return f"{os.getuid()}:{os.getgid()}"
    try:
        gid = pwd.getpwuid(user_id).pw_gid
    except KeyError:
        gid = user_id if user_id != os.getuid() else os.getgid()
    return f"{user_id}:{gid}"
