"""str_replace_editor semantics, run against every sandbox backend."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable

import pytest

from sandbox import Editor, EditorResult, Sandbox
from sandbox.editor import MAX_FILE_BYTES

TEN_LINES = "".join(f"line {n}\n" for n in range(1, 11))


@pytest.fixture
def editor(sandbox: Sandbox) -> Editor:
    return Editor(sandbox)


def _path(sandbox: Sandbox, name: str) -> str:
    return f"{sandbox.workdir}/{name}"


def _ok(result: EditorResult) -> str:
    assert not result.error, result.output
    return result.output


def _err(result: EditorResult) -> str:
    assert result.error, result.output
    return result.output


def _file(sandbox: Sandbox, name: str, text: str = TEN_LINES) -> str:
    path = _path(sandbox, name)
    sandbox.write_file(path, text.encode())
    return path


# -- view ----------------------------------------------------------------------------------


def test_view_file_is_cat_n(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py", "first\n\tsecond\n")
    out = _ok(editor.execute("view", path))
    assert (
        out
        == f"Here's the result of running `cat -n` on {path}:\n     1\tfirst\n     2\t\tsecond\n"
    )


def test_view_range(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py")
    out = _ok(editor.execute("view", path, view_range=[3, 4]))
    assert out.endswith("     3\tline 3\n     4\tline 4\n")
    assert "line 5" not in out
    tail = _ok(editor.execute("view", path, view_range=[9, -1]))
    assert tail.endswith("     9\tline 9\n    10\tline 10\n")


@pytest.mark.parametrize(
    ("view_range", "expected"),
    [
        ([0, 3], "first element `0` should be within the range of lines of the file: [1, 10]"),
        ([11, -1], "first element `11` should be within the range of lines of the file: [1, 10]"),
        ([5, 3], "second element `3` should be greater than or equal to the first element `5`"),
        ([5, 11], "second element `11` should be at most the number of lines in the file (10)"),
        ([1, 2, 3], "should be a list of two integers"),
        (["1", "2"], "should be a list of two integers"),
    ],
)
def test_view_range_errors(
    sandbox: Sandbox, editor: Editor, view_range: list[int], expected: str
) -> None:
    path = _file(sandbox, "a.py")
    assert expected in _err(editor.execute("view", path, view_range=view_range))


def test_view_missing_path(sandbox: Sandbox, editor: Editor) -> None:
    path = _path(sandbox, "nope.py")
    assert _err(editor.execute("view", path)) == (
        f"The path {path} does not exist. Please provide a valid path."
    )


def test_view_directory_two_levels_without_hidden(sandbox: Sandbox, editor: Editor) -> None:
    for name in ("top.py", "pkg/mod.py", "pkg/sub/deep.py", ".git/config", "pkg/.hidden"):
        _file(sandbox, name, "x\n")
    root = sandbox.workdir
    out = _ok(editor.execute("view", root))
    assert out.startswith(
        f"Here's the files and directories up to 2 levels deep in {root}, excluding hidden items:\n"
    )
    listed = out.splitlines()[1:]
    names = ["", "pkg/", "pkg/mod.py", "pkg/sub/", "top.py"]
    assert listed == [f"{root}/{name}" for name in names]
    assert "deep.py" not in out and ".git" not in out and ".hidden" not in out


def test_view_range_on_directory_is_an_error(sandbox: Sandbox, editor: Editor) -> None:
    out = _err(editor.execute("view", sandbox.workdir, view_range=[1, 2]))
    assert "not allowed when `path` points to a directory" in out


def test_large_file_view_is_clipped(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "big.txt", "".join(f"row {n} {'x' * 60}\n" for n in range(1, 2001)))
    out = _ok(editor.execute("view", path))
    assert len(out) < 17_000
    assert "     1\trow 1 " in out
    assert "row 2000" not in out
    assert "<response clipped>" in out
    assert "of 2000 are shown. Use `view_range`" in out
    # The part that was not shown is reachable with view_range.
    assert "  2000\trow 2000" in _ok(editor.execute("view", path, view_range=[1990, -1]))


def test_single_huge_line_is_clipped(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "min.js", "y" * 100_000)
    out = _ok(editor.execute("view", path))
    assert len(out) < 17_000
    assert "rest of the line cut" in out


def test_view_empty_file(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "empty.txt", "")
    assert (
        _ok(editor.execute("view", path)) == f"Here's the result of running `cat -n` on {path}:\n\n"
    )
    assert "is empty" in _err(editor.execute("view", path, view_range=[1, 1]))


# -- create ----------------------------------------------------------------------------------


def test_create_makes_parent_directories(sandbox: Sandbox, editor: Editor) -> None:
    path = _path(sandbox, "new/dir/file.py")
    assert _ok(editor.execute("create", path, file_text="print(1)\n")) == (
        f"File created successfully at: {path}"
    )
    assert sandbox.read_file(path) == b"print(1)\n"


def test_create_refuses_existing_file(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py")
    out = _err(editor.execute("create", path, file_text="new"))
    assert out.startswith(f"File already exists at: {path}.")
    assert "str_replace" in out
    assert sandbox.read_file(path) == TEN_LINES.encode()


def test_create_errors(sandbox: Sandbox, editor: Editor) -> None:
    path = _path(sandbox, "x.py")
    assert "`file_text` is required" in _err(editor.execute("create", path))
    assert "is a directory" in _err(editor.execute("create", sandbox.workdir, file_text="x"))


# -- str_replace -----------------------------------------------------------------------------


def test_str_replace_edits_and_shows_a_snippet(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py")
    out = _ok(editor.execute("str_replace", path, old_str="line 6\n", new_str="six\nSIX\n"))
    assert out.startswith(
        f"The file {path} has been edited. Here's the result of running `cat -n` on a "
        f"snippet of {path}:\n"
    )
    snippet = [line for line in out.splitlines() if "\t" in line]
    assert snippet[0] == "     2\tline 2"
    assert "     6\tsix" in snippet and "     7\tSIX" in snippet
    assert snippet[-1] == "    11\tline 10"
    assert "Review the changes" in out
    assert sandbox.read_file(path).decode() == TEN_LINES.replace("line 6\n", "six\nSIX\n")


def test_str_replace_new_str_defaults_to_deletion(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py")
    _ok(editor.execute("str_replace", path, old_str="line 10\n"))
    assert sandbox.read_file(path).decode() == TEN_LINES.replace("line 10\n", "")


def test_str_replace_not_found(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py")
    out = _err(editor.execute("str_replace", path, old_str="line 99", new_str="x"))
    assert out.startswith(
        f"No replacement was performed, old_str `line 99` did not appear verbatim in {path}."
    )


def test_str_replace_multiple_occurrences_lists_lines(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py", "x = 1\ny = 2\nx = 1\n")
    out = _err(editor.execute("str_replace", path, old_str="x = 1", new_str="x = 3"))
    assert "Multiple occurrences of old_str `x = 1` in lines [1, 3]" in out
    assert sandbox.read_file(path) == b"x = 1\ny = 2\nx = 1\n"


def test_str_replace_parameter_errors(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py")
    assert "`old_str` is required" in _err(editor.execute("str_replace", path))
    assert "`old_str` is empty" in _err(editor.execute("str_replace", path, old_str=""))
    same = editor.execute("str_replace", path, old_str="line 1", new_str="line 1")
    assert "identical" in _err(same)
    missing = editor.execute("str_replace", _path(sandbox, "nope"), old_str="a", new_str="b")
    assert "does not exist" in _err(missing)
    on_dir = editor.execute("str_replace", sandbox.workdir, old_str="a", new_str="b")
    assert "is a directory" in _err(on_dir)


# -- insert ----------------------------------------------------------------------------------


def test_insert_at_top_middle_and_end(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py", "a\nb\n")
    out = _ok(editor.execute("insert", path, insert_line=0, new_str="top"))
    assert "snippet of the edited file" in out
    assert "     1\ttop\n     2\ta\n     3\tb" in out
    _ok(editor.execute("insert", path, insert_line=2, new_str="mid1\nmid2\n"))
    _ok(editor.execute("insert", path, insert_line=5, new_str="end"))
    assert sandbox.read_file(path) == b"top\na\nmid1\nmid2\nb\nend\n"


def test_insert_keeps_a_missing_final_newline_missing(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.txt", "a\nb")
    _ok(editor.execute("insert", path, insert_line=1, new_str="x"))
    assert sandbox.read_file(path) == b"a\nx\nb"


def test_insert_errors(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py")
    out = _err(editor.execute("insert", path, insert_line=11, new_str="x"))
    assert out.startswith("Invalid `insert_line` parameter: 11.")
    assert "[0, 10]" in out
    assert "[0, 10]" in _err(editor.execute("insert", path, insert_line=-1, new_str="x"))
    assert "`insert_line` is required" in _err(editor.execute("insert", path, new_str="x"))
    assert "`new_str` is required" in _err(editor.execute("insert", path, insert_line=1))
    assert sandbox.read_file(path) == TEN_LINES.encode()


# -- undo_edit -------------------------------------------------------------------------------


def test_undo_several_levels(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "a.py", "v1\n")
    _ok(editor.execute("str_replace", path, old_str="v1", new_str="v2"))
    _ok(editor.execute("insert", path, insert_line=1, new_str="added"))
    _ok(editor.execute("str_replace", path, old_str="v2", new_str="v3"))
    assert sandbox.read_file(path) == b"v3\nadded\n"
    out = _ok(editor.execute("undo_edit", path))
    assert out.startswith(f"Last edit to {path} undone successfully.")
    assert "     1\tv2\n     2\tadded" in out
    _ok(editor.execute("undo_edit", path))
    assert sandbox.read_file(path) == b"v2\n"
    _ok(editor.execute("undo_edit", path))
    assert sandbox.read_file(path) == b"v1\n"
    assert "No edit history found" in _err(editor.execute("undo_edit", path))


def test_undo_without_history(sandbox: Sandbox, editor: Editor) -> None:
    path = _path(sandbox, "fresh.py")
    _ok(editor.execute("create", path, file_text="x\n"))
    assert _err(editor.execute("undo_edit", path)).startswith(f"No edit history found for {path}")


def test_history_is_per_file(sandbox: Sandbox, editor: Editor) -> None:
    first, second = _file(sandbox, "one.txt", "1\n"), _file(sandbox, "two.txt", "2\n")
    _ok(editor.execute("str_replace", first, old_str="1", new_str="one"))
    _ok(editor.execute("str_replace", second, old_str="2", new_str="two"))
    _ok(editor.execute("undo_edit", first))
    assert sandbox.read_file(first) == b"1\n"
    assert sandbox.read_file(second) == b"two\n"


# -- paths, binary files, unknown commands -------------------------------------------------


def test_relative_path_is_an_error_with_a_suggestion(sandbox: Sandbox, editor: Editor) -> None:
    out = _err(editor.execute("view", "src/a.py"))
    assert out == (
        "The path src/a.py is not an absolute path, it should start with `/`. "
        f"Maybe you meant {sandbox.workdir}/src/a.py?"
    )


def test_path_is_normalised(sandbox: Sandbox, editor: Editor) -> None:
    _file(sandbox, "a.py")
    out = _ok(editor.execute("view", f"{sandbox.workdir}/./sub/../a.py"))
    assert out.startswith(f"Here's the result of running `cat -n` on {sandbox.workdir}/a.py:")


@pytest.mark.parametrize("data", [b"\x7fELF\x00\x01\x02", b"caf\xe9 latin-1\n"])
def test_binary_files_get_a_clear_error(sandbox: Sandbox, editor: Editor, data: bytes) -> None:
    path = _path(sandbox, "blob.bin")
    sandbox.write_file(path, data)
    for result in (
        editor.execute("view", path),
        editor.execute("str_replace", path, old_str="ELF", new_str="x"),
        editor.execute("insert", path, insert_line=0, new_str="x"),
    ):
        assert f"The file {path} is binary" in _err(result)
    assert sandbox.read_file(path) == data


def _without_hanging(call: Callable[[], EditorResult]) -> EditorResult:
    """The call's result; a call still blocked after a minute (on a FIFO...) fails the test
    instead of hanging the suite."""
    results: list[EditorResult] = []
    worker = threading.Thread(target=lambda: results.append(call()), daemon=True)
    worker.start()
    worker.join(60)
    assert results, "the editor call hung"
    return results[0]


@pytest.mark.parametrize("name", ["pipe", "zero-link", "/dev/zero", "/dev/null"])
def test_special_files_are_refused_not_opened(sandbox: Sandbox, editor: Editor, name: str) -> None:
    sandbox.run("mkfifo pipe && ln -s /dev/zero zero-link")
    path = name if name.startswith("/") else _path(sandbox, name)
    calls = {
        "view": lambda: editor.execute("view", path),
        "view_range": lambda: editor.execute("view", path, view_range=[1, 2]),
        "str_replace": lambda: editor.execute("str_replace", path, old_str="a", new_str="b"),
        "insert": lambda: editor.execute("insert", path, insert_line=0, new_str="x"),
        "create": lambda: editor.execute("create", path, file_text="x"),
    }
    for command, call in calls.items():
        out = _err(_without_hanging(call))
        # Refused as special, or (a device, locally) as outside what the sandbox shows.
        assert "special file" in out or "device file" in out, (command, out)
    if name == "pipe":
        assert sandbox.path_kind(path) == "special"
        assert f"The path {path} is a special file (a FIFO, device or socket)" in out
    # The run goes on: the shell and the editor still work.
    assert sandbox.run("echo alive").output == "alive\n"
    assert "line 1" in _ok(editor.execute("view", _file(sandbox, "ok.txt")))


def test_a_file_over_the_limit_gets_a_clear_error(sandbox: Sandbox, editor: Editor) -> None:
    sandbox.run(f"truncate -s {MAX_FILE_BYTES + 1} big.txt")  # sparse: costs no disk
    path = _path(sandbox, "big.txt")
    for result in (
        editor.execute("view", path),
        editor.execute("view", path, view_range=[1, 10]),
        editor.execute("str_replace", path, old_str="a", new_str="b"),
        editor.execute("insert", path, insert_line=0, new_str="x"),
    ):
        out = _err(result)
        assert f"The file {path} is larger than 10 MB" in out
        assert f"sed -n '1,100p' {path}" in out
    sandbox.run(f"truncate -s {MAX_FILE_BYTES} big.txt")  # at the limit: read
    assert "is binary" in _err(editor.execute("view", path))  # all NUL bytes


def test_unknown_command_lists_the_allowed_ones(sandbox: Sandbox, editor: Editor) -> None:
    out = _err(editor.execute("delete", _path(sandbox, "a.py")))
    assert out == (
        "Unrecognized command `delete`. The allowed commands for the str_replace_editor tool "
        "are: view, create, str_replace, insert, undo_edit."
    )


# -- the Sandbox file operations the editor is built on -------------------------------------


def test_relative_paths_resolve_against_workdir(sandbox: Sandbox) -> None:
    sandbox.write_file("sub/x.txt", b"data")
    assert sandbox.read_file(f"{sandbox.workdir}/sub/x.txt") == b"data"
    assert sandbox.read_file("sub/x.txt") == b"data"
    assert sandbox.path_kind("sub") == "dir"
    assert sandbox.path_kind("sub/x.txt") == "file"
    assert sandbox.path_kind("sub/missing") == "missing"


def test_read_errors_are_the_os_ones(sandbox: Sandbox) -> None:
    with pytest.raises(FileNotFoundError):
        sandbox.read_file("missing.txt")
    with pytest.raises(IsADirectoryError):
        sandbox.read_file(sandbox.workdir)


def test_reads_are_bounded_and_only_of_regular_files(sandbox: Sandbox) -> None:
    sandbox.write_file("ten.txt", b"0123456789")
    assert sandbox.read_file("ten.txt", max_bytes=10) == b"0123456789"
    with pytest.raises(OSError) as too_large:
        sandbox.read_file("ten.txt", max_bytes=9)
    assert too_large.value.errno == errno.EFBIG
    sandbox.run("mkfifo pipe")
    with pytest.raises(OSError) as refused:
        sandbox.read_file("pipe")
    assert refused.value.errno == errno.EINVAL
    for device in ("/dev/zero", "/dev/urandom"):  # never read: would not end
        with pytest.raises(OSError):
            sandbox.read_file(device)


def test_list_dir(sandbox: Sandbox) -> None:
    for name in ("b.txt", "a/one.txt", "a/deeper/two.txt", ".hidden/x"):
        sandbox.write_file(name, b"")
    root = sandbox.workdir
    assert sandbox.list_dir(root, 1) == [f"{root}/a/", f"{root}/b.txt"]
    expected = ["a/deeper/", "a/deeper/two.txt", "a/one.txt"]
    assert sandbox.list_dir("a") == [f"{root}/{name}" for name in expected]
    with pytest.raises(NotADirectoryError):
        sandbox.list_dir("b.txt")
    with pytest.raises(FileNotFoundError):
        sandbox.list_dir("nope")
