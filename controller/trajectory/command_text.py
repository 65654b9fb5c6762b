"""A command's observation text, as runhands shows it to the model, split the way OpenHands
stores it (output, plus the exit-code line and working directory in metadata) and joined
back."""

from __future__ import annotations

import re

from controller.trajectory.shapes import CmdMetadata, CmdOutputExtras

_EXIT_LINE = re.compile(r"(?:^|\n)(\[The command completed with exit code (-?\d+)\.\])\Z")
_CWD_LINE = re.compile(r"(?:^|\n)\[Current working directory: ([^\n]*)\]\Z")


def split_command_text(text: str, exit_code: int | None) -> tuple[str, CmdMetadata]:
    """Our command observation split the OpenHands way: output, plus the exit-code line as
    `suffix` and the working directory in `metadata` (`command_text` joins them back)."""
    metadata = CmdMetadata(exit_code=-1 if exit_code is None else exit_code)
    cwd = _CWD_LINE.search(text)
    if cwd:
        metadata.working_dir = cwd.group(1)
        text = text[: cwd.start()]
    done = _EXIT_LINE.search(text)
    if done:
        metadata.suffix = "\n" + done.group(1)
        metadata.exit_code = int(done.group(2))
        text = text[: done.start()]
    return text, metadata


def command_text(content: str, extras: CmdOutputExtras) -> str:
    """A `run` observation as runhands shows it to the model (see `format_command_result`)."""
    metadata = extras.metadata or CmdMetadata()
    suffix = metadata.suffix.removeprefix("\n")
    if extras.metadata is None and extras.exit_code not in (None, -1):
        suffix = f"[The command completed with exit code {extras.exit_code}.]"  # older files
    cwd = metadata.working_dir
    parts = [
        metadata.prefix + content,
        suffix,
        f"[Current working directory: {cwd}]" if cwd else "",
    ]
    return "\n".join(part for part in parts if part)
