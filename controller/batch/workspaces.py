"""Each task's workspace, made fresh under `<out>/workspaces/<id>` before its run is created:
a copy of a directory, a local git repository checked out at a commit, the repository an
image holds (SWE-bench), or an empty directory. Made beside its place and renamed into it,
so a batch killed meanwhile leaves no half-made workspace a run could start from."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from controller.batch.archives import extract
from controller.batch.tasks import BatchTask

WORKSPACES_DIR = "workspaces"


class WorkspaceError(Exception):
    """The workspace could not be made (a bad commit, an image that cannot be read...)."""


def workspace_path(out: Path, task_id: str) -> Path:
    return out / WORKSPACES_DIR / task_id


def prepare_workspace(out: Path, task: BatchTask) -> Path:
    """A fresh workspace for the task (whatever an earlier attempt left is replaced)."""
    target = workspace_path(out, task.id)
    scratch = target.with_name(f".{task.id}.new")
    for leftover in (scratch, target):
        shutil.rmtree(leftover, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        if task.workspace:
            shutil.copytree(task.workspace, scratch, symlinks=True)
        elif task.repo:
            _checkout(task.repo, task.commit or "HEAD", scratch)
        elif task.image and task.image_workdir:
            _copy_from_image(task.image, task.image_workdir, scratch)
        else:
            scratch.mkdir()
    except (OSError, subprocess.CalledProcessError) as e:
        shutil.rmtree(scratch, ignore_errors=True)
        raise WorkspaceError(f"task {task.id}: the workspace could not be made: {_why(e)}") from e
    scratch.rename(target)
    return target


def _checkout(repo: str, commit: str, into: Path) -> None:
    """A clone (objects hard-linked: they never change) detached at the commit."""
    git = ["git", "-c", "advice.detachedHead=false"]
    subprocess.run(
        [*git, "clone", "-q", "--no-checkout", repo, str(into)], check=True, capture_output=True
    )
    subprocess.run(
        [*git, "-C", str(into), "checkout", "-q", "--detach", commit],
        check=True,
        capture_output=True,
    )


def _copy_from_image(image: str, directory: str, into: Path) -> None:
    """The image's directory, copied out of a container that is created, never started. The
    files become the batch user's (as a copied directory's or a clone's are): the image's
    owners mean nothing here, and the container runs as this user without the capability
    to write other users' files (nor would git, here, read a repository of another's)."""
    import docker
    from docker.errors import DockerException

    # On disk, not in memory: a repository with its history can be hundreds of MB.
    with tempfile.TemporaryFile(dir=into.parent) as archive_file:
        try:
            client = docker.from_env()
            try:
                client.images.get(image)
            except docker.errors.ImageNotFound:
                client.images.pull(image)
            container = client.containers.create(image, command="true")
            try:
                stream, _ = container.get_archive(directory)
                for chunk in stream:
                    archive_file.write(chunk)
            finally:
                container.remove(force=True)
        except DockerException as e:
            raise OSError(f"image {image}: {e}") from None
        archive_file.seek(0)
        into.mkdir()
        try:
            with tarfile.open(fileobj=archive_file) as archive:
                extract(archive, into, _inside(archive, directory))
        except tarfile.TarError as e:
            raise OSError(f"image {image}: {directory}: {e}") from None


def _inside(archive: tarfile.TarFile, directory: str) -> list[tarfile.TarInfo]:
    """The archive's members under its top directory (the one asked for), renamed (and the
    targets of hard links) relative to it."""
    top = Path(directory).name
    members = []
    for member in archive.getmembers():
        name = Path(member.name)
        if name.parts[:1] != (top,) or len(name.parts) == 1:
            continue
        member.name = str(Path(*name.parts[1:]))
        link = Path(member.linkname)
        if member.islnk() and link.parts[:1] == (top,) and len(link.parts) > 1:
            member.linkname = str(Path(*link.parts[1:]))  # a hard link names a member
        members.append(member)
    return members


def _why(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        return (error.stderr or b"").decode(errors="replace").strip() or str(error)
    return str(error)
