from __future__ import annotations

import json

from sandbox.output import (
    TRUNCATION_MARKER,
    decode_output,
    for_terminal,
    json_for_terminal,
    truncate_middle,
)


def test_short_text_is_unchanged() -> None:
    assert truncate_middle("abc", limit=10) == "abc"
    assert truncate_middle("x" * 10, limit=10) == "x" * 10


def test_truncation_keeps_head_and_tail_with_marker() -> None:
    text = "HEAD" + "m" * 100_000 + "TAIL"
    out = truncate_middle(text, limit=1_000)
    assert out.startswith("HEAD")
    assert out.endswith("TAIL")
    assert "\n[... Observation truncated due to length ...]\n" in out
    assert len(out) == 1_000 + len(TRUNCATION_MARKER)


def test_default_limit_is_30000() -> None:
    head, marker, tail = truncate_middle("a" * 40_000).partition(TRUNCATION_MARKER)
    assert marker
    assert len(head) + len(tail) == 30_000


def test_cmd_output_truncation_as_openhands() -> None:
    """OpenHands tests/unit/events/test_observation_serialization.py::
    test_cmd_output_truncation: 60,000 `a` keep 15,000 at each end around its marker."""
    out = truncate_middle("a" * 60_000)
    assert "[... Observation truncated due to length ...]" in out
    assert out.startswith("a" * 15_000) and out.endswith("a" * 15_000)
    assert out == "a" * 15_000 + "\n[... Observation truncated due to length ...]\n" + "a" * 15_000


def test_decode_replaces_invalid_utf8() -> None:
    assert decode_output(b"ok \xff\xfe caf\xc3\xa9") == "ok \ufffd\ufffd café"


def test_decode_strips_ansi_and_control_bytes() -> None:
    raw = b"\x1b[1;31mred\x1b[0m \x1b]0;title\x07plain\x00\x07 \x1b(Bdone\ttab"
    assert decode_output(raw) == "red plain done\ttab"


def test_decode_renders_carriage_returns_like_a_terminal() -> None:
    assert decode_output(b"a\r\nb\r\n") == "a\nb\n"
    assert decode_output(b"progress 10%\rprogress 99%\rprogress 100%\nnext") == (
        "progress 100%\nnext"
    )
    # A shorter rewrite only overwrites the start, as on a screen.
    assert decode_output(b"abcdef\rXY\n") == "XYcdef\n"


def test_decode_of_random_bytes_is_a_clean_string() -> None:
    out = decode_output(bytes(range(256)) * 4)
    assert isinstance(out, str)
    assert "\x00" not in out
    assert "\x1b" not in out


HOSTILE = (
    "title\x1b]0;pwned\x07 clip\x1b]52;c;cm0gLXJmIH4=\x07 clear\x1b[2J\x1b[H"
    " c1\x9b31m bidi\u202etxt.exe del\x7f cr\rbell\x07"
)


def test_for_terminal_shows_what_a_terminal_would_obey() -> None:
    shown = for_terminal(HOSTILE + "\n\tkept")
    assert shown == (
        "title\\x1b]0;pwned\\x07 clip\\x1b]52;c;cm0gLXJmIH4=\\x07 clear\\x1b[2J\\x1b[H"
        " c1\\x9b31m bidi\\u202etxt.exe del\\x7f cr\\x0dbell\\x07\n\tkept"
    )
    assert for_terminal("plain text, é, 中文") == "plain text, é, 中文"


def test_json_for_terminal_is_the_same_json() -> None:
    line = json.dumps({"content": HOSTILE}, ensure_ascii=False)
    safe = json_for_terminal(line)
    assert json.loads(safe) == {"content": HOSTILE}
    assert not any(c in safe for c in "\x1b\x07\x9b\x7f\u202e\r")
