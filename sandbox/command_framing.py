"""How commands are framed on the shell's terminal.

A command is typed as one `eval -- $'...'`, so any text (several lines, heredocs,
functions, unbalanced quotes) runs as a single command followed by exactly one marker:
PROMPT_COMMAND prints it before the next prompt, carrying the command's nonce, its exit
status, the `python` on PATH (OpenHands shows it to the model) and $PWD. `Capture` reads
one call's output up to that marker in bounded memory.

The nonce is the marker's secret: fresh for every command, set on the command's own input
line (read whole by the shell before the command starts) in an unexported variable, so
nothing the command starts can read it from its environment, its arguments, the terminal
or a file, and a script printing a marker cannot end or shift an observation. The prompt
hook forgets it once printed; the hook and PROMPT_COMMAND are read-only, so a command cannot
take the marker away by redefining them (see shell_watch for what still can).
"""

from __future__ import annotations

import re
import secrets

from sandbox.output import (
    MAX_OUTPUT_CHARS,
    TRUNCATION_MARKER,
    decode_output,
    truncate_middle,
)

# Bytes of a call's output kept at each end while reading; the middle is only counted, so
# a command printing gigabytes costs bounded memory. Together they fit MAX_OUTPUT_CHARS.
_HEAD_BYTES = MAX_OUTPUT_CHARS // 2
_TAIL_BYTES = MAX_OUTPUT_CHARS // 2
# Extra room before the tail is trimmed, so trimming (a memmove) happens rarely.
_SLACK_BYTES = 1 << 16
# A marker is short but carries $PWD and python's path, each up to PATH_MAX long.
_MAX_MARKER_BYTES = 2 * 4096 + 64
# A terminal in canonical mode takes at most 4095 bytes per line: commands are sent as
# continuation lines of at most this many characters (at most 4 escaped bytes each).
_CHUNK_CHARS = 500
# What follows the marker's tag: the exit status, python's path (never holding "#" nor a
# newline: the hook leaves it empty then) and $PWD (which may contain "#").
_MARKER_REST = re.compile(rb"(-?\d+)###([^#\n]*)###(.*?)###\n", re.S)
# Backslash escapes inside $'...'; other control characters become \xHH so that none of
# them reaches the terminal raw (where C-c, C-d, C-z... would act as keys).
_ESCAPES = {ord("\\"): "\\\\", ord("'"): "\\'", ord("\n"): "\\n", ord("\t"): "\\t"}
_ESCAPES.update({c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F) if c not in _ESCAPES})


def new_nonce() -> str:
    """A fresh secret for one command's marker."""
    return secrets.token_hex(8)


def encode_command(command: str, nonce: str) -> bytes:
    """The terminal input that runs command as one `eval`, in lines a terminal accepts,
    ended by the marker carrying nonce."""
    chunks = [
        command[i : i + _CHUNK_CHARS].translate(_ESCAPES)
        for i in range(0, len(command), _CHUNK_CHARS)
    ]
    # Adjacent $'..' words joined by backslash-newline form one word for bash.
    line = _arm(nonce) + "eval -- $'" + "'\\\n$'".join(chunks) + "'\n"
    return line.encode("utf-8", errors="replace")


def _arm(nonce: str) -> str:
    """Set the nonce for the next marker, then give the command back the previous $?.

    `export -n`: not exported even under `set -a`; `2>/dev/null`: not traced under `set -x`
    (the trace may go to a file the command reads). The leading `:` because after a syntax
    error in an `eval`, bash does not take the next line's first `{` as a keyword.
    """
    return f":; {{ __rh_n={nonce}; export -n __rh_n; __rh_ret; }} 2>/dev/null; "


def marker_tag(nonce: str) -> bytes:
    """The start of the marker printed at the end of the command given this nonce."""
    return f"###RH-{nonce}###".encode()


