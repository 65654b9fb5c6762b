"""Writing files so that a crash, a full disk or a short write never leaves half a file:
the one atomic write and the one redactor of the project."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import AnyStr, Generic, NamedTuple

import msgspec

REDACTED = "****"
# Shorter values would redact ordinary words; no real key is that short.
_MIN_SECRET_LEN = 4
# Encoded forms are only derived from secrets this long, and kept when this long: a short
# base64 or hex fragment would match unrelated ids in ordinary output.
_MIN_VARIANT_LEN = 8
_URLSAFE = str.maketrans("+/", "-_")
# Encoders wrap long output (`base64` at 76 columns, `openssl base64` 64, `xxd -p` 60): a
# block of such lines, their breaks raw or JSON-escaped, is searched joined, wherever the
# breaks fell. A block starts where a run of its alphabet starts (or after an escaped
# break), so a long unwrapped run is scanned once, not once per position.
_ALPHABET = "A-Za-z0-9+/=_-"
_BLOCK = rf"(?:(?<![{_ALPHABET}])|(?<=\\n))(?:[{_ALPHABET}]{{40,}}+(?:\n|\\n))++[{_ALPHABET}]*+"
_BREAK = r"\n|\\n"
# Quick tests for a break after 40 characters of the alphabet, raw or escaped: a search
# for a literal is far faster than the block pattern, which runs only when one matches.
_HINTS = [rf"{b}(?<=[{_ALPHABET}]{{40}}{b})" for b in (r"\n", r"\\n")]


class _Patterns(NamedTuple, Generic[AnyStr]):
    block: re.Pattern[AnyStr]
    brk: re.Pattern[AnyStr]
    hints: list[re.Pattern[AnyStr]]


_TEXT_PATTERNS = _Patterns(re.compile(_BLOCK), re.compile(_BREAK), [re.compile(h) for h in _HINTS])
_BYTES_PATTERNS = _Patterns(
    re.compile(_BLOCK.encode()),
    re.compile(_BREAK.encode()),
    [re.compile(h.encode()) for h in _HINTS],
)


class _Matcher(Generic[AnyStr]):
    """The search for a set of forms in one kind of data (text or bytes)."""

    def __init__(self, forms: list[AnyStr], mark: AnyStr, patterns: _Patterns[AnyStr]) -> None:
        self._forms = forms
        self._mark = mark
        self._patterns = patterns

    def redact(self, data: AnyStr) -> AnyStr:
        if not self._forms:
            return data
        data = self._replace(data)
        if not any(hint.search(data) for hint in self._patterns.hints):
            return data
        return self._patterns.block.sub(self._join, data)

    def _replace(self, data: AnyStr) -> AnyStr:
        for form in self._forms:
            if form in data:
                data = data.replace(form, self._mark)
        return data

    def _join(self, match: re.Match[AnyStr]) -> AnyStr:
        """A wrapped block, joined and redacted when it held a form (its breaks are lost)."""
        block = match.group()
        joined = self._patterns.brk.sub(self._mark[:0], block)
        redacted = self._replace(joined)
        return block if redacted == joined else redacted


class Redactor:
    """Replaces known secret values by `****` in bytes and text: each value as written, and
    the forms a command can print it in without effort (base64, standard and url-safe, at
    any byte offset, wrapped or not; hex, wrapped or not; reversed; inside a JSON string).
    A determined transformation (splitting, rot13, compression) is not caught: redaction is
    the last line of defence, keeping secrets out of the sandbox is the first."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= _MIN_SECRET_LEN:
                forms |= _forms_of(secret)
        # Longest first: a form containing another is hidden whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._text = _Matcher(ordered, REDACTED, _TEXT_PATTERNS)
        self._bytes = _Matcher([f.encode() for f in ordered], REDACTED.encode(), _BYTES_PATTERNS)

    def text(self, text: str) -> str:
        return self._text.redact(text)

    def bytes(self, data: bytes) -> bytes:
        return self._bytes.redact(data)


def holds_redaction(text: str) -> bool:
    """True when `text` holds the mark a redacted secret left (the value itself is lost)."""
    return REDACTED in text


def _forms_of(secret: str) -> set[str]:
    """The secret, its encoded forms, and each as it appears inside a JSON string."""
    forms = {secret}
    if len(secret) >= _MIN_VARIANT_LEN:
        raw = secret.encode()
        encoded = {secret[::-1], raw.hex(), raw.hex().upper(), *_base64_forms(raw)}
        forms |= {form for form in encoded if len(form) >= _MIN_VARIANT_LEN}
    return forms | {_json_escaped(form) for form in forms}


def _base64_forms(raw: bytes) -> list[str]:
    """The characters of base64 that depend on the secret alone, for the secret starting at
    each of the 3 offsets of a 3-byte group; the group that mixes in unknown neighbouring
    bytes is left out at either end."""
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode()
        stable = encoded[4 if offset else 0 : (offset + len(raw)) // 3 * 4]
        forms += [stable, stable.translate(_URLSAFE)]
    return forms


def _json_escaped(text: str) -> str:
    """The text as the project's JSON encoder writes it inside a string (quotes, backslashes,
    control characters escaped)."""
    return msgspec.json.encode(text).decode()[1:-1]


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written: a short write is continued, not ignored."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data`, all or nothing: on any failure (e.g. no space left) the
    old file is kept and the error raised."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """Make a rename or a new file in `path` survive a machine crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
