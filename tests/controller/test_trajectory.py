"""OpenHands trajectories: export shape, reading ours and OpenHands' files back, saving."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import msgspec
import pytest

from controller.trajectory import (
    CmdOutputExtras,
    TrajectoryError,
    command_text,
    encode_trajectory,
    export_trajectory,
    from_trajectory,
    recording_from_events,
    save_trajectory,
    split_command_text,
)
from controller.trajectory.command_text import comparable_command_text
from state_store.events import (
    Action,
    AnyEvent,
    Event,
    ExecuteBash,
    Finish,
    LogHeader,
    ModelResponse,
    Observation,
    RunEnded,
    RunStarted,
    StrReplaceEditor,
    Think,
    ToolArgs,
    ToolCall,
    Transition,
    UserMessage,
)
from state_store.store import StoreError

WORKDIR = "/home/me/project"
HI = f"{WORKDIR}/hi.sh"


class LogBuilder:
    """Builds a plausible event log: sequence numbers and times filled in."""

    def __init__(self) -> None:
        self.events: list[AnyEvent] = []

    def add(self, event_type: type[Event], **fields: Any) -> Any:
        event = event_type(
            seq=len(self.events) + 1, ts=1_700_000_000.0 + len(self.events), **fields
        )
        self.events.append(event)  # type: ignore[arg-type]
        return event

    def step(
        self, step: int, args: ToolArgs, content: str, *, text: str | None = None, **obs: Any
    ) -> None:
        call_id = f"call_{step}"
        name = args.__struct_config__.tag
        arguments = msgspec.json.encode(args).decode()
        call = ToolCall(id=call_id, name=name, arguments=arguments)
        self.add(ModelResponse, step=step, model="m", content=text, tool_calls=[call])
        self.add(Transition, source="planning", dest="acting", trigger="act", reason="tool")
        self.add(Action, step=step, tool_call_id=call_id, args=args)
        self.add(Observation, step=step, tool_call_id=call_id, tool=name, content=content, **obs)


def sample_run() -> list[AnyEvent]:
    log = LogBuilder()
    log.add(LogHeader, schema=1, run_id="r1", writer="runhands")
    log.add(RunStarted, run_id="r1", task="make hi", workdir=WORKDIR, runtime="local", model="m")
    log.add(UserMessage, content="make hi")
    create = StrReplaceEditor(command="create", path=HI, file_text="echo hi\n")
    log.step(1, create, f"File created successfully at: {HI}", text="Creating it.")
    done = (
        f"[The command completed with exit code 0.]\n[Current working directory: {WORKDIR}]\n"
        "[Command finished with exit code 0]"
    )
    log.step(2, ExecuteBash(command="chmod +x hi.sh"), done, exit_code=0)
    log.step(3, ExecuteBash(command="./hi.sh", timeout=30), "hi\n" + done, exit_code=0)
    log.step(4, StrReplaceEditor(command="view", path=HI), "file view", error=False)
    log.step(5, StrReplaceEditor(command="view", path="/nope"), "does not exist", error=True)
    log.step(6, Think(thought="all good"), "Your thought has been logged.")
    log.step(7, Finish(message="hi.sh prints hi"), "The task is marked as finished.")
    log.add(
        RunEnded,
        run_id="r1",
        state="finished",
        reason="finished",
        message="hi.sh prints hi",
        steps=7,
        prompt_tokens=0,
        completion_tokens=0,
        cost=0.0,
        exit_code=0,
        duration_s=1.0,
    )
    return log.events


def exported(events: list[AnyEvent]) -> list[dict[str, Any]]:
    return json.loads(encode_trajectory(events))


def test_the_task_comes_first_as_a_user_message_with_our_workdir() -> None:
    first = exported(sample_run())[0]
    assert first["action"] == "message" and first["source"] == "user"
    assert first["args"] == {"content": "make hi", "image_urls": None, "wait_for_response": False}
    assert first["runhands"] == {"run_id": "r1", "workdir": WORKDIR}


def test_actions_and_observations_have_openhands_names_and_fields() -> None:
    trajectory = exported(sample_run())
    names = [e.get("action") or e.get("observation") for e in trajectory]
    assert names == [
        "message",
        "edit",
        "edit",
        "run",
        "run",
        "run",
        "run",
        "read",
        "read",
        "read",
        "error",
        "think",
        "think",
        "finish",  # OpenHands records no observation for finish
    ]
    edit, run, run_obs = trajectory[1], trajectory[5], trajectory[6]
    assert edit["args"]["command"] == "create" and edit["args"]["thought"] == "Creating it."
    assert edit["tool_call_metadata"]["function_name"] == "str_replace_editor"
    assert run["args"]["command"] == "./hi.sh" and run["args"]["blocking"] is True
    assert run["timeout"] == 30
    assert run_obs["cause"] == run["id"]
    assert run_obs["content"] == "hi"
    extras = run_obs["extras"]
    assert (extras["command"], extras["exit_code"]) == ("./hi.sh", 0)
    assert extras["metadata"]["working_dir"] == WORKDIR
    assert extras["metadata"]["suffix"] == "\n[The command completed with exit code 0.]"
    assert run_obs["success"] is True
    assert trajectory[-1]["args"]["final_thought"] == "hi.sh prints hi"
    assert "timeout" not in trajectory[3]  # no hard timeout: no top-level timeout


def test_a_text_answer_is_an_agent_message_and_a_malformed_call_an_error() -> None:
    log = LogBuilder()
    log.add(UserMessage, content="task")
    log.add(ModelResponse, step=1, model="m", content="I am done, I think.")
    bad = ToolCall(id="c9", name="run_shell", arguments="{}")
    log.add(ModelResponse, step=2, model="m", content=None, tool_calls=[bad])
    log.add(
        Observation, step=2, tool_call_id="c9", tool="run_shell", content="Unknown tool", error=True
    )
    message, error = exported(log.events)[1:]
    assert (message["source"], message["action"]) == ("agent", "message")
    assert message["args"]["content"] == "I am done, I think."
    assert error["observation"] == "error" and "cause" not in error
    assert error["tool_call_metadata"]["function_name"] == "run_shell"


CONTINUED = "[Below is the output of the previous command.]\n"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "hi\n[The command completed with exit code 0.]\n[Current working directory: /w]\n"
            "[Python interpreter: /usr/bin/python]\n[Command finished with exit code 0]",
            0,
        ),
        (
            "[The command completed with exit code 2.]\n[Current working directory: /w]\n"
            "[Command finished with exit code 2]",
            2,
        ),
        ("partial\n[The command has no new output after 10 seconds. You may wait...]", -1),
        (CONTINUED + "2\n[The command timed out after 2.5 seconds. You may wait...]", -1),
        (CONTINUED + '\n[Your command "ls" is NOT executed. The previous command is ...]', -1),
        (
            "[The command completed with exit code 130. CTRL+C was sent.]\n"
            "[Current working directory: /w]\n[Command finished with exit code 130]",
            130,
        ),
        (
            "\nleading blank line\n[The command completed with exit code 0.]\n"
            "[Command finished with exit code 0]",
            0,
        ),
        ("ERROR: No previous running command to retrieve logs from.", -1),
        ("no metadata lines at all", -1),
        ("", -1),
    ],
)
def test_command_text_is_split_and_joined_back_exactly(text: str, code: int) -> None:
    content, metadata = split_command_text(text, code)
    assert command_text(content, CmdOutputExtras(metadata=metadata)) == text


def test_command_text_is_split_into_openhands_fields() -> None:
    """As OpenHands' CmdOutputMetadata holds them (openhands/events/observation/commands.py)."""
    running = CONTINUED + "2\n[The command timed out after 2.5 seconds. You may wait...]"
    content, metadata = split_command_text(running, None)
    assert (content, metadata.prefix, metadata.exit_code) == ("2", CONTINUED, -1)
    assert metadata.suffix == "\n[The command timed out after 2.5 seconds. You may wait...]"
    done = (
        "hi\n[The command completed with exit code 0.]\n[Current working directory: /w]\n"
        "[Python interpreter: /p/python]\n[Command finished with exit code 0]"
    )
    content, metadata = split_command_text(done, 0)
    assert (content, metadata.suffix) == ("hi", "\n[The command completed with exit code 0.]")
    assert (metadata.working_dir, metadata.py_interpreter_path) == ("/w", "/p/python")


