"""Replay: masking volatile output, finding the recording, re-running and comparing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.config import LoadedConfig, load_config
from controller.errors import UserError
from controller.run.recordings import load_recording, relocate
from controller.run.replay import mask_volatile, replay
from controller.trajectory import (
    RecordedMessage,
    encode_trajectory,
    from_trajectory,
    recording_from_events,
)
from state_store.events import (
    ExecuteBash,
    ModelResponse,
    RunStarted,
    StrReplaceEditor,
    Think,
    ToolArgs,
    UserMessage,
)
from tests.conftest import REPO
from tests.controller.test_trajectory import WORKDIR, LogBuilder, sample_run

WORK = ["/home/me/project"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("/home/me/project/hi.sh", "<workdir>/hi.sh"),
        ("cd /home/me/project && ls", "cd <workdir> && ls"),
        ("/home/me/project2/x", "/home/me/project2/x"),  # another directory
        ("wrote /tmp/tmpa1b2c3/out.txt: ok", "wrote <tmp>: ok"),
        ("Tue Oct 14 10:22:01 UTC 2025", "<datetime>"),
        ("at 2025-01-27T22:44:56.900854+00:00", "at <datetime>"),
        ("2025-01-27 22:44:56,123 INFO", "<datetime> INFO"),
        ("released 2024-03-01", "released <date>"),
        ("-rw-r--r-- 1 me me 20 Jan  6 12:34 hi.sh", "-rw-r--r-- 1 me me 20 <date> hi.sh"),
        ("took 12:01:59", "took <time>"),
        ("===== 3 passed in 0.12s =====", "===== 3 passed in <duration> ====="),
        ("real\t0m0.003s", "real\t<duration>"),
        ("done in 15 ms, 2 seconds total", "done in <duration>, <duration> total"),
        ("[1] 12345", "[<job>] <pid>"),
        ("[2]+  Done                    sleep 1", "[<job>]+  Done                    sleep 1"),
        ("server pid 4242 started", "server pid <pid> started"),
        ("<object at 0x7f3a2b1c4d50>", "<object at <addr>>"),
        ("[main 1a2b3c4] first commit", "[main <hex>] first commit"),
        ("id 0b1f3c2e-4d5a-4b6c-8d7e-9f0a1b2c3d4e", "id <uuid>"),
        ("mtime 1700000000.25", "mtime <epoch>"),
        (
            "hi\n[The command completed with exit code 0.]",
            "hi\n[The command completed with exit code 0.]",
        ),
        ("decade facade 1234567 cafe", "decade facade 1234567 cafe"),  # words and plain numbers
    ],
)
def test_mask_volatile(text: str, masked: str) -> None:
    assert mask_volatile(text, WORK) == masked


def test_both_working_directories_become_the_same_placeholder() -> None:
    recorded = mask_volatile("File created at /tmp/rec/w/hi.sh", ["/tmp/rec/w", "/srv/new"])
    replayed = mask_volatile("File created at /srv/new/hi.sh", ["/tmp/rec/w", "/srv/new"])
    assert recorded == replayed == "File created at <workdir>/hi.sh"


def test_relocate_moves_paths_and_commands_to_the_replay_directory() -> None:
    edit = StrReplaceEditor(command="create", path="/workspace/a.sh", file_text="cd /workspace\n")
    moved = relocate(edit, "/workspace", "/srv/new")
    assert (moved.path, moved.file_text) == ("/srv/new/a.sh", "cd /srv/new\n")
    command = ExecuteBash(command="cat /workspace/a /workspace2/b", timeout=3)
    assert relocate(command, "/workspace/", "/srv/new") == ExecuteBash(
        command="cat /srv/new/a /workspace2/b", timeout=3
    )
    assert relocate(command, None, "/srv/new") is command
    assert relocate(command, "/", "/srv/new") is command


def config_for(tmp_path: Path, workdir: Path) -> LoadedConfig:
    flags = {"core.workspace_base": str(workdir), "core.file_store_path": str(tmp_path / "state")}
    return load_config(
        flags=flags, environ={}, cwd=str(tmp_path), user_config_dir=str(tmp_path / "cfg")
    )


def test_load_recording_accepts_a_trajectory_file_and_names_missing_sources(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(encode_trajectory(sample_run()))
    assert len(load_recording(str(path), tmp_path).steps) == 7
    with pytest.raises(UserError, match="no run named 'nope'"):
        load_recording("nope", tmp_path)
    with pytest.raises(UserError, match="not a saved run"):
        load_recording(str(tmp_path), tmp_path)


def write_trajectory(tmp_path: Path, *steps: tuple[ToolArgs, str]) -> Path:
    """A trajectory recorded in WORKDIR from (args, observation) pairs."""
    log = LogBuilder()
    log.add(RunStarted, run_id="r", task="t", workdir=WORKDIR, runtime="local", model="m")
    log.add(UserMessage, content="t")
    for number, (args, content) in enumerate(steps, start=1):
        log.step(number, args, content)
    path = tmp_path / "t.json"
    path.write_bytes(encode_trajectory(log.events))
    return path


def done(output: str = "") -> str:
    lines = [output, "[The command completed with exit code 0.]"]
    lines.append(f"[Current working directory: {WORKDIR}]")
    return "\n".join(line for line in lines if line)


def test_replay_matches_a_faithful_recording(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    source = write_trajectory(
        tmp_path,
        (StrReplaceEditor(command="create", path=f"{WORKDIR}/a.txt", file_text="one\n"), ""),
        (ExecuteBash(command="cat a.txt; date"), done("one\nMon Jan  1 00:00:00 UTC 2024")),
        (Think(thought="fine"), "anything"),
    )
    code = replay(str(source), config_for(tmp_path, work), as_json=True)
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1  # the editor's observation was recorded as "" on purpose
    assert lines[0]["same"] is False and lines[-1]["diverged_at"] == 1
    assert "[1/3] edit create" in err and "DIFFERENT" in err
    assert (
        "--- recorded (step 1)" in err and "+File created successfully at: <workdir>/a.txt" in err
    )


def test_replay_runs_every_step_and_exits_0_when_all_match(tmp_path: Path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    created = f"File created successfully at: {WORKDIR}/a.txt"
    source = write_trajectory(
        tmp_path,
        (StrReplaceEditor(command="create", path=f"{WORKDIR}/a.txt", file_text="one\n"), created),
        (ExecuteBash(command="cat a.txt; date"), done("one\nMon Jan  1 00:00:00 UTC 2024")),
        (ExecuteBash(command=f"cat {WORKDIR}/a.txt"), done("one")),
        (Think(thought="fine"), "anything"),
    )
    assert replay(str(source), config_for(tmp_path, work), as_json=False) == 0
    err = capsys.readouterr().err
    assert "[4/4] think: fine ... same" in err and "replay matched: 4/4" in err
    assert (work / "a.txt").read_text() == "one\n"


def test_replay_of_an_unusable_workdir_is_a_value_error(tmp_path: Path) -> None:
    source = write_trajectory(tmp_path, (ExecuteBash(command="true"), done()))
    with pytest.raises(UserError, match="does not exist"):
        replay(str(source), config_for(tmp_path, tmp_path / "missing"), as_json=False)


def test_replay_never_imports_litellm(tmp_path: Path) -> None:
    source = write_trajectory(tmp_path, (ExecuteBash(command="true"), done()))
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import sys; from controller.cli import main; "
        f"rc = main(['replay', {str(source)!r}, '-d', {str(work)!r}, "
        f"'--state-dir', {str(tmp_path)!r}]); "
        "print(rc, 'litellm' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", "False"], result.stderr


OPENHANDS = REPO / "tests" / "data" / "openhands_trajectories"


def turn_kinds(turns: list) -> list[tuple[str, str]]:
    return [
        (t.source, t.content[:12])
        if isinstance(t, RecordedMessage)
        else ("call", t.args.__struct_config__.tag)
        for t in turns
    ]


def test_an_openhands_trajectory_keeps_its_messages_in_order() -> None:
    recording = from_trajectory(OPENHANDS / "basic_interactions.json")
    assert recording.task == "what's 1+1?"
    assert turn_kinds(recording.turns) == [
        ("agent", "1 + 1 equals"),
        ("user", "No, I mean b"),
        ("agent", "Goldbach's c"),
        ("user", "Finish pleas"),
        ("call", "finish"),
    ]
    assert [type(s.args).__name__ for s in recording.steps] == ["Finish"]
    gui = from_trajectory(OPENHANDS / "basic_gui_mode.json")  # environment events left out
    assert gui.task.startswith("I want to create a VueJS app")
    assert [k[0] for k in turn_kinds(gui.turns)] == ["call"] * 4 + ["agent"]


def test_a_saved_run_keeps_its_instructions_and_text_answers() -> None:
    log = LogBuilder()
    log.add(RunStarted, run_id="r", task="", workdir=WORKDIR, runtime="local", model="m")
    log.add(UserMessage, content="t")
    log.step(1, ExecuteBash(command="ls"), "a")
    log.add(ModelResponse, step=2, model="m", content="all listed")
    log.add(UserMessage, content="Please continue", origin="auto_continue")
    log.add(UserMessage, content="now b", origin="instruction")
    log.step(3, Think(thought="b"), "ok")
    recording = recording_from_events(log.events)
    assert recording.task == "t"
    assert turn_kinds(recording.turns) == [
        ("call", "execute_bash"),
        ("agent", "all listed"),
        ("user", "now b"),
        ("call", "think"),
    ]
    assert [s.observation for s in recording.steps] == ["a", "ok"]
