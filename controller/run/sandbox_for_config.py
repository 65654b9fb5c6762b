"""Which sandbox a run gets, from its configuration: the local machine or a container."""

from __future__ import annotations

import os
import pwd

from controller.config import AppConfig
from controller.config.volumes import VolumeError, parse_volumes
from controller.errors import UserError
from sandbox import Sandbox, SandboxError
from sandbox.local import LocalSandbox


class SandboxConfigError(UserError):
    """The sandbox settings are unusable: a usage error, found before anything starts."""


def agent_workdir(config: AppConfig, host_workdir: str) -> str:
    """Where the agent works: the host directory itself, or its mount point in a container."""
    if config.core.runtime == "docker":
        return config.core.workspace_mount_path_in_sandbox
    return host_workdir


def make_sandbox(
    config: AppConfig, run_id: str, host_workdir: str, env: dict[str, str], scope: str
) -> Sandbox:
    """`scope` (the state directory) tells this run's containers from other directories'."""
    if config.core.runtime == "docker":
        return _docker_sandbox(config, run_id, host_workdir, scope)
    return LocalSandbox(
        host_workdir,
        soft_timeout=config.sandbox.soft_timeout,
        # [sandbox] timeout: the longest one execute_bash call waits for a command that
        # keeps printing; the command goes on, and the model may wait for more.
        max_wait=config.sandbox.timeout,
        env=env,
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
    _mounts(config, "/")  # validates SANDBOX_VOLUMES


def _image(config: AppConfig) -> str | None:
    sandbox = config.sandbox
    return sandbox.runtime_container_image or sandbox.base_container_image


def _docker_sandbox(config: AppConfig, run_id: str, host_workdir: str, scope: str) -> Sandbox:
    from sandbox.docker import DockerSandbox

    sandbox = config.sandbox
    image = _image(config)
    if not image:
        raise SandboxError("no image: set SANDBOX_RUNTIME_CONTAINER_IMAGE")
    return DockerSandbox(
        image,
        run_id=run_id,
        workdir=config.core.workspace_mount_path_in_sandbox,
        mounts=_mounts(config, host_workdir),
        user=_user(sandbox.user_id),
        env=dict(sandbox.runtime_startup_env_vars),
        soft_timeout=sandbox.soft_timeout,
        max_wait=sandbox.timeout,
        network_mode=sandbox.network_mode,
        mem_limit=sandbox.memory_limit,
        nano_cpus=int(sandbox.cpus * 1e9) if sandbox.cpus else None,
        keep_alive=sandbox.keep_runtime_alive,
        scope=scope,
    )


def _mounts(config: AppConfig, host_workdir: str) -> list:
    """SANDBOX_VOLUMES, plus the working directory at the workspace mount point when no
    volume is mounted there."""
    from sandbox.docker_engine import Mount

    try:
        volumes = parse_volumes(config.sandbox.volumes or "")
    except VolumeError as e:
        raise SandboxConfigError(str(e)) from None
    mounts = [Mount(host=v.host, container=v.container, read_only=v.mode == "ro") for v in volumes]
    target = config.core.workspace_mount_path_in_sandbox
    if all(m.container.rstrip("/") != target.rstrip("/") for m in mounts):
        mounts.append(Mount(host=host_workdir, container=target, read_only=False))
    return mounts


def _user(user_id: int | None) -> str | None:
    """uid:gid for the container: the host user's primary group when the uid exists here,
    so files the agent creates in a mount belong to that user."""
    if user_id is None:
        return None
    try:
        gid = pwd.getpwuid(user_id).pw_gid
    except KeyError:
        gid = user_id if user_id != os.getuid() else os.getgid()
    return f"{user_id}:{gid}"