def test_replays_compare_what_notes_mean_not_their_words() -> None:
    """OpenHands' older template (tests/runtime/trajs/basic_gui_mode.json), its current one
    and our older notes compare equal; the output and exit code still count."""
    old_openhands = (
        "Serving\n[The command has no new output after 30 seconds. You may wait longer to "
        "see additional output by sending empty command '', send other commands to interact "
        "with the current process, or send keys to interrupt/kill the command.]"
    )
    ours_before = (
        "Serving\n[The command has no new output after 30 seconds. You may wait longer ... "
        'with is_input=true, send keys ("C-c", "C-z", "C-d") to interrupt/kill it.]\n'
        "[Current working directory: /w]"
    )
    now = "Serving\n[The command has no new output after 30 seconds. You may wait ...]"
    assert comparable_command_text(old_openhands) == comparable_command_text(now)
    assert comparable_command_text(ours_before) == comparable_command_text(now)
    killed = "x\n[The command was killed after 1 seconds (timeout). The output above ...]"
    timed_out = "x\n[The command timed out after 1.0 seconds. You may wait ...]"
    assert comparable_command_text(killed) == comparable_command_text(timed_out)
    done = "x\n[The command completed with exit code 0.]\n[Current working directory: /w]"
    assert comparable_command_text(done + "\n[Command finished with exit code 0]") == (
        comparable_command_text(done)
    )
    assert comparable_command_text(done) != comparable_command_text(done.replace("0.]", "1.]"))
    assert comparable_command_text("y" + done[1:]) != comparable_command_text(done)


