"""str_replace_editor semantics, run against every sandbox backend.

Errors carry OpenHands' `ERROR:\n` prefix and openhands-aci 0.3.2's wording; the tests ported
from OpenHands (tests/runtime/test_aci_edit.py) and openhands-aci are at the end, each naming
its source (docs/parity/tool-contract.md §6, §9b).
"""

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
    """The error message without OpenHands' `ERROR:\n` prefix (which every error has)."""
    assert result.error, result.output
    assert result.output.startswith("ERROR:\n"), result.output
    return result.output.removeprefix("ERROR:\n")


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
        f"Invalid `path` parameter: {path}. The path {path} does not exist. Please provide a "
        "valid path."
    )


def test_view_directory_two_levels_without_hidden(sandbox: Sandbox, editor: Editor) -> None:
    for name in ("top.py", "pkg/mod.py", "pkg/sub/deep.py", ".git/config", "pkg/.hidden"):
        _file(sandbox, name, "x\n")
    root = sandbox.workdir
    out = _ok(editor.execute("view", root))
    assert out.startswith(
        f"Here's the files and directories up to 2 levels deep in {root}, excluding hidden items:\n"
    )
    listing, note = out.split("\n\n")
    names = ["", "pkg/", "pkg/mod.py", "pkg/sub/", "top.py"]
    assert listing.splitlines()[1:] == [f"{root}/{name}" for name in names]
    assert "deep.py" not in listing and ".git" not in listing and ".hidden" not in listing
    # Only the hidden entries of the directory itself are counted (not pkg/.hidden).
    assert note == (
        f"1 hidden files/directories in this directory are excluded. You can use "
        f"'ls -la {root}' to see them."
    )


def test_view_range_on_directory_is_an_error(sandbox: Sandbox, editor: Editor) -> None:
    out = _err(editor.execute("view", sandbox.workdir, view_range=[1, 2]))
    assert "not allowed when `path` points to a directory" in out


def test_large_file_view_is_clipped(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "big.txt", "".join(f"row {n} {'x' * 60}\n" for n in range(1, 2001)))
    out = _ok(editor.execute("view", path))
    assert len(out) < 17_000
    assert "     1\trow 1 " in out
    assert "row 2000" not in out
    assert out.endswith(
        "\n<response clipped><NOTE>Due to the max output limit, only part of this file has "
        "been shown to you. You should retry this tool after you have searched inside the file "
        "with `grep -n` in order to find the line numbers of what you are looking for.</NOTE>\n"
    )
    assert out.split("\n")[-3].endswith("x" * 60)  # whole lines only
    # The part that was not shown is reachable with view_range.
    assert "  2000\trow 2000" in _ok(editor.execute("view", path, view_range=[1990, -1]))


def test_single_huge_line_is_clipped(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "min.js", "y" * 100_000)
    out = _ok(editor.execute("view", path))
    assert len(out) < 17_000
    assert "rest of the line cut" in out


def test_view_empty_file(sandbox: Sandbox, editor: Editor) -> None:
    path = _file(sandbox, "empty.txt", "")
    # openhands-aci shows an empty file as one empty numbered line.
    expected = f"Here's the result of running `cat -n` on {path}:\n     1\t\n"
    assert _ok(editor.execute("view", path)) == expected
    assert _ok(editor.execute("view", path, view_range=[1, 1])) == expected


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
    assert out == (
        f"Invalid `path` parameter: {path}. File already exists at: {path}. Cannot overwrite "
        "files using command `create`."
    )
    assert sandbox.read_file(path) == TEN_LINES.encode()


