"""SANDBOX_VOLUMES parsing: strict, one-line errors at start-up."""

from pathlib import Path

import pytest

from controller.config.volumes import Volume, VolumeError, parse_volumes, workspace_host_path
from controller.errors import UserError


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "project").mkdir()
    (tmp_path / "data").mkdir()
    return str(tmp_path / "project"), str(tmp_path / "data")


def test_single_mount_defaults_to_rw(dirs: tuple[str, str]) -> None:
    project, _ = dirs
    assert parse_volumes(f"{project}:/workspace") == [Volume(project, "/workspace", "rw")]


def test_several_mounts_with_modes_and_empty_entries(dirs: tuple[str, str]) -> None:
    project, data = dirs
    spec = f" {project}:/workspace:rw ,, {data}:/data:ro,"
    assert parse_volumes(spec) == [
        Volume(project, "/workspace", "rw"),
        Volume(data, "/data", "ro"),
    ]


def test_empty_spec_gives_no_volumes() -> None:
    assert parse_volumes("") == []
    assert parse_volumes(" , ") == []


def test_paths_are_normalised(dirs: tuple[str, str]) -> None:
    project, _ = dirs
    (volume,) = parse_volumes(f"{project}/:/workspace/")
    assert (volume.host, volume.container) == (project, "/workspace")


def test_tilde_in_host_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "code").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_volumes("~/code:/workspace") == [
        Volume(str(tmp_path / "code"), "/workspace", "rw")
    ]


def test_workspace_host_path(dirs: tuple[str, str]) -> None:
    project, data = dirs
    volumes = parse_volumes(f"{data}:/data:ro,{project}:/workspace")
    assert workspace_host_path(volumes) == project
    assert workspace_host_path(volumes, "/data/") == data
    assert workspace_host_path(volumes, "/elsewhere") is None
    assert workspace_host_path([]) is None


def test_relative_host_path_is_an_error_not_a_named_volume() -> None:
    with pytest.raises(VolumeError) as info:
        parse_volumes("data:/data")
    assert str(info.value) == "SANDBOX_VOLUMES entry 'data:/data': host path must be absolute"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{p}:/workspace:rwx", "mode must be rw or ro, got 'rwx'"),
        ("{p}:/workspace:z", "mode must be rw or ro, got 'z'"),
        ("{p}:workspace", "container path must be absolute"),
        ("{p}:/", "container path must not be /"),
        ("{p}", "expected host:container[:mode], e.g. /home/me/project:/workspace:rw"),
        ("C:\\code:/workspace:rw:x", "expected host:container[:mode]"),
        ("{p}:/workspace:ro:extra", "expected host:container[:mode]"),
        ("{p}/missing:/workspace", "host path does not exist"),
        (":/workspace", "host path must be absolute"),
        ("/:/workspace", "host path must not be / (the whole machine)"),
        ("/.:/host:ro", "host path must not be / (the whole machine)"),
    ],
)
def test_bad_entries(dirs: tuple[str, str], entry: str, problem: str) -> None:
    entry = entry.format(p=dirs[0])
    with pytest.raises(VolumeError) as info:
        parse_volumes(entry)
    message = str(info.value)
    assert message.startswith(f"SANDBOX_VOLUMES entry {entry!r}: {problem}")
    assert "\n" not in message


def test_duplicate_container_path(dirs: tuple[str, str]) -> None:
    project, data = dirs
    with pytest.raises(VolumeError) as info:
        parse_volumes(f"{project}:/workspace,{data}:/workspace/:ro")
    assert str(info.value) == (
        f"SANDBOX_VOLUMES entry '{data}:/workspace/:ro': "
        "container path /workspace is already mounted"
    )


def test_one_host_path_may_be_mounted_twice(dirs: tuple[str, str]) -> None:
    project, _ = dirs
    assert parse_volumes(f"{project}:/workspace:rw,{project}:/data:ro") == [
        Volume(project, "/workspace", "rw"),
        Volume(project, "/data", "ro"),
    ]


def test_source_name_is_configurable() -> None:
    with pytest.raises(VolumeError, match=r"^config.toml \[sandbox\] volumes entry 'x:/y'"):
        parse_volumes("x:/y", where="config.toml [sandbox] volumes")


def test_volume_error_is_a_value_error() -> None:
    assert issubclass(VolumeError, UserError)
