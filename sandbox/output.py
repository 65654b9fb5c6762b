"""Turning raw terminal bytes into text a model can read, and keeping it short."""

from __future__ import annotations

import re

MAX_OUTPUT_CHARS = 30_000

# CSI sequences (colours, cursor moves), OSC sequences (window titles, hyperlinks) ended by
# BEL or ST, charset selections, and the remaining two-byte escapes.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[()*+][0-~]"
    r"|\x1b[@-Z\\-_=>]"
)
# Control characters other than tab and newline: they only garble the text (bells, NULs,
# backspaces, binary noise) and some of them are invalid in JSON or XML.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# What a terminal obeys rather than shows: C0 controls but tab and newline (ESC starts the
# sequences that retitle the window, move the cursor or set the clipboard with OSC 52),
# DEL, C1 controls (some terminals take U+009B as CSI and U+009D as OSC) and the bidi
# controls that reorder what is displayed.
_TERMINAL_UNSAFE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


# What replaces the middle of a cut output: OpenHands' marker (openhands/events/
# serialization/event.py `truncate_content`), which models tuned on it recognise.
TRUNCATION_MARKER = "\n[... Observation truncated due to length ...]\n"


def truncate_middle(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the first and last limit/2 characters of text, with a marker in between.

    The middle goes because the start of an output says what ran and the end says how it
    finished (errors, summaries), both usually more useful than the bulk in between.
    """
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return text[:head] + TRUNCATION_MARKER + text[-tail:]


def _apply_carriage_returns(line: str) -> str:
    """Render a line as a terminal would: text after a \\r overwrites the line's start."""
    if "\r" not in line:
        return line
    shown = ""
    for segment in line.split("\r"):
        shown = segment + shown[len(segment) :]
    return shown


def decode_output(data: bytes) -> str:
    """Decode terminal output: invalid UTF-8 replaced, escapes and control bytes removed.

    Progress bars that redraw a line with \\r collapse to their final state.
    """
    text = data.decode("utf-8", errors="replace")
    text = _ANSI.sub("", text).replace("\r\n", "\n")
    if "\r" in text:
        text = "\n".join(_apply_carriage_returns(line) for line in text.split("\n"))
    return _CONTROL.sub("", text)


def for_terminal(text: str) -> str:
    """Text someone else wrote (the model, a file), safe to print: each character a
    terminal would obey is shown escaped instead (ESC as `\\x1b`), so an escape sequence
    reads as text and the attempt stays visible; newlines and tabs are kept."""
    return _TERMINAL_UNSAFE.sub(_visible, text)


def json_for_terminal(line: str) -> str:
    """A JSON text safe to print: the characters a terminal would obey that the encoder
    leaves as they are (DEL, C1 and bidi controls) written as `\\u` escapes, which decode
    to the same string."""
    return _TERMINAL_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