def test_create_errors(sandbox: Sandbox, editor: Editor) -> None:
    path = _path(sandbox, "x.py")
    assert "`file_text` is required" in _err(editor.execute("create", path))
    on_dir = _err(editor.execute("create", sandbox.workdir, file_text="x"))
    assert f"File already exists at: {sandbox.workdir}." in on_dir


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
    assert out == (
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
    empty = _err(editor.execute("str_replace", path, old_str="", new_str="x"))
    lines = list(range(1, 12))  # every line, and the empty one after the final newline
    assert empty == (
        f"No replacement was performed. Multiple occurrences of old_str `` in lines {lines}. "
        "Please ensure it is unique."
    )
    same = editor.execute("str_replace", path, old_str="line 1", new_str="line 1")
    assert _err(same) == (
        "Invalid `new_str` parameter: line 1. No replacement was performed. `new_str` and "
        "`old_str` must be different."
    )
    missing = editor.execute("str_replace", _path(sandbox, "nope"), old_str="a", new_str="b")
    assert "does not exist" in _err(missing)
    on_dir = editor.execute("str_replace", sandbox.workdir, old_str="a", new_str="b")
    assert _err(on_dir) == (
        f"Invalid `path` parameter: {sandbox.workdir}. The path {sandbox.workdir} is a "
        "directory and only the `view` command can be used on directories."
    )
    assert sandbox.read_file(path) == TEN_LINES.encode()


def test_empty_old_str_in_an_empty_file_is_refused(sandbox: Sandbox, editor: Editor) -> None:
    # Ours: openhands-aci would write new_str as the file's whole content.
    path = _file(sandbox, "empty.txt", "")
    out = _err(editor.execute("str_replace", path, old_str="", new_str="x"))
    assert "`old_str` is empty" in out and "`insert`" in out
    assert sandbox.read_file(path) == b""


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
    assert out == (
        "Invalid `insert_line` parameter: 11. It should be within the range of allowed values: "
        "[0, 10]"
    )
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
    assert _err(editor.execute("undo_edit", path)) == f"No edit history found for {path}."


def test_history_is_per_file(sandbox: Sandbox, editor: Editor) -> None:
    first, second = _file(sandbox, "one.txt", "1\n"), _file(sandbox, "two.txt", "2\n")
    _ok(editor.execute("str_replace", first, old_str="1", new_str="one"))
    _ok(editor.execute("str_replace", second, old_str="2", new_str="two"))
    _ok(editor.execute("undo_edit", first))
    assert sandbox.read_file(first) == b"1\n"
    assert sandbox.read_file(second) == b"two\n"


# -- paths, binary files, unknown commands -------------------------------------------------


def test_relative_path_is_an_error_with_a_suggestion(sandbox: Sandbox, editor: Editor) -> None:
    # openhands-aci tests/unit/test_workspace_root.py: the workdir guess only when it exists.
    head = "Invalid `path` parameter: src/a.py. The path should be an absolute path, starting "
    assert _err(editor.execute("view", "src/a.py")) == head + "with `/`."
    _file(sandbox, "src/a.py")
    assert _err(editor.execute("view", "src/a.py")) == (
        head + f"with `/`. Maybe you meant {sandbox.workdir}/src/a.py?"
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
        assert _err(result).startswith(
            f"File validation failed for {path}: File appears to be binary and this file type "
            "cannot be read or edited by this tool."
        )
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
        assert out.startswith(
            f"File validation failed for {path}: File is too large (over 10MB). Maximum "
            "allowed size is 10MB."
        )
        assert f"sed -n '1,100p' {path}" in out
    sandbox.run(f"truncate -s {MAX_FILE_BYTES} big.txt")  # at the limit: read
    assert "appears to be binary" in _err(editor.execute("view", path))  # all NUL bytes


def test_unknown_command_lists_the_allowed_ones(sandbox: Sandbox, editor: Editor) -> None:
    out = _err(editor.execute("delete", _path(sandbox, "a.py")))
    # openhands-aci's text (its tool name, oh_editor, replaced by ours).
    assert out == (
        "Unrecognized command delete. The allowed commands for the str_replace_editor tool "
        "are: view, create, str_replace, insert, undo_edit"
    )


def test_view_range_end_past_the_file_is_clamped_with_a_note(
    sandbox: Sandbox, editor: Editor
) -> None:
    path = _file(sandbox, "a.py")
    out = _ok(editor.execute("view", path, view_range=[9, 12]))
    assert out == (
        "NOTE: We only show up to 10 since there're only 10 lines in this file.\n"
        f"Here's the result of running `cat -n` on {path}:\n     9\tline 9\n    10\tline 10\n"
    )


def test_str_replace_retries_without_surrounding_whitespace(
    sandbox: Sandbox, editor: Editor
) -> None:
    # openhands-aci: not found as given, old_str and new_str are tried again stripped.
    path = _file(sandbox, "a.py")
    _ok(editor.execute("str_replace", path, old_str="\nline 3  ", new_str=" three\n"))
    assert sandbox.read_file(path).decode() == TEN_LINES.replace("line 3", "three")
    out = _err(editor.execute("str_replace", path, old_str="  line 99\n", new_str="x"))
    assert out == (
        f"No replacement was performed, old_str `line 99` did not appear verbatim in {path}."
    )


# -- ported from OpenHands 0.62.0 tests/runtime/test_aci_edit.py (through its runtime, so the
# errors carry `ERROR:\n`) and openhands-aci 0.3.2's editor tests: their setups and expected
# strings, over our sandboxes.


def _out(result: EditorResult) -> str:
    return result.output


def test_oh_view_file(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_view_file
    path = _file(sandbox, "test.txt", "This is a test file.\nThis file is for testing purposes.")
    out = _out(editor.execute("view", path))
    assert f"Here's the result of running `cat -n` on {path}:" in out
    assert "1\tThis is a test file." in out
    assert "2\tThis file is for testing purposes." in out
    assert "3\t" not in out  # openhands-aci test_view_file


def test_oh_view_directory(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_view_directory (exact) and openhands-aci
    # test_view_directory_with_hidden_files.
    root = sandbox.workdir
    _file(sandbox, "test.txt", "This is a test file.\n")
    _file(sandbox, ".hidden/inner.txt", "x")
    assert _out(editor.execute("view", root)) == (
        f"Here's the files and directories up to 2 levels deep in {root}, excluding hidden "
        f"items:\n{root}/\n{root}/test.txt\n\n1 hidden files/directories in this directory are "
        f"excluded. You can use 'ls -la {root}' to see them."
    )


def test_oh_create_file_and_empty_content(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_create_file, test_create_file_with_empty_content
    path = _path(sandbox, "new_file.txt")
    assert "File created successfully" in _out(
        editor.execute("create", path, file_text="New file content")
    )
    assert "New file content" in _out(editor.execute("view", path))
    empty = _path(sandbox, "empty.txt")
    _ok(editor.execute("create", empty, file_text=""))
    assert "1\t" in _out(editor.execute("view", empty))


def test_oh_create_with_none_file_text(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_create_with_none_file_text (exact)
    out = _out(editor.execute("create", _path(sandbox, "none.txt")))
    assert out == "ERROR:\nParameter `file_text` is required for command: create."


def test_oh_str_replace_multi_line_with_tabs(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_str_replace_multi_line_with_tabs (exact)
    path = _file(sandbox, "test.py", 'def test():\n\tprint("Hello, World!")')
    out = _out(
        editor.execute(
            "str_replace",
            path,
            old_str='def test():\n\tprint("Hello, World!")',
            new_str='def test():\n\tprint("Hello, Universe!")',
        )
    )
    assert out == (
        f"The file {path} has been edited. Here's the result of running `cat -n` on a snippet "
        f'of {path}:\n     1\tdef test():\n     2\t\tprint("Hello, Universe!")\nReview the '
        "changes and make sure they are as expected. Edit the file again if necessary."
    )


def test_oh_str_replace_errors(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_str_replace_error_multiple_occurrences,
    # test_str_replace_error_multiple_multiline_occurrences, test_str_replace_nonexistent_string
    path = _file(sandbox, "test.txt", "This is a test file.\nThis file is for testing purposes.")
    out = _out(editor.execute("str_replace", path, old_str="test", new_str="sample"))
    assert "Multiple occurrences of old_str `test`" in out and "[1, 2]" in out
    block = "def f():\n    return 1\n    # end\n"
    multi = _file(sandbox, "multi.py", block + "x = 1\ny = 2\nz = 3\n" + block)
    out = _out(editor.execute("str_replace", multi, old_str=block, new_str="pass\n"))
    assert "Multiple occurrences of old_str" in out and "[1, 7]" in out
    out = _out(editor.execute("str_replace", path, old_str="Non-existent Line", new_str="x"))
    assert "No replacement was performed" in out
    assert f"old_str `Non-existent Line` did not appear verbatim in {path}" in out


def test_oh_str_replace_with_empty_old_str(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_str_replace_with_empty_old_str, test_str_replace_missing_old_str;
    # openhands-aci test_str_replace_with_empty_old_str (exact, file without final newline)
    path = _file(sandbox, "test.txt", "Line 1\nLine 2\nLine 3")
    out = _out(editor.execute("str_replace", path, old_str="", new_str="New string"))
    assert out == (
        "ERROR:\nNo replacement was performed. Multiple occurrences of old_str `` in lines "
        "[1, 2, 3]. Please ensure it is unique."
    )


def test_oh_str_replace_new_str_and_old_str_same(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_str_replace_new_str_and_old_str_same
    path = _file(sandbox, "test.txt", "This is a test file.\n")
    out = _out(editor.execute("str_replace", path, old_str="test file", new_str="test file"))
    assert "No replacement was performed. `new_str` and `old_str` must be different." in out


def test_oh_insert(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_insert, test_insert_with_empty_string, test_insert_invalid_line,
    # test_insert_with_none_new_str, test_insert_missing_line_param
    path = _file(sandbox, "test.txt", "Line 1\nLine 2")
    out = _out(editor.execute("insert", path, insert_line=1, new_str=""))
    assert f"The file {path} has been edited" in out
    assert "1\tLine 1" in out and "2\t\n" in out and "3\tLine 2" in out
    out = _out(editor.execute("insert", path, insert_line=10, new_str="x"))
    assert "Invalid `insert_line` parameter" in out
    assert "It should be within the range of allowed values" in out
    out = _out(editor.execute("insert", path, insert_line=1))
    assert "ERROR" in out and "Parameter `new_str` is required for command: insert" in out
    out = _out(editor.execute("insert", path, new_str="x"))
    assert "Parameter `insert_line` is required for command: insert" in out


def test_oh_undo_edit(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_undo_edit, test_undo_edit_no_history_error
    path = _file(sandbox, "test.txt", "This is a test file.")
    assert "No edit history found for" in _out(editor.execute("undo_edit", path))
    out = _out(editor.execute("str_replace", path, old_str="test", new_str="sample"))
    assert "This is a sample file." in out
    out = _out(editor.execute("undo_edit", path))
    assert "Last edit to" in out and "This is a test file." in out


def test_oh_validate_path_invalid(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_validate_path_invalid; openhands-aci
    # test_validation_error_formatting (exact)
    out = _out(editor.execute("view", "/nonexistent/file.txt"))
    assert out == (
        "ERROR:\nInvalid `path` parameter: /nonexistent/file.txt. The path "
        "/nonexistent/file.txt does not exist. Please provide a valid path."
    )
    out = _out(editor.execute("create", _file(sandbox, "exists.txt"), file_text="x"))
    assert "File already exists" in out  # test_create_existing_file_error
    out = _out(editor.execute("str_replace", sandbox.workdir, old_str="a", new_str="b"))
    assert "directory and only the `view` command" in out


def test_oh_view_large_file_with_truncation(sandbox: Sandbox, editor: Editor) -> None:
    # test_aci_edit.py::test_view_large_file_with_truncation
    path = _file(sandbox, "large_test.txt", "Line 1\n" * 16000)
    out = _out(editor.execute("view", path))
    assert "Due to the max output limit, only part of this file has been shown to you." in out


def test_oh_view_range_validation(sandbox: Sandbox, editor: Editor) -> None:
    # openhands-aci tests/integration/editor/test_error_handling.py::test_view_range_validation
    path = _file(sandbox, "test.txt", "Line 1\nLine 2\nLine 3\n")
    assert "should be a list of two integers" in _out(editor.execute("view", path, view_range=[1]))
    out = _out(editor.execute("view", path, view_range=[1, 10]))
    assert "NOTE: We only show up to 3 since there're only 3 lines in this file." in out
    out = _out(editor.execute("view", path, view_range=[3, 1]))
    assert "should be greater than or equal to the first element" in out


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


def test_list_dir_hidden(sandbox: Sandbox) -> None:
    root = sandbox.workdir
    for name in (".env", ".git/config", "a/.inner", "b.txt"):
        sandbox.write_file(f"{root}/{name}", b"x")
    assert sandbox.list_dir(root, 1, hidden=True) == [
        f"{root}/{name}" for name in (".env", ".git/", "a/", "b.txt")
    ]
    # Hidden entries are listed at every level, hidden directories not entered.
    assert sandbox.list_dir(root, 2, hidden=True) == [
        f"{root}/{name}" for name in (".env", ".git/", "a/", "a/.inner", "b.txt")
    ]
