"""A whole run replayed offline from a VCR cassette (pytest-recording).

The cassette was recorded once with `--record-mode=once` against the scripted model server
(started here only when recording); CI replays it with `--record-mode=none`, so no model
server and no network are involved. Authorization headers are filtered out at recording.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller.cli import main
from state_store.store import read_snapshot
from tests.conftest import REPO, TEST_API_KEY
from tests.scripted_model import ScriptedModel, bash, finish

CASSETTE = REPO / "cassettes" / "seed_task_hi.yaml"
RECORDING_PORT = 18765  # fixed so replayed requests match the recorded host and port
HI_SCRIPT = "printf '#!/usr/bin/env bash\\necho hi\\n' > hi.sh && chmod +x hi.sh && ./hi.sh"


@pytest.fixture(scope="module")
def vcr_config() -> dict:
    return {
        "filter_headers": ["authorization", "x-api-key", "api-key", "openai-organization"],
        "decode_compressed_response": True,
        # The body names the temporary workdir, so requests match on where they go;
        # recorded answers are played back in order.
        "match_on": ["method", "scheme", "host", "port", "path"],
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTE.parent)


@pytest.mark.default_cassette(CASSETTE.name)
@pytest.mark.vcr
def test_seed_task_replays_offline_from_the_cassette(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.chdir(workspace)
    for name, value in {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / ".config"),
        "LLM_MODEL": "openai/gpt-4o-mini",
        "LLM_API_KEY": TEST_API_KEY,
        "LLM_BASE_URL": f"http://127.0.0.1:{RECORDING_PORT}/v1",
        "LLM_NUM_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)

    server = None
    if not CASSETTE.exists():  # recording: the scripted model stands in for the provider
        server = ScriptedModel([bash(HI_SCRIPT), finish("hi.sh prints hi")], RECORDING_PORT)
        server.__enter__()
    try:
        code = main(["run", "-n", "cassette", "-t", "write a bash script that prints hi"])
    finally:
        if server is not None:
            server.__exit__(None, None, None)

    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip() == "hi.sh prints hi"
    hi = subprocess.run(["bash", str(workspace / "hi.sh")], capture_output=True, text=True)
    assert hi.stdout == "hi\n"
    counters = read_snapshot(tmp_path / ".openhands-state" / "cassette").counters
    assert counters.steps == 2
    assert (counters.prompt_tokens, counters.completion_tokens) == (200, 40)
    # Priced from litellm's bundled cost map (gpt-4o-mini is in it): no override set.
    assert 0 < counters.cost < 0.001
    assert TEST_API_KEY not in CASSETTE.read_text()

    # Deterministic replay: the cassette's run, re-executed in a fresh directory without the
    # model, gives the same observations.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    capsys.readouterr()
    assert main(["replay", "cassette", "-d", str(fresh)]) == 0, capsys.readouterr().err
    assert "replay matched: 2/2" in capsys.readouterr().err