def test_our_trajectory_reads_back_as_the_recorded_steps(tmp_path: Path) -> None:
    events = sample_run()
    path = tmp_path / "t.json"
    path.write_bytes(encode_trajectory(events))
    recording = from_trajectory(path)
    direct = recording_from_events(events)
    assert (recording.task, recording.workdir) == ("make hi", WORKDIR)
    assert [s.args for s in recording.steps] == [s.args for s in direct.steps]
    assert [s.observation for s in recording.steps[:-1]] == [
        s.observation for s in direct.steps[:-1]
    ]
    assert recording.steps[-1].observation is None  # finish: none in the file
    assert recording.notes == []


def openhands_file(tmp_path: Path, events: list[dict[str, Any]], wrap: bool = False) -> Path:
    path = tmp_path / "openhands.json"
    path.write_text(json.dumps({"trajectory": events} if wrap else events))
    return path


OPENHANDS_EVENTS: list[dict[str, Any]] = [
    {
        "id": 0,
        "source": "user",
        "message": "print the date",
        "action": "message",
        "args": {"content": "print the date", "image_urls": None, "wait_for_response": False},
        "timeout": 120,
    },
    {"id": 1, "source": "agent", "action": "system", "args": {"content": "You are..."}},
    {
        "id": 3,
        "source": "agent",
        "message": "Running command: date",
        "action": "run",
        "args": {"command": "date", "is_input": False, "thought": "", "blocking": False},
        "timeout": 120,
        "tool_call_metadata": {"function_name": "execute_bash", "tool_call_id": "t1"},
    },
    {
        "id": 4,
        "source": "agent",
        "cause": 3,
        "observation": "run",
        "content": "Tue Oct 14 10:22:01 UTC 2025",
        "extras": {
            "command": "date",
            "metadata": {
                "exit_code": 0,
                "pid": 12,
                "working_dir": "/workspace",
                "py_interpreter_path": "/usr/bin/python",
                "prefix": "",
                "suffix": "\n[The command completed with exit code 0.]",
            },
            "hidden": False,
        },
        "success": True,
    },
    {
        "id": 5,
        "source": "agent",
        "message": "",
        "action": "edit",
        "args": {"path": "/workspace/a.txt", "content": "", "start": 1, "end": -1},
        "tool_call_metadata": {
            "function_name": "str_replace_editor",
            "tool_call_id": "t2",
            "model_response": {
                "choices": [
                    {
                        "message": {
                            "tool_calls": [
                                {
                                    "id": "t2",
                                    "function": {
                                        "name": "str_replace_editor",
                                        "arguments": json.dumps(
                                            {
                                                "command": "create",
                                                "path": "/workspace/a.txt",
                                                "file_text": "a\n",
                                            }
                                        ),
                                    },
                                }
                            ]
                        }
                    }
                ]
            },
        },
    },
    {
        "id": 6,
        "source": "agent",
        "cause": 5,
        "observation": "edit",
        "content": "--- diff",
        "extras": {"formatted_output_and_error": "File created successfully at: /workspace/a.txt"},
    },
    {"id": 7, "source": "agent", "action": "browse", "args": {"url": "http://x"}},
    {"id": 8, "source": "agent", "action": "read", "args": {"path": "/workspace/a.txt"}},
    {
        "id": 9,
        "source": "agent",
        "action": "run",
        "args": {"command": "sleep 100", "blocking": True},
        "timeout": 5,
    },
    {"id": 10, "source": "agent", "action": "finish", "args": {"outputs": {}, "thought": "done"}},
]


