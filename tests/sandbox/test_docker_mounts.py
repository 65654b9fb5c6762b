"""The container's mount plan: what hides protected paths, and where the engine's socket is.
(What the agent then sees is checked in a real container: test_docker, test_docker_hostile.)"""

from __future__ import annotations

import socket
from pathlib import Path

from sandbox.docker_engine import Mount
from sandbox.docker_mounts import engine_sockets, hiding_mounts, reached_socket


def test_a_protected_directory_is_covered_and_the_way_to_it_pinned(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "state" / "run").mkdir(parents=True)
    (tmp_path / ".env").write_text("KEY=v\n")
    data = Mount(host=str(tmp_path), container="/data", read_only=True)
    hidden = [str(tmp_path / "a/b/state"), str(tmp_path / "a/b/state/run"), str(tmp_path / ".env")]
    assert hiding_mounts([data], hidden) == [
        Mount(host="/dev/null", container="/data/.env", read_only=True),
        Mount(host=str(tmp_path / "a"), container="/data/a", read_only=True),
        Mount(host=str(tmp_path / "a/b"), container="/data/a/b", read_only=True),
        Mount(host="", container="/data/a/b/state", empty=True),
    ]


def test_what_is_mounted_itself_or_absent_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "ssh").mkdir()
    mounts = [
        Mount(host=str(tmp_path), container="/workspace"),
        Mount(host=str(tmp_path / "ssh"), container="/root/.ssh", read_only=True),
    ]
    hiding = hiding_mounts(mounts, [str(tmp_path / "ssh"), str(tmp_path / "missing")])
    assert hiding == [Mount(host="", container="/workspace/ssh", empty=True)]


def test_the_engine_socket_is_found_in_a_mount(tmp_path: Path) -> None:
    path = tmp_path / "run" / "engine.sock"
    path.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        sockets = engine_sockets({"DOCKER_HOST": f"unix://{path}"})
        assert str(path) in sockets
        assert reached_socket(str(tmp_path), sockets) == str(path)
        assert reached_socket(str(path), sockets) == str(path)
        (tmp_path / "other").mkdir()
        assert reached_socket(str(tmp_path / "other"), sockets) is None
