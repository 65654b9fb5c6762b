"""The redactor: a secret is hidden as written and in the forms a command prints it in."""

from __future__ import annotations

import base64
import codecs
import textwrap
from pathlib import Path

import msgspec
import pytest

from state_store.events import UserMessage
from state_store.files import Redactor, holds_redaction
from state_store.store import RunStore, read_events

KEY = "fake-live-Redaction-Test-0123456789abcd"  # 39 bytes: every offset has full groups
# As long as real provider keys: `base64` wraps its encoding over two lines.
LONG_KEY = "sk-ant-api03-" + "Zx9Q" * 20


def encodings(secret: str, prefix: bytes = b"") -> dict[str, tuple[str, str]]:
    """What common commands print for `prefix + secret` (prefix: the bytes before the key
    in the encoded stream, e.g. `export K=`), each with the part that encodes the key alone
    (which must vanish)."""
    raw = prefix + secret.encode()
    b64, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    inside = slice(-(-len(prefix) // 3) * 4, len(raw) // 3 * 4)
    key_hex = secret.encode().hex()
    return {
        "base64 -w0": (b64, b64[inside]),
        "base64 (76 columns)": (base64.encodebytes(raw).decode(), b64[inside]),
        "openssl base64 (64 columns)": ("\n".join(textwrap.wrap(b64, 64)), b64[inside]),
        "basenc --base64url": (url, url[inside]),
        "xxd -p (60 columns)": ("\n".join(textwrap.wrap(raw.hex(), 60)), key_hex),
        "hex upper": (raw.hex().upper(), key_hex.upper()),
        "rev": (raw.decode()[::-1], secret[::-1]),
        "cat": (raw.decode(), secret),
    }


@pytest.mark.parametrize("prefix", [b"", b"K", b"K=", b"export KEY="])
@pytest.mark.parametrize("secret", [KEY, LONG_KEY])
def test_every_encoding_at_every_offset_is_hidden(secret: str, prefix: bytes) -> None:
    redactor = Redactor([secret])
    for command, (printed, encoded_key) in encodings(secret, prefix).items():
        shown = redactor.text(f"$ {command}\n{printed}\n")
        assert "****" in shown, command
        assert encoded_key not in shown.replace("\n", ""), command


def test_bytes_and_text_are_redacted_alike() -> None:
    redactor = Redactor([KEY])
    printed = "\n".join(printed for printed, _ in encodings(KEY).values())
    assert redactor.bytes(printed.encode()) == redactor.text(printed).encode()


def test_forms_inside_json_strings_are_hidden() -> None:
    """The store redacts encoded events: a wrapped base64 or a key with a quote or a
    backslash appears escaped there."""
    odd = 'pa"ss\\word-0123456789'
    redactor = Redactor([LONG_KEY, odd])
    event = {"content": base64.encodebytes(LONG_KEY.encode()).decode() + f" and {odd}"}
    line = msgspec.json.encode(event)
    redacted = redactor.bytes(line)
    decoded = msgspec.json.decode(redacted)["content"]
    assert odd not in decoded and "****" in decoded
    assert base64.b64encode(LONG_KEY.encode()).decode()[4:60] not in decoded.replace("\n", "")


def test_short_secrets_are_hidden_as_written_only() -> None:
    """Encoded forms of a short value would match ordinary ids (a 5-byte key's hex is 10
    digits of some commit hash)."""
    redactor = Redactor(["k3y!x", "abc"])
    assert redactor.text("k3y!x 6b3379217 x!y3k") == "**** 6b3379217 x!y3k"
    assert redactor.text("abc") == "abc"  # too short to be a key


def test_unrelated_text_is_untouched() -> None:
    text = "hello world\n" + base64.b64encode(b"some other value, 0123456789").decode()
    assert Redactor([KEY]).text(text) == text


def test_rot13_is_not_caught() -> None:
    """Documented limit: a deliberate transformation is not redaction's job."""
    assert Redactor([KEY]).text(codecs.encode(KEY, "rot13")) == codecs.encode(KEY, "rot13")


def test_holds_redaction() -> None:
    assert holds_redaction("curl -H 'Authorization: ****' x")
    assert not holds_redaction("ls *.py **/x")


def test_the_store_never_writes_an_encoded_key(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, "r1", secrets=[LONG_KEY])
    forms = encodings(LONG_KEY, b"x").values()
    for printed, _ in forms:
        store.append(UserMessage, content=printed)
    store.close()
    saved = (tmp_path / "r1" / "events.jsonl").read_bytes().replace(b"\\n", b"")
    for _, encoded_key in forms:
        assert encoded_key.encode() not in saved
    assert all("****" in e.content for e in read_events(tmp_path / "r1" / "events.jsonl")[2:])
