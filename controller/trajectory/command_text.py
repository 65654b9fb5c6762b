"""A command's observation text as the model sees it, OpenHands' way: composed from the
output and its metadata (`join_command_text`), split back into OpenHands' fields
(`split_command_text`) for export, rebuilt from them (`command_text`) for import, and
reduced to what a replay should compare (`comparable_command_text`)."""

from __future__ import annotations

import re

from controller.trajectory.shapes import CmdMetadata, CmdOutputExtras

CONTINUED_PREFIX = "[Below is the output of the previous command.]\n"

# The lines that end a command's text, each matched against a whole line.
_FINISHED = re.compile(r"\[Command finished with exit code (-?\d+)\]")
_PYTHON = re.compile(r"\[Python interpreter: ([^\n]*)\]")
_CWD = re.compile(r"\[Current working directory: ([^\n]*)\]")
_EXIT = re.compile(
    r"(\[The command completed with exit code (-?\d+)\.(?: CTRL\+[A-Z] was sent\.)?\])"
)
# The same as the last line of a text (for `sub`, and searches on short texts).
_FINISHED_LINE = re.compile(r"\n?" + _FINISHED.pattern + r"\Z")
_PYTHON_LINE = re.compile(r"\n?" + _PYTHON.pattern + r"\Z")
_CWD_LINE = re.compile(r"\n?" + _CWD.pattern + r"\Z")
_EXIT_LINE = re.compile(r"(?:^|\n)" + _EXIT.pattern + r"\Z")
# Where the note of a command still running starts (OpenHands' and our older wordings): it
# is OpenHands' `suffix`, the rest of the text from there.
_RUNNING_NOTE = re.compile(
    r"\n?\[(?:The command has no new output after |The command timed out after "
    r'|Your command ".*" is NOT executed\. )',
    re.S,
)

# Notes whose words changed, or differ between OpenHands versions and us, reduced to what
# they mean so that a replay does not diverge on wording.
_NOTE_MEANINGS = [
    (re.compile(r"\[The command has no new output after [^\]]*\]"), "[no new output]"),
    (
        re.compile(r"\[The command (?:timed out|was killed) after [^\]]*\]"),
        "[timed out]",
    ),
    (re.compile(r"\[The command is still running and kept printing[^\]]*\]"), "[timed out]"),
    (re.compile(r'\[Your command ".*?" (?:is|was) NOT executed\. [^\]]*\]', re.S), "[refused]"),
    (
        re.compile(
            r"ERROR: No previous running command to (?:retrieve logs from|interact with)\."
            r"|\[No command given: [^\]]*\]|\[No command is running, [^\]]*\]"
        ),
        "[nothing running]",
    ),
    (re.compile(r"\n?\[\.\.\. Observation truncated due to length \.\.\.\]\n?"), "[cut]"),
    (
        re.compile(r"\n*\[\.\.\. [\d,]+ (?:characters|bytes) cut from the middle[^\]]*\]\n*"),
        "[cut]",
    ),
    (re.compile(r" CTRL\+[A-Z] was sent\.\]"), "]"),
]


def exit_line(exit_code: int, key: str = "") -> str:
    """OpenHands' suffix of a completed command; `key` the control key the call sent."""
    sent = f" CTRL+{key[-1].upper()} was sent." if key else ""
    return f"[The command completed with exit code {exit_code}.{sent}]"


def join_command_text(
    body: str, suffix: str, *, cwd: str = "", python: str = "", exit_code: int = -1
) -> str:
    """OpenHands' `CmdOutputObservation.to_agent_observation`
    (openhands/events/observation/commands.py): body (prefix + output), suffix, then the
    working directory, the python interpreter and `[Command finished with exit code N]`
    (OpenHands fills them in only for a completed command). Empty parts are left out, so
    an empty output does not start the text with a newline."""
    lines = [body, suffix]
    if cwd:
        lines.append(f"[Current working directory: {cwd}]")
    if python:
        lines.append(f"[Python interpreter: {python}]")
    if exit_code != -1:
        lines.append(f"[Command finished with exit code {exit_code}]")
    return "\n".join(line for line in lines if line)


