"""What only the Docker sandbox has: mounts, users, the container's life cycle, the engine.

The execute_bash and editor semantics are checked by the shared suite (conftest BACKENDS).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox import Editor, SandboxError
from sandbox.docker import DockerSandbox
from sandbox.docker_engine import Mount, managed_run_ids, remove_leftovers
from sandbox.docker_mounts import hiding_mounts
from tests.sandbox.conftest import SOFT_TIMEOUT, new_run_id, require_docker

UID = 1234

MakeSandbox = Callable[..., DockerSandbox]


@pytest.fixture(scope="module")
def client():
    require_docker()
    import docker

    return docker.from_env()


@pytest.fixture
def make(client, docker_image: str, tmp_path: Path) -> Iterator[MakeSandbox]:
    """Builds DockerSandboxes with the workspace mounted; removes every container after."""
    made: list[DockerSandbox] = []

    def build(*, run_id: str | None = None, image: str | None = None, **kwargs) -> DockerSandbox:
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        kwargs.setdefault("mounts", [Mount(host=str(work), container="/workspace")])
        kwargs.setdefault("soft_timeout", SOFT_TIMEOUT)
        box = DockerSandbox(image or docker_image, run_id=run_id or new_run_id(), **kwargs)
        made.append(box)
        return box

    yield build
    for box in made:
        box.close()
        remove_leftovers(client, box.name.removeprefix("runhands-"))


@pytest.fixture
def user_workspace(tmp_path: Path) -> Path:
    """The mounted workspace, owned by UID as a user's own directory would be."""
    if os.geteuid() != 0:
        pytest.skip(f"giving the workspace to uid {UID} needs root")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    os.chown(work, UID, UID)
    return work


def _container_names(client) -> set[str]:
    # ignore_removed: another test may remove a container while the list is read.
    return {c.name for c in client.containers.list(all=True, ignore_removed=True)}


def test_files_created_in_a_rw_mount_belong_to_the_uid(
    make: MakeSandbox, user_workspace: Path
) -> None:
    box = make(user=f"{UID}:{UID}")
    box.start()
    assert box.run("touch by-shell && mkdir -p shell-dir/sub").exit_code == 0
    Editor(box).execute("create", "/workspace/edited/deep/file.txt", file_text="x\n")
    work = user_workspace
    made = [
        "by-shell",
        "shell-dir",
        "shell-dir/sub",
        "edited",
        "edited/deep",
        "edited/deep/file.txt",
    ]
    for name in made:
        info = (work / name).stat()
        assert (info.st_uid, info.st_gid) == (UID, UID), name
    assert (work / "edited/deep/file.txt").read_text() == "x\n"


def test_editing_keeps_the_file_mode(make: MakeSandbox, user_workspace: Path) -> None:
    box = make(user=f"{UID}:{UID}")
    box.start()
    box.run("printf 'echo hi\\n' > run.sh && chmod 750 run.sh")
    Editor(box).execute("str_replace", "/workspace/run.sh", old_str="hi", new_str="there")
    assert box.run("./run.sh").output == "there\n"
    assert (user_workspace / "run.sh").stat().st_mode & 0o777 == 0o750


