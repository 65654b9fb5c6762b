"""OpenHands' `str_replace_editor`, built only on the Sandbox protocol's file operations.

It never runs a command, so it behaves the same on the local machine and in a container.
Every message is written for the model: what went wrong and what to do instead.
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Callable

import msgspec

from sandbox.file_reading import describe_size
from sandbox.protocol import PathKind, Sandbox

COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")
SNIPPET_LINES = 4  # lines of context shown around an edit
MAX_VIEW_CHARS = 16_000
# The largest file the editor reads: it holds the whole text (and its undo history).
MAX_FILE_BYTES = 10_000_000
MAX_HISTORY = 10  # undo levels kept per file
_QUOTE_CHARS = 300  # how much of an old_str is repeated in an error message


class EditorResult(msgspec.Struct, frozen=True):
    """What one `str_replace_editor` call shows the model."""

    output: str
    error: bool


class _EditorError(Exception):
    """A mistake in the call; its message goes back to the model."""


class Editor:
    """View, create and edit files of a sandbox, with per-file undo history."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        # Earlier contents per file, newest last; in memory only, like OpenHands'.
        self._history: dict[str, list[bytes]] = {}

    def execute(
        self,
        command: str,
        path: str,
        *,
        file_text: str | None = None,
        old_str: str | None = None,
        new_str: str | None = None,
        insert_line: int | None = None,
        view_range: list[int] | None = None,
    ) -> EditorResult:
        """Run one editor command; errors come back as EditorResult(error=True)."""
        actions: dict[str, Callable[[str], str]] = {
            "view": lambda p: self._view(p, view_range),
            "create": lambda p: self._create(p, file_text),
            "str_replace": lambda p: self._str_replace(p, old_str, new_str),
            "insert": lambda p: self._insert(p, insert_line, new_str),
            "undo_edit": self._undo_edit,
        }
        try:
            if command not in actions:
                raise _EditorError(
                    f"Unrecognized command `{command}`. The allowed commands for the "
                    f"str_replace_editor tool are: {', '.join(COMMANDS)}."
                )
            return EditorResult(output=actions[command](self._absolute(path)), error=False)
        except _EditorError as exc:
            return EditorResult(output=str(exc), error=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return EditorResult(output=f"`{command}` failed on {path}: {reason}.", error=True)

    # -- commands --------------------------------------------------------------------------

    def _view(self, path: str, view_range: list[int] | None) -> str:
        kind = self._kind(path, "view")
        if kind == "missing":
            raise _EditorError(f"The path {path} does not exist. Please provide a valid path.")
        if kind == "dir":
            if view_range is not None:
                raise _EditorError(
                    "The `view_range` parameter is not allowed when `path` points to a "
                    "directory. Call `view` without it to list the directory."
                )
            return self._view_dir(path)
        lines = _split_lines(self._read_text(path, "view"))
        first, last = _check_view_range(view_range, len(lines), path)
        shown = _clip_numbered(lines[first - 1 : last], first, len(lines))
        return f"Here's the result of running `cat -n` on {path}:\n{shown}\n"

    def _view_dir(self, path: str) -> str:
        entries = self._sandbox.list_dir(path, 2)
        kept = _take_within(entries, MAX_VIEW_CHARS)
        listing = "\n".join([path.rstrip("/") + "/", *kept])
        if len(kept) < len(entries):
            listing += (
                f"\n<response clipped><NOTE>{len(entries) - len(kept)} more entries are not "
                "shown. View a subdirectory, or use `find` in execute_bash.</NOTE>"
            )
        return (
            f"Here's the files and directories up to 2 levels deep in {path}, excluding "
            f"hidden items:\n{listing}\n"
        )

    def _create(self, path: str, file_text: str | None) -> str:
        if file_text is None:
            raise _EditorError("Parameter `file_text` is required for command: create.")
        kind = self._kind(path, "create")
        if kind == "dir":
            raise _EditorError(f"The path {path} is a directory; `create` needs a file path.")
        if kind == "file":
            raise _EditorError(
                f"File already exists at: {path}. Cannot overwrite files using command "
                "`create`: use `str_replace` to edit it (`view` it first if needed)."
            )
        self._sandbox.write_file(path, file_text.encode())
        # Edits made to an earlier file of the same name must not be "undone" into this one.
        self._history.pop(path, None)
        return f"File created successfully at: {path}"

    def _str_replace(self, path: str, old_str: str | None, new_str: str | None) -> str:
        if old_str is None:
            raise _EditorError("Parameter `old_str` is required for command: str_replace.")
        if not old_str:
            raise _EditorError(
                "`old_str` is empty. Give the exact text to replace, with enough surrounding "
                "lines to make it unique; to add text at a line, use `insert`."
            )
        new_str = new_str or ""
        if old_str == new_str:
            raise _EditorError(
                "No replacement was performed: `old_str` and `new_str` are identical."
            )
        text = self._read_text(path, "str_replace")
        at = self._unique_position(text, old_str, path)
        new_text = text[:at] + new_str + text[at + len(old_str) :]
        self._save(path, text, new_text)
        line = text.count("\n", 0, at)
        snippet = _snippet(new_text, line, line + new_str.count("\n"))
        return (
            f"The file {path} has been edited. Here's the result of running `cat -n` on a "
            f"snippet of {path}:\n{snippet}\n"
            "Review the changes and make sure they are as expected. Edit the file again if "
            "necessary."
        )

    def _insert(self, path: str, insert_line: int | None, new_str: str | None) -> str:
        if insert_line is None or new_str is None:
            missing = "insert_line" if insert_line is None else "new_str"
            raise _EditorError(f"Parameter `{missing}` is required for command: insert.")
        text = self._read_text(path, "insert")
        lines = _split_lines(text)
        if type(insert_line) is not int or not 0 <= insert_line <= len(lines):
            raise _EditorError(
                f"Invalid `insert_line` parameter: {insert_line}. It should be within the "
                f"range of lines of the file: [0, {len(lines)}] (0 inserts at the top)."
            )
        # new_str is whole lines: one final newline does not mean an extra empty line.
        added = new_str.removesuffix("\n").split("\n")
        joined = "\n".join(lines[:insert_line] + added + lines[insert_line:])
        new_text = joined + "\n" if text.endswith("\n") or not text else joined
        self._save(path, text, new_text)
        snippet = _snippet(new_text, insert_line, insert_line + len(added) - 1)
        return (
            f"The file {path} has been edited. Here's the result of running `cat -n` on a "
            f"snippet of the edited file:\n{snippet}\n"
            "Review the changes and make sure they are as expected (correct indentation, no "
            "duplicate lines, etc). Edit the file again if necessary."
        )

    def _undo_edit(self, path: str) -> str:
        versions = self._history.get(path)
        if not versions:
            raise _EditorError(
                f"No edit history found for {path}: only `str_replace` and `insert` edits "
                "made with this tool can be undone."
            )
        previous = versions[-1]
        self._kind(path, "undo_edit")  # replaced by a FIFO since, writing would block
        self._sandbox.write_file(path, previous)
        versions.pop()
        lines = _split_lines(previous.decode())
        shown = _clip_numbered(lines, 1, len(lines))
        return (
            f"Last edit to {path} undone successfully. Here's the result of running `cat -n` "
            f"on {path}:\n{shown}\n"
        )

    # -- helpers ---------------------------------------------------------------------------

    def _absolute(self, path: str) -> str:
        if not path:
            raise _EditorError("Parameter `path` is required: give an absolute path.")
        if not posixpath.isabs(path):
            suggestion = posixpath.join(self._sandbox.workdir, path)
            raise _EditorError(
                f"The path {path} is not an absolute path, it should start with `/`. "
                f"Maybe you meant {posixpath.normpath(suggestion)}?"
            )
        return posixpath.normpath(path)

    def _kind(self, path: str, command: str) -> PathKind:
        """What is at path; a special file is an error: it is never opened."""
        kind = self._sandbox.path_kind(path)
        if kind == "special":
            raise _EditorError(
                f"The path {path} is a special file (a FIFO, device or socket), not a regular "
                f"file, so `{command}` does not open it: reading it could wait forever or never "
                f"end. Inspect it with execute_bash instead, e.g. `ls -l {path}`."
            )
        return kind

    def _read_text(self, path: str, command: str) -> str:
        kind = self._kind(path, command)
        if kind == "missing":
            raise _EditorError(f"The path {path} does not exist. Please provide a valid path.")
        if kind == "dir":
            raise _EditorError(
                f"The path {path} is a directory and `{command}` works on files only. "
                "Use `view` to list the directory."
            )
        data = self._read_bytes(path, command)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = "\0"
        if "\0" in text:  # NUL bytes or invalid UTF-8: not something to show or edit
            raise _EditorError(
                f"The file {path} is binary (not UTF-8 text), so `{command}` cannot work on "
                f"it. Inspect it with execute_bash instead, e.g. `file {path}` or "
                f"`xxd {path} | head`."
            )
        return text

    def _read_bytes(self, path: str, command: str) -> bytes:
        try:
            return self._sandbox.read_file(path, MAX_FILE_BYTES)
        except OSError as exc:
            if exc.errno != errno.EFBIG:
                raise
        raise _EditorError(
            f"The file {path} is larger than {describe_size(MAX_FILE_BYTES)}, the most "
            f"`{command}` works on. Use execute_bash instead, e.g. `sed -n '1,100p' {path}` to "
            f"see lines 1-100, `grep -n 'text' {path}` to find lines, `sed -i` to edit."
        )

    def _unique_position(self, text: str, old_str: str, path: str) -> int:
        positions = _find_all(text, old_str)
        quoted = old_str if len(old_str) <= _QUOTE_CHARS else old_str[:_QUOTE_CHARS] + "..."
        if not positions:
            raise _EditorError(
                f"No replacement was performed, old_str `{quoted}` did not appear verbatim in "
                f"{path}. Check its whitespace and indentation against the `view` output."
            )
        if len(positions) > 1:
            lines = [text.count("\n", 0, at) + 1 for at in positions]
            raise _EditorError(
                f"No replacement was performed. Multiple occurrences of old_str `{quoted}` in "
                f"lines {lines}. Please ensure it is unique by including more surrounding lines."
            )
        return positions[0]

    def _save(self, path: str, old_text: str, new_text: str) -> None:
        versions = self._history.setdefault(path, [])
        versions.append(old_text.encode())
        del versions[:-MAX_HISTORY]
        self._sandbox.write_file(path, new_text.encode())


def _split_lines(text: str) -> list[str]:
    """Lines as `cat -n` counts them: split on \\n only, a final newline ends the last line."""
    if not text:
        return []
    return text.removesuffix("\n").split("\n")


def _find_all(text: str, needle: str) -> list[int]:
    """Every start of needle in text, overlapping ones included (they are ambiguous too)."""
    found: list[int] = []
    at = text.find(needle)
    while at >= 0:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


def _number(lines: list[str], first: int) -> list[str]:
    return [f"{n:6}\t{line}" for n, line in enumerate(lines, first)]


def _snippet(text: str, first_changed: int, last_changed: int) -> str:
    """Numbered lines around the changed ones (0-based, inclusive), with some context."""
    lines = _split_lines(text)
    start = max(0, first_changed - SNIPPET_LINES)
    end = min(len(lines), last_changed + SNIPPET_LINES + 1)
    return _clip_numbered(lines[start:end], start + 1, len(lines))


def _take_within(items: list[str], limit: int) -> list[str]:
    """The leading items whose lines fit in limit characters."""
    size = 0
    for count, item in enumerate(items):
        size += len(item) + 1
        if size > limit:
            return items[:count]
    return items


def _clip_numbered(lines: list[str], first: int, total: int) -> str:
    """`cat -n` text of lines starting at line `first`, clipped to MAX_VIEW_CHARS."""
    numbered = _number(lines, first)
    kept = _take_within(numbered, MAX_VIEW_CHARS)
    if len(kept) == len(numbered):
        return "\n".join(numbered)
    if not kept:  # a single huge line (minified code, data)
        kept = [numbered[0][:MAX_VIEW_CHARS] + " [... rest of the line cut]"]
    last = first + len(kept) - 1
    return "\n".join(kept) + (
        f"\n<response clipped><NOTE>To save on context only lines {first}-{last} of {total} "
        "are shown. Use `view_range` to see other parts, or `grep -n` in execute_bash to find "
        "the line numbers of what you are looking for.</NOTE>"
    )


def _check_view_range(view_range: list[int] | None, total: int, path: str) -> tuple[int, int]:
    """The 1-based inclusive lines to show, or an error saying what a valid range is."""
    if view_range is None:
        return 1, total
    valid_shape = isinstance(view_range, list | tuple) and len(view_range) == 2
    if not valid_shape or any(type(n) is not int for n in view_range):
        raise _EditorError(
            f"Invalid `view_range` parameter: {view_range}. It should be a list of two "
            "integers [start_line, end_line]; end_line -1 means the end of the file."
        )
    start, end = view_range
    if total == 0:
        raise _EditorError(f"The file {path} is empty; view it without `view_range`.")
    if not 1 <= start <= total:
        raise _EditorError(
            f"Invalid `view_range` parameter: {list(view_range)}. Its first element `{start}` "
            f"should be within the range of lines of the file: [1, {total}]."
        )
    if end == -1:
        return start, total
    if end < start:
        raise _EditorError(
            f"Invalid `view_range` parameter: {list(view_range)}. Its second element `{end}` "
            f"should be greater than or equal to the first element `{start}`, or -1 for the "
            "end of the file."
        )
    if end > total:
        raise _EditorError(
            f"Invalid `view_range` parameter: {list(view_range)}. Its second element `{end}` "
            f"should be at most the number of lines in the file ({total}), or -1 for the "
            "end of the file."
        )
    return start, end