def prompt_setup(nonce: str) -> bytes:
    """Shell setup: the marker hook, empty prompts, no history; its own marker carries nonce.

    The hook prints the marker only when a command set a nonce (a prompt redrawn after C-c
    at an idle prompt prints nothing), keeps $? for the next command (`__rh_ret`), and
    writes to /dev/tty so a command redirecting stdout or stderr with `exec` does not hide
    it. PS0 would print before every command, inside its output.
    """
    return (
        "__rh_prompt() { local s=$?; __rh_s=$s; "
        'if [ -n "${__rh_n-}" ]; then local py; py=$(type -P python 2>/dev/null) || py=; '
        "case $py in *'#'*|*$'\\n'*) py= ;; esac; "
        'printf \'\\n###RH-%s###%s###%s###%s###\\n\' "$__rh_n" "$s" "$py" "$PWD" >/dev/tty; '
        "__rh_n=; fi; "
        "PS0=; PS1=; PS2=; return $s; }; "
        "__rh_ret() { return $__rh_s; }; "
        "readonly -f __rh_prompt __rh_ret; readonly PROMPT_COMMAND=__rh_prompt; "
        f"PS1=; PS2=; set +H +o history; unset HISTFILE; __rh_s=0; __rh_n={nonce}\n"
    ).encode()


class Capture:
    """Output read during one call: head and tail kept, the middle counted, marker found."""

    def __init__(self, pending: bytes, tag: bytes) -> None:
        self._tag = tag
        self.head: bytes | None = None
        self.buf = bytearray(pending)
        self.dropped = 0
        self._scan = 0
        self.exit_code: int | None = None
        self.cwd = ""
        self.python = ""
        self.leftover = b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        if self.head is None and len(self.buf) > _HEAD_BYTES + _TAIL_BYTES + _SLACK_BYTES:
            self.head = bytes(self.buf[:_HEAD_BYTES])
            self._drop(_HEAD_BYTES, count=False)
        if self.head is not None and len(self.buf) > _TAIL_BYTES + _SLACK_BYTES:
            self._drop(len(self.buf) - _TAIL_BYTES, count=True)

    def _drop(self, n: int, *, count: bool) -> None:
        del self.buf[:n]
        self.dropped += n if count else 0
        self._scan = max(0, self._scan - n)

    def find_marker(self) -> bool:
        """Look for the prompt marker; on success split off the output before it."""
        i = self.buf.find(self._tag, self._scan)
        while i >= 0:
            m = _MARKER_REST.match(self.buf, i + len(self._tag))
            if m:
                self.exit_code = int(m.group(1))
                self.python = m.group(2).decode("utf-8", errors="replace")
                self.cwd = m.group(3).decode("utf-8", errors="replace")
                self.leftover = bytes(self.buf[m.end() :])
                start = i - 1 if i > 0 and self.buf[i - 1] == ord("\n") else i
                del self.buf[start:]
                return True
            i = self.buf.find(self._tag, i + 1)
        self._scan = max(0, len(self.buf) - _MAX_MARKER_BYTES)
        return False

    def hold_back_partial_marker(self) -> bytes:
        """Remove and return a marker that may be only half read (kept for the next call)."""
        i = self.buf.rfind(b"\n", max(0, len(self.buf) - _MAX_MARKER_BYTES))
        rest = bytes(self.buf[i + 1 :])
        tag = self._tag
        if i < 0 or not rest or not (tag.startswith(rest) or rest.startswith(tag)):
            return b""
        del self.buf[i:]
        return b"\n" + rest

    def text(self) -> str:
        if self.head is None:
            return truncate_middle(decode_output(bytes(self.buf)))
        if len(self.buf) > _TAIL_BYTES:
            self._drop(len(self.buf) - _TAIL_BYTES, count=True)
        # Already short: decoding never makes more characters than there were bytes.
        tail = decode_output(bytes(self.buf))
        return decode_output(self.head) + TRUNCATION_MARKER + tail
