"""OpenHands' `str_replace_editor`, built only on the Sandbox protocol's file operations.

It never runs a command, so it behaves the same on the local machine and in a container.
Messages are openhands-aci 0.3.2's (`openhands_aci/editor/editor.py`, `exceptions.py`), and an
error reaches the model as `ERROR:\n` + message like OpenHands' runtime sends it
(`openhands/runtime/action_execution_server.py`): a model tuned on OpenHands recognises them.
Where OpenHands has no such case (special files...) the message is ours, in the same shape.
See docs/parity/tool-contract.md §6.
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
ERROR_PREFIX = "ERROR:\n"  # OpenHands' runtime puts it before every editor error
# openhands-aci's notes for output cut at MAX_VIEW_CHARS (`openhands_aci/editor/prompts.py`).
FILE_CLIPPED_NOTE = (
    "<response clipped><NOTE>Due to the max output limit, only part of this file has been "
    "shown to you. You should retry this tool after you have searched inside the file with "
    "`grep -n` in order to find the line numbers of what you are looking for.</NOTE>"
)
DIRECTORY_CLIPPED_NOTE = (
    "<response clipped><NOTE>Due to the max output limit, only part of this directory has "
    "been shown to you. You should use `ls -la` instead to view large directories "
    "incrementally.</NOTE>"
)


class EditorResult(msgspec.Struct, frozen=True):
    """What one `str_replace_editor` call shows the model."""

    output: str
    error: bool


class _EditorError(Exception):
    """A mistake in the call; its message goes back to the model."""


def _invalid(parameter: str, value: object, hint: str) -> _EditorError:
    """openhands-aci's EditorToolParameterInvalidError text."""
    return _EditorError(f"Invalid `{parameter}` parameter: {value}. {hint}")


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
            # openhands-aci validates the path before the command.
            absolute = self._absolute(path)
            if command not in actions:
                raise _EditorError(unrecognized_command(command))
            return EditorResult(output=actions[command](absolute), error=False)
        except _EditorError as exc:
            return EditorResult(output=ERROR_PREFIX + str(exc), error=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            failed = f"`{command}` failed on {path}: {reason}."
            return EditorResult(output=ERROR_PREFIX + failed, error=True)

    # -- commands --------------------------------------------------------------------------

    def _view(self, path: str, view_range: list[int] | None) -> str:
        kind = self._kind(path, "view")
        if kind == "missing":
            raise _missing(path)
        if kind == "dir":
            if view_range is not None:
                raise _invalid(
                    "view_range",
                    view_range,
                    "The `view_range` parameter is not allowed when `path` points to a directory.",
                )
            return self._view_dir(path)
        # An empty file shows one empty numbered line, like openhands-aci's `cat -n`.
        lines = _split_lines(self._read_text(path, "view")) or [""]
        first, last, note = _check_view_range(view_range, len(lines))
        shown = _clip_numbered(lines[first - 1 : last], first)
        return f"{note}Here's the result of running `cat -n` on {path}:\n{shown}\n"

    def _view_dir(self, path: str) -> str:
        entries = self._sandbox.list_dir(path, 2)
        kept = _take_within(entries, MAX_VIEW_CHARS)
        listing = "\n".join([path.rstrip("/") + "/", *kept])
        if len(kept) < len(entries):
            listing += "\n" + DIRECTORY_CLIPPED_NOTE
        # openhands-aci counts the hidden entries of the directory itself (not deeper ones)
        # and ends the listing without a newline.
        top = self._sandbox.list_dir(path, 1, hidden=True)
        hidden = sum(posixpath.basename(e.rstrip("/")).startswith(".") for e in top)
        if hidden:
            listing += (
                f"\n\n{hidden} hidden files/directories in this directory are excluded. "
                f"You can use 'ls -la {path}' to see them."
            )
        return (
            f"Here's the files and directories up to 2 levels deep in {path}, excluding "
            f"hidden items:\n{listing}"
        )

    def _create(self, path: str, file_text: str | None) -> str:
        if file_text is None:
            raise _EditorError("Parameter `file_text` is required for command: create.")
        if self._kind(path, "create") != "missing":  # a file or a directory, as in OpenHands
            raise _invalid(
                "path",
                path,
                f"File already exists at: {path}. Cannot overwrite files using command `create`.",
            )
        self._sandbox.write_file(path, file_text.encode())
        # Edits made to an earlier file of the same name must not be "undone" into this one.
        self._history.pop(path, None)
        return f"File created successfully at: {path}"

    def _str_replace(self, path: str, old_str: str | None, new_str: str | None) -> str:
        if old_str is None:
            raise _EditorError("Parameter `old_str` is required for command: str_replace.")
        if old_str == new_str:  # checked before the file is read, as in openhands-aci
            raise _invalid(
                "new_str",
                new_str,
                "No replacement was performed. `new_str` and `old_str` must be different.",
            )
        new_str = new_str or ""
        text = self._read_text(path, "str_replace")
        at, old_str, new_str = _locate(text, old_str, new_str, path)
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
            raise _invalid(
                "insert_line",
                insert_line,
                f"It should be within the range of allowed values: [0, {len(lines)}]",
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
            raise _EditorError(f"No edit history found for {path}.")
        previous = versions[-1]
        self._kind(path, "undo_edit")  # replaced by a FIFO since, writing would block
        self._sandbox.write_file(path, previous)
        versions.pop()
        shown = _clip_numbered(_split_lines(previous.decode()) or [""], 1)
        return (
            f"Last edit to {path} undone successfully. Here's the result of running `cat -n` "
            f"on {path}:\n{shown}\n"
        )

    # -- helpers ---------------------------------------------------------------------------

    def _absolute(self, path: str) -> str:
        if not path:
            raise _EditorError("Parameter `path` is required: give an absolute path.")
        if not posixpath.isabs(path):
            hint = "The path should be an absolute path, starting with `/`."
            # Like openhands-aci: the workdir guess is offered only when something is there.
            guess = posixpath.normpath(posixpath.join(self._sandbox.workdir, path))
            if self._sandbox.path_kind(guess) != "missing":
                hint += f" Maybe you meant {guess}?"
            raise _invalid("path", path, hint)
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
            raise _missing(path)
        if kind == "dir":
            raise _invalid(
                "path",
                path,
                f"The path {path} is a directory and only the `view` command can be used on "
                "directories.",
            )
        data = self._read_bytes(path, command)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = "\0"
        if "\0" in text:  # NUL bytes or invalid UTF-8: not something to show or edit
            raise _EditorError(
                f"File validation failed for {path}: File appears to be binary and this file "
                "type cannot be read or edited by this tool. (It is not UTF-8 text: inspect it "
                f"with execute_bash instead, e.g. `file {path}` or `xxd {path} | head`.)"
            )
        return text

    def _read_bytes(self, path: str, command: str) -> bytes:
        try:
            return self._sandbox.read_file(path, MAX_FILE_BYTES)
        except OSError as exc:
            if exc.errno != errno.EFBIG:
                raise
        limit = describe_size(MAX_FILE_BYTES).replace(" ", "")
        raise _EditorError(
            f"File validation failed for {path}: File is too large (over {limit}). Maximum "
            f"allowed size is {limit}. (`{command}` cannot work on it: use execute_bash "
            f"instead, e.g. `sed -n '1,100p' {path}` to see lines 1-100, `grep -n 'text' "
            f"{path}` to find lines, `sed -i` to edit.)"
        )

    def _save(self, path: str, old_text: str, new_text: str) -> None:
        versions = self._history.setdefault(path, [])
        versions.append(old_text.encode())
        del versions[:-MAX_HISTORY]
        self._sandbox.write_file(path, new_text.encode())


def unrecognized_command(command: str) -> str:
    """openhands-aci's message for a command it does not know (its tool name is ours)."""
    return (
        f"Unrecognized command {command}. The allowed commands for the str_replace_editor "
        f"tool are: {', '.join(COMMANDS)}"
    )


def _missing(path: str) -> _EditorError:
    return _invalid("path", path, f"The path {path} does not exist. Please provide a valid path.")


def _locate(text: str, old_str: str, new_str: str, path: str) -> tuple[int, str, str]:
    """Where the only occurrence of old_str starts, and the old_str/new_str to use there.

    Like openhands-aci, when old_str is not found as given, both strings are tried again
    stripped of surrounding whitespace (models often add a stray newline or space).
    """
    if not old_str and not text:  # openhands-aci would write new_str as the whole file
        raise _EditorError(
            f"No replacement was performed: `old_str` is empty and {path} is empty too. To "
            "add text to it, use `insert` with `insert_line` 0."
        )
    positions = _find_all(text, old_str)
    if not positions and old_str.strip() != old_str:
        old_str, new_str = old_str.strip(), new_str.strip()
        positions = _find_all(text, old_str)
    quoted = old_str if len(old_str) <= _QUOTE_CHARS else old_str[:_QUOTE_CHARS] + "..."
    if not positions:
        raise _EditorError(
            f"No replacement was performed, old_str `{quoted}` did not appear verbatim in {path}."
        )
    if len(positions) > 1 or not old_str:
        lines = sorted({text.count("\n", 0, at) + 1 for at in positions})
        raise _EditorError(
            f"No replacement was performed. Multiple occurrences of old_str `{quoted}` in "
            f"lines {lines}. Please ensure it is unique."
        )
    return positions[0], old_str, new_str


def _split_lines(text: str) -> list[str]:
    """Lines as `cat -n` counts them: split on \\n only, a final newline ends the last line."""
    if not text:
        return []
    return text.removesuffix("\n").split("\n")


def _find_all(text: str, needle: str) -> list[int]:
    """Every start of needle in text, overlapping ones included (they are ambiguous too)."""
    if not needle:
        # openhands-aci matches '' at every position: every line (and the one after a final
        # newline) is an occurrence. Only their lines matter, so one start per line is enough.
        return [0] + [at + 1 for at, char in enumerate(text) if char == "\n"]
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
    return _clip_numbered(lines[start:end], start + 1)


def _take_within(items: list[str], limit: int) -> list[str]:
    """The leading items whose lines fit in limit characters."""
    size = 0
    for count, item in enumerate(items):
        size += len(item) + 1
        if size > limit:
            return items[:count]
    return items


def _clip_numbered(lines: list[str], first: int) -> str:
    """`cat -n` text of lines starting at line `first`, clipped to MAX_VIEW_CHARS.

    openhands-aci cuts the text mid-line before numbering; whole lines are cut here, so the
    model never sees half a line, with openhands-aci's note.
    """
    numbered = _number(lines, first)
    kept = _take_within(numbered, MAX_VIEW_CHARS)
    if len(kept) == len(numbered):
        return "\n".join(numbered)
    if not kept:  # a single huge line (minified code, data)
        kept = [numbered[0][:MAX_VIEW_CHARS] + " [... rest of the line cut]"]
    return "\n".join(kept) + "\n" + FILE_CLIPPED_NOTE


def _check_view_range(view_range: list[int] | None, total: int) -> tuple[int, int, str]:
    """The 1-based inclusive lines to show and a note to put first, or openhands-aci's error.

    An end past the last line is clamped with openhands-aci's NOTE rather than refused.
    """
    if view_range is None:
        return 1, total, ""
    valid_shape = isinstance(view_range, list | tuple) and len(view_range) == 2
    if not valid_shape or any(type(n) is not int for n in view_range):
        raise _invalid("view_range", view_range, "It should be a list of two integers.")
    start, end = view_range
    if not 1 <= start <= total:
        raise _invalid(
            "view_range",
            list(view_range),
            f"Its first element `{start}` should be within the range of lines of the file: "
            f"[1, {total}].",
        )
    if end == -1:
        return start, total, ""
    if end > total:
        note = f"NOTE: We only show up to {total} since there're only {total} lines in this file.\n"
        return start, total, note
    if end < start:
        raise _invalid(
            "view_range",
            list(view_range),
            f"Its second element `{end}` should be greater than or equal to the first element "
            f"`{start}`.",
        )
    return start, end, ""