def test_an_openhands_trajectory_is_read_into_typed_steps(tmp_path: Path) -> None:
    recording = from_trajectory(openhands_file(tmp_path, OPENHANDS_EVENTS))
    assert recording.task == "print the date"
    assert recording.workdir is None
    assert [s.args for s in recording.steps] == [
        ExecuteBash(command="date"),  # OpenHands' default timeout is not a hard limit
        StrReplaceEditor(command="create", path="/workspace/a.txt", file_text="a\n"),
        StrReplaceEditor(command="view", path="/workspace/a.txt"),
        ExecuteBash(command="sleep 100", timeout=5),
        Finish(message="done"),
    ]
    date, create, view = (s.observation for s in recording.steps[:3])
    assert date == (
        "Tue Oct 14 10:22:01 UTC 2025\n[The command completed with exit code 0.]\n"
        "[Current working directory: /workspace]\n[Python interpreter: /usr/bin/python]\n"
        "[Command finished with exit code 0]"
    )
    assert create == "File created successfully at: /workspace/a.txt"
    assert view is None
    assert recording.notes == ["skipped 1 `browse` action(s): runhands cannot replay them"]


def test_the_web_download_shape_and_legacy_exit_codes_are_read(tmp_path: Path) -> None:
    events = [
        OPENHANDS_EVENTS[0],
        {"id": 1, "source": "agent", "action": "run", "args": {"command": "ls"}},
        {
            "id": 2,
            "source": "agent",
            "cause": 1,
            "observation": "run",
            "content": "a.txt",
            "extras": {"command": "ls", "command_id": -1, "exit_code": 0},
        },
    ]
    recording = from_trajectory(openhands_file(tmp_path, events, wrap=True))
    assert recording.steps[0].observation == (
        "a.txt\n[The command completed with exit code 0.]\n[Command finished with exit code 0]"
    )


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"events": []}', '[{"id": "x"}]', '[{"args": 3}]'],
)
def test_a_file_that_is_not_a_trajectory_is_a_value_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TrajectoryError, match="not an OpenHands trajectory"):
        from_trajectory(path)


def test_a_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match="cannot read"):
        from_trajectory(tmp_path / "missing.json")


def test_an_action_with_bad_arguments_is_skipped_with_a_note(tmp_path: Path) -> None:
    bad_edit = {
        "id": 1,
        "source": "agent",
        "action": "edit",
        "args": {"command": "rm", "path": "/x"},
    }
    recording = from_trajectory(openhands_file(tmp_path, [OPENHANDS_EVENTS[0], bad_edit]))
    assert recording.steps == []
    assert recording.notes == ["skipped 1 `edit` action(s): runhands cannot replay them"]


def test_save_trajectory_writes_a_private_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out" / "t.json"
    written = save_trajectory(str(target), sample_run())
    assert written == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())[0]["args"]["content"] == "make hi"
    assert [p.name for p in target.parent.iterdir()] == ["t.json"]  # no temporary file left


def test_save_trajectory_into_a_directory_uses_the_run_id(tmp_path: Path) -> None:
    written = save_trajectory(str(tmp_path), sample_run(), secrets=["hi.sh prints"])
    assert written == tmp_path / "r1.json"
    assert "hi.sh prints" not in written.read_text() and "**** hi" in written.read_text()


def test_export_of_an_unknown_run_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run named 'nope'"):
        export_trajectory(tmp_path, "nope", None)
    with pytest.raises(StoreError, match="invalid run name"):
        export_trajectory(tmp_path, "../x", None)


def test_recording_from_events_pairs_each_action_with_its_observation() -> None:
    recording = recording_from_events(sample_run())
    assert recording.workdir == WORKDIR
    assert len(recording.steps) == 7
    assert recording.steps[2].observation is not None
    assert recording.steps[2].observation.startswith("hi\n")
    assert recording.steps[4].observation == "does not exist"


def test_save_trajectory_where_it_cannot_write_is_a_value_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(TrajectoryError, match="cannot write"):
        save_trajectory(str(tmp_path / "file" / "t.json"), sample_run())