def _pop_line(text: str, line: re.Pattern[str]) -> tuple[str, re.Match[str] | None]:
    """The text less its last line when that line is `line`, and the match. Only the last
    line is looked at: a search anchored at the end would scan the whole output."""
    head, _, last = text.rpartition("\n")
    found = line.fullmatch(last)
    return (head, found) if found else (text, None)


def metadata_tail(text: str) -> tuple[str, str, str, int | None]:
    """A command observation less its trailing metadata lines (see `join_command_text`),
    with their values: working directory, python interpreter ("" when absent) and the exit
    code of `[Command finished with exit code N]` (None: not a completed command)."""
    text, finished = _pop_line(text, _FINISHED)
    if finished is None:
        return text, "", "", None
    text, python = _pop_line(text, _PYTHON)
    text, cwd = _pop_line(text, _CWD)
    values = [m.group(1) if m else "" for m in (cwd, python)]
    return text, values[0], values[1], int(finished.group(1))


def completed_line(text: str) -> tuple[str, int] | None:
    """The `[The command completed with exit code N.]` line text ends with, and N."""
    done = _pop_line(text, _EXIT)[1]
    return (done.group(1), int(done.group(2))) if done else None


def split_command_text(text: str, exit_code: int | None) -> tuple[str, CmdMetadata]:
    """Our command observation split the OpenHands way: the output as content, the
    continuation prefix, the exit-code or running note as `suffix`, the working directory
    and python interpreter in `metadata` (`command_text` joins them back)."""
    metadata = CmdMetadata(exit_code=-1 if exit_code is None else exit_code)
    text, finished = _pop_line(text, _FINISHED)
    if finished:
        metadata.exit_code = int(finished.group(1))
    text, python = _pop_line(text, _PYTHON)
    if python:
        metadata.py_interpreter_path = python.group(1)
    text, cwd = _pop_line(text, _CWD)
    if cwd:
        metadata.working_dir = cwd.group(1)
    text, done = _pop_line(text, _EXIT)
    if done:
        metadata.suffix = "\n" + done.group(1)
        metadata.exit_code = int(done.group(2))
    elif text.endswith("]") and (running := _last_match(_RUNNING_NOTE, text)):
        metadata.suffix = "\n" + text[running.start() :].removeprefix("\n")
        text = text[: running.start()]
    if text.startswith(CONTINUED_PREFIX):
        metadata.prefix = CONTINUED_PREFIX
        text = text.removeprefix(CONTINUED_PREFIX)
    return text, metadata


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for found in pattern.finditer(text):  # noqa: B007 - the last one is wanted
        pass
    return found


def command_text(content: str, extras: CmdOutputExtras) -> str:
    """A `run` observation as the model saw it (see `join_command_text`)."""
    metadata = extras.metadata or CmdMetadata()
    suffix = metadata.suffix.removeprefix("\n")
    exit_code = metadata.exit_code
    if extras.metadata is None and extras.exit_code not in (None, -1):  # older files
        exit_code = extras.exit_code
        suffix = exit_line(exit_code)
    return join_command_text(
        metadata.prefix + content,
        suffix,
        cwd=metadata.working_dir or "",
        python=metadata.py_interpreter_path or "",
        exit_code=exit_code,
    )


def comparable_command_text(text: str) -> str:
    """A command observation reduced to what a replay compares: the output, the exit code
    and what the notes mean; not the wording of notes (OpenHands' and ours changed over
    time), the continuation prefix, nor the lines that repeat the exit code or depend on
    the machine (`[Command finished ...]`, `[Python interpreter: ...]`)."""
    for line in (_FINISHED_LINE, _PYTHON_LINE):
        text = line.sub("", text)
    # We used to show the working directory on every result; now only on a completed one.
    cwd = _CWD_LINE.search(text)
    if cwd and not _EXIT_LINE.search(text[: cwd.start()]):
        text = text[: cwd.start()]
    text = text.removeprefix(CONTINUED_PREFIX)
    for pattern, meaning in _NOTE_MEANINGS:
        text = pattern.sub(meaning, text)
    return text