def test_read_only_mount_refuses_writes(make: MakeSandbox, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.csv").write_text("a,b\n")
    mounts = [Mount(host=str(data), container="/data", read_only=True)]
    box = make(mounts=mounts, user=f"{UID}:{UID}")
    box.start()
    assert box.run("cat /data/in.csv").output == "a,b\n"
    result = box.run("echo x > /data/out.txt")
    assert result.exit_code == 1
    assert "Read-only file system" in result.output
    edit = Editor(box).execute("create", "/data/new.txt", file_text="x")
    assert edit.error
    assert edit.output == "ERROR:\n`create` failed on /data/new.txt: Read-only file system."
    assert sorted(p.name for p in data.iterdir()) == ["in.csv"]


def test_home_is_writable_as_a_non_root_uid(make: MakeSandbox) -> None:
    box = make(user=str(UID))  # a uid the image does not know: its HOME would be "/"
    box.start()
    result = box.run('touch "$HOME/ok" && echo "$HOME" && id -u')
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == str(UID)


def test_options_reach_the_container(make: MakeSandbox) -> None:
    box = make(env={"RH_GIVEN": "yes"}, mem_limit="256m", nano_cpus=500_000_000)
    box.start()
    assert box.run('echo "$RH_GIVEN $TERM"').output == "yes dumb\n"
    assert box.container is not None
    host_config = box.container.attrs["HostConfig"]
    assert host_config["Memory"] == 256 * 1024 * 1024
    assert host_config["NanoCpus"] == 500_000_000
    assert host_config["Init"] is True


def test_a_scope_names_and_guards_the_container(make: MakeSandbox, client) -> None:
    run_id = new_run_id()
    box = make(run_id=run_id, scope="/home/a/.openhands-state")
    box.start()
    assert box.name.startswith(f"runhands-{run_id}-")
    assert remove_leftovers(client, run_id, scope="/home/b/.openhands-state") == []
    assert managed_run_ids(client, scope="/home/b/.openhands-state") == []
    assert remove_leftovers(client, run_id, scope="/home/a/.openhands-state") == [box.name]


def test_network_none_has_no_network(make: MakeSandbox) -> None:
    box = make(network_mode="none")
    box.start()
    assert box.run("ls /sys/class/net").output == "lo\n"


def test_container_is_labelled_named_and_removed_at_close(make: MakeSandbox, client) -> None:
    run_id = new_run_id()
    box = make(run_id=run_id)
    box.start()
    container = client.containers.get(f"runhands-{run_id}")
    assert container.labels == {
        "runhands.run_id": run_id,
        "runhands.managed": "true",
        "runhands.scope": "",
    }
    assert box.identity == f"docker:{container.id}"
    assert run_id in managed_run_ids(client)
    box.close()
    assert f"runhands-{run_id}" not in _container_names(client)
    box.close()  # idempotent


def test_exit_kills_the_shells_background_jobs(make: MakeSandbox) -> None:
    box = make()
    box.start()
    pid = box.run("sleep 1000 & echo $!").output.split()[-1]
    assert box.run("exit").exit_code == 0
    assert box.run(f"kill -0 {pid}").exit_code == 1  # in the fresh shell: it is gone


def test_kept_container_is_reattached_by_run_id(make: MakeSandbox, client) -> None:
    run_id = new_run_id()
    first = make(run_id=run_id, keep_alive=True)
    first.start()
    first.run("cd /tmp; echo kept > /tmp/state.txt; sleep 1001 &")
    first_id = first.identity
    first.close()
    assert client.containers.get(f"runhands-{run_id}").status == "running"

    second = make(run_id=run_id)
    second.start()
    assert second.reattached
    assert second.identity == first_id
    assert second.run("pwd").output == "/workspace\n"  # a fresh shell...
    assert second.run("cat /tmp/state.txt").output == "kept\n"  # ...in the same container
    # Nothing was stopped: the first shell's background job still runs.
    assert second.run("grep -sqa '100[1]' /proc/[0-9]*/cmdline").exit_code == 0
    second.close()
    assert f"runhands-{run_id}" not in _container_names(client)


def test_a_stopped_container_of_the_run_is_replaced(make: MakeSandbox, client) -> None:
    run_id = new_run_id()
    first = make(run_id=run_id, keep_alive=True)
    first.start()
    first.run("echo old > /tmp/state.txt")
    first.close()
    client.containers.get(f"runhands-{run_id}").stop(timeout=0)
    second = make(run_id=run_id)
    second.start()
    assert not second.reattached
    assert second.run("cat /tmp/state.txt").exit_code == 1


def test_remove_leftovers_removes_only_labelled_containers(
    make: MakeSandbox, client, docker_image: str
) -> None:
    run_id = new_run_id()
    kept = make(run_id=run_id, keep_alive=True)
    kept.start()
    kept.close()
    suffix = uuid.uuid4().hex[:8]
    foreign = [
        client.containers.create(docker_image, ["true"], name=f"rh-test-plain-{suffix}"),
        # Carries our run label but not the managed one: still not ours.
        client.containers.create(
            docker_image,
            ["true"],
            name=f"rh-test-half-{suffix}",
            labels={"runhands.run_id": run_id},
        ),
    ]
    try:
        assert remove_leftovers(client, run_id) == [f"runhands-{run_id}"]
        names = _container_names(client)
        assert f"runhands-{run_id}" not in names
        assert {c.name for c in foreign} <= names
        assert remove_leftovers(client, run_id) == []
    finally:
        for container in foreign:
            container.remove(force=True)


def test_a_foreign_container_with_our_name_is_left_alone(
    make: MakeSandbox, client, docker_image: str
) -> None:
    run_id = new_run_id()
    foreign = client.containers.create(docker_image, ["true"], name=f"runhands-{run_id}")
    try:
        with pytest.raises(SandboxError, match="was not created by runhands"):
            make(run_id=run_id).start()
        assert client.containers.get(foreign.id).name == f"runhands-{run_id}"
    finally:
        foreign.remove(force=True)


def test_missing_image_fails_quickly_without_a_container(client) -> None:
    run_id = new_run_id()
    box = DockerSandbox("runhands-no-such-image:never", run_id=run_id)
    with pytest.raises(SandboxError) as error:  # no registry answers: no endless retries
        box.start()
    message = str(error.value)
    assert message.startswith(
        "image runhands-no-such-image:never is not available locally and cannot be pulled: "
    )
    assert "\n" not in message
    assert f"runhands-{run_id}" not in _container_names(client)


def test_image_without_bash_fails_without_a_container(client) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"no\n"))
    client.api.import_image_from_data(buffer.getvalue(), repository="runhands-test-nobash")
    run_id = new_run_id()
    with pytest.raises(SandboxError, match="bash"):
        DockerSandbox("runhands-test-nobash:latest", run_id=run_id).start()
    assert f"runhands-{run_id}" not in _container_names(client)


