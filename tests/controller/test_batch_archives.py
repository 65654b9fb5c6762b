"""Unpacking archives from images and Ray workers: nothing may land outside the directory
(checked by runhands itself: Debian 12's Python 3.11.2 has no tarfile filters)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from controller.batch.archives import extract


def archive_of(*members: tuple[tarfile.TarInfo, bytes]) -> tarfile.TarFile:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for info, content in members:
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    data.seek(0)
    return tarfile.open(fileobj=data)


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid = kind, link, mode, 4321, 4321
    return info, b"x" if kind == tarfile.REGTYPE else b""


def test_files_links_and_modes_come_out_owned_by_us(tmp_path: Path) -> None:
    archive = archive_of(
        entry("dir", tarfile.DIRTYPE, mode=0o777),
        entry("dir/run.sh", mode=0o4755),
        entry("dir/link", tarfile.SYMTYPE, link="run.sh"),
        entry("hard", tarfile.LNKTYPE, link="dir/run.sh", mode=0o4755),
        entry("dev", tarfile.CHRTYPE),
    )
    extract(archive, tmp_path)
    script = tmp_path / "dir" / "run.sh"
    assert script.read_bytes() == b"x" and (tmp_path / "hard").read_bytes() == b"x"
    assert os.readlink(tmp_path / "dir" / "link") == "run.sh"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755  # no set-uid
    assert stat.S_IMODE((tmp_path / "dir").stat().st_mode) == 0o755  # no world write
    assert script.stat().st_uid == os.getuid()
    assert not (tmp_path / "dev").exists()


@pytest.mark.parametrize(
    "bad",
    [
        entry("/etc/evil"),
        entry("../evil"),
        entry("a/../../evil"),
        entry("up", tarfile.SYMTYPE, link="../../etc/passwd"),
        entry("abs", tarfile.SYMTYPE, link="/etc/passwd"),
        entry("hard", tarfile.LNKTYPE, link="../outside"),
    ],
)
def test_a_member_leading_out_is_refused_and_nothing_is_written(
    tmp_path: Path, bad: tuple[tarfile.TarInfo, bytes]
) -> None:
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(tarfile.TarError):
        extract(archive_of(entry("fine"), bad), into)
    assert list(into.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["into"]