def test_unreachable_engine_is_a_sandbox_error(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    box = DockerSandbox("anything", run_id=new_run_id())
    with pytest.raises(
        SandboxError, match=r"cannot reach the Docker engine at tcp://127\.0\.0\.1:9"
    ):
        box.start()
    box.close()  # nothing was started: closing is harmless


# -- hardening -------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [f"{UID}:{UID}", "0:0"])
def test_the_container_grants_no_privilege(make: MakeSandbox, user: str) -> None:
    box = make(user=user)
    box.start()
    status = box.run("grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status").output
    assert status.split() == ["CapEff:", "0" * 16, "CapBnd:", "0" * 16, "NoNewPrivs:", "1"]
    # cgroup v2 shows the limit at the top, v1 in the pids controller's directory.
    pids = box.run("cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null")
    assert pids.output.split() == ["4096"]
    mount = box.run("mount -t tmpfs none /mnt")
    assert mount.exit_code != 0 and "mount" in mount.output
    assert box.container is not None and box.container.attrs["HostConfig"]["Privileged"] is False


def test_a_shell_needs_no_capability(make: MakeSandbox, user_workspace: Path) -> None:
    """What a shell does with its own files works with every capability dropped; taking
    someone else's, or giving one's own away, does not."""
    box = make(user=f"{UID}:{UID}")
    box.start()
    own = (
        f"touch a && mkdir -p d/e && chmod 700 d && chown {UID}:{UID} a && chgrp {UID} a "
        "&& ln -s a link && mv a b && echo x >> b && rm -r d && echo ok"
    )
    assert box.run(own).output == "ok\n"
    given = box.run("chown 0 b")
    assert given.exit_code == 1 and "Operation not permitted" in given.output
    assert box.run("su -c true root </dev/null").exit_code != 0
    assert (user_workspace / "b").stat().st_uid == UID


def test_timeouts_and_exit_stop_a_non_root_users_processes(make: MakeSandbox) -> None:
    """Clean-up runs as the sandbox user: root without CAP_KILL could not signal it."""
    box = make(user=f"{UID}:{UID}")
    box.start()
    assert box.run("sleep 1000", timeout=1).timed_out
    assert box.run("C-c", is_input=True).exit_code == 130
    assert box.run("echo after").output == "after\n"
    pid = box.run("sleep 1001 & echo $!").output.split()[-1]
    assert box.run("exit").exit_code == 0
    assert box.run(f"kill -0 {pid}").exit_code == 1


def test_one_host_directory_mounted_twice_keeps_both_mounts(
    make: MakeSandbox, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    mounts = [
        Mount(host=str(work), container="/workspace"),
        Mount(host=str(work), container="/data", read_only=True),
    ]
    box = make(mounts=mounts)
    box.start()
    assert box.run("echo hi > /workspace/out.txt && cat /data/out.txt").output == "hi\n"
    assert "Read-only file system" in box.run("echo x > /data/no.txt").output
    assert (work / "out.txt").read_text() == "hi\n"
    assert sorted(p.name for p in work.iterdir()) == ["out.txt"]


def test_hidden_paths_are_out_of_reach_of_shell_and_editor(
    make: MakeSandbox, tmp_path: Path
) -> None:
    """The state directory and a config file inside the workspace, hidden: empty and
    read-only for the shell and the editor alike, and the way to them cannot be moved."""
    work = tmp_path / "work"
    log = work / "deep" / "state" / "run" / "events.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("log\n")
    (work / ".env").write_text("KEY=secret\n")
    before = _tree(work)
    workspace = Mount(host=str(work), container="/workspace")
    hidden = [str(work / "deep" / "state"), str(work / ".env")]
    box = make(mounts=[workspace, *hiding_mounts([workspace], hidden)])
    box.start()
    attempts = [
        "ls -A deep/state",
        "cat deep/state/run/events.jsonl",
        "echo x >> deep/state/run/events.jsonl",
        "mkdir deep/state/run",
        "mv deep deep2",
        "mv deep/state deep/state2",
        "rm -rf deep",
        "rm .env",
        "mv .env env",
    ]
    results = {a: box.run(a) for a in attempts}
    assert results.pop("ls -A deep/state").output == ""
    assert [a for a, r in results.items() if r.exit_code == 0] == [], results
    box.run("echo x > .env")  # /dev/null: what is written there is gone
    assert box.run("cat .env").output == ""
    editor = Editor(box)
    assert editor.execute("view", "/workspace/deep/state/run/events.jsonl").error
    assert editor.execute("create", "/workspace/deep/state/new", file_text="x").error
    assert editor.execute("create", "/workspace/.env", file_text="x").error
    assert "secret" not in editor.execute("view", "/workspace/.env").output
    assert _tree(work) == before


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- the user probe ---------------------------------------------------------------------------

# Stands in for bash, answering the user probe (the script reading EUID) with nothing and
# exit code 0 -- the first time only, or always -- as a loaded engine now and then does.
_MUTE_PROBE = r"""#!/bin/bash
if [[ $1 == -c && $2 == *EUID* ]] && { [ "$MUTE" = always ] || mkdir /tmp/probed 2>/dev/null; }
then exit 0; fi
exec /bin/bash "$@"
"""


@pytest.fixture(scope="module")
def mute_probe_images(client, docker_image: str) -> dict[str, str]:
    """Images whose bash answers the user probe with nothing: once, or always."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("bash")
        info.size, info.mode = len(_MUTE_PROBE), 0o755
        tar.addfile(info, io.BytesIO(_MUTE_PROBE.encode()))
    images = {}
    for mode in ("once", "always"):
        container = client.containers.create(docker_image, ["true"])
        try:
            container.put_archive("/usr/local/bin", buffer.getvalue())
            repository = f"runhands-test-mute-probe-{mode}"
            container.commit(repository, "latest", changes=[f"ENV MUTE={mode}"])
            images[mode] = f"{repository}:latest"
        finally:
            container.remove(force=True)
    return images


def test_an_empty_probe_answer_is_asked_again(
    make: MakeSandbox, mute_probe_images: dict[str, str]
) -> None:
    box = make(image=mute_probe_images["once"], user=f"{UID}:{UID}")
    box.start()
    assert box.run("id -u; echo $HOME").output == f"{UID}\n/tmp/home\n"


def test_a_probe_that_never_answers_says_what_failed(
    make: MakeSandbox, mute_probe_images: dict[str, str], client
) -> None:
    box = make(image=mute_probe_images["always"])
    with pytest.raises(SandboxError) as error:
        box.start()
    message = str(error.value)
    assert "the probe answered nothing with exit code 0, 3 times" in message
    assert "the image needs bash" not in message
    assert box.name not in _container_names(client)
