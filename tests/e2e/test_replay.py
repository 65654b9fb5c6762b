"""`runhands replay` and `runhands trajectory` end to end, with the real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, Cli
from tests.scripted_model import bash, edit, finish

pytestmark = pytest.mark.e2e


def record(cli: Cli, scripted) -> None:
    """Run `r`: write data.txt, read it, and print things that change from run to run."""
    data = str(cli.workspace / "data.txt")
    model = scripted(
        [
            edit("create", data, file_text="one\n"),
            bash("cat data.txt"),
            bash("date; mktemp; python3 -c 'print(object())'; sleep 0.1 & wait"),
            bash(f"wc -l {data}"),
            finish("data.txt written"),
        ]
    )
    result = cli.run("run", "-n", "r", "-t", "write data.txt", model=model)
    assert result.returncode == 0, result.stderr


def fresh_dir(cli: Cli, name: str = "fresh") -> Path:
    path = cli.workspace.parent / name
    path.mkdir()
    return path


def test_a_run_replays_in_an_empty_directory_without_divergence(cli: Cli, scripted) -> None:
    record(cli, scripted)
    fresh = fresh_dir(cli)
    result = cli.run("replay", "r", "-d", str(fresh))
    assert result.returncode == 0, result.stderr
    assert "DIFFERENT" not in result.stderr
    assert "[4/5]" in result.stderr and "replay matched: 5/5" in result.stderr
    assert (fresh / "data.txt").read_text() == "one\n"


def test_a_changed_workspace_stops_the_replay_at_the_divergent_step(cli: Cli, scripted) -> None:
    record(cli, scripted)
    fresh = fresh_dir(cli)
    (fresh / "data.txt").write_text("two\n")  # so `create` fails and `cat` differs
    result = cli.run("replay", "r", "-d", str(fresh), "--json")
    assert result.returncode == 1
    assert "replay diverged at step 1 of 5: edit create" in result.stderr
    assert "--- recorded (step 1)" in result.stderr and "+ERROR:" in result.stderr
    assert "File already exists" in result.stderr
    assert "[2/5]" not in result.stderr  # stopped at the first divergence
    *steps, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["same"] for s in steps] == [False]
    assert (summary["diverged_at"], summary["exit_code"]) == (1, 1)


def test_a_command_whose_output_changed_is_reported_with_a_diff(cli: Cli, scripted) -> None:
    model = scripted([bash("cat data.txt"), finish()])
    (cli.workspace / "data.txt").write_text("one\n")
    assert cli.run("run", "-n", "r", "-t", "read data.txt", model=model).returncode == 0
    fresh = fresh_dir(cli)
    (fresh / "data.txt").write_text("two\n")
    result = cli.run("replay", "r", "-d", str(fresh))
    assert result.returncode == 1
    assert "[1/2] $ cat data.txt ... DIFFERENT" in result.stderr
    assert "replay diverged at step 1 of 2: $ cat data.txt" in result.stderr
    assert "\n-one\n+two\n" in result.stderr


def test_an_exported_trajectory_replays(cli: Cli, scripted) -> None:
    record(cli, scripted)
    result = cli.run("trajectory", "r", "-o", "t.json")
    assert result.returncode == 0, result.stderr
    trajectory = json.loads((cli.workspace / "t.json").read_text())
    assert trajectory[0]["action"] == "message" and trajectory[0]["source"] == "user"
    stdout = cli.run("trajectory", "r")
    assert json.loads(stdout.stdout) == trajectory

    result = cli.run("replay", str(cli.workspace / "t.json"), "-d", str(fresh_dir(cli)))
    assert result.returncode == 0, result.stderr
    assert "replay matched: 5/5" in result.stderr


@pytest.mark.parametrize("source", ["seed-hi.trajectory.json", "seed-hi"])
def test_the_shipped_example_replays_offline(cli: Cli, source: str) -> None:
    result = cli.run("replay", str(REPO / "examples" / source))
    assert result.returncode == 0, result.stderr
    script = cli.workspace / "hi.sh"
    assert subprocess.run([str(script)], capture_output=True, text=True).stdout == "hi\n"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("no-such-run", "no run named 'no-such-run'"),
        ("missing.json", "no file missing.json"),
        ("bad.json", "bad.json: not an OpenHands trajectory"),
    ],
)
def test_unusable_input_is_one_line_and_exit_code_2(cli: Cli, source: str, message: str) -> None:
    (cli.workspace / "bad.json").write_text('{"trajectory": 3}')
    result = cli.run("replay", source)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stderr.startswith("runhands: error: ")


def test_exporting_an_unknown_run_is_exit_code_2(cli: Cli) -> None:
    result = cli.run("trajectory", "nope")
    assert result.returncode == 2
    assert "no run named 'nope'" in result.stderr and result.stderr.count("\n") == 1


def test_replay_continue_of_a_finished_run_needs_no_model(cli: Cli, scripted) -> None:
    record(cli, scripted)
    fresh = fresh_dir(cli)
    model = scripted([])
    result = cli.run("replay", "r", "--continue", "-n", "cont", "-d", str(fresh), model=model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "data.txt written"  # the recorded finish, replayed
    assert model.requests == []
    assert (fresh / "data.txt").read_text() == "one\n"


def test_replay_continue_hands_the_replayed_run_to_the_model(cli: Cli, scripted) -> None:
    data = str(cli.workspace / "data.txt")
    model = scripted([edit("create", data, file_text="one\n"), bash("cat data.txt")])
    result = cli.run("run", "-n", "r", "-i", "2", "-t", "write data.txt", model=model)
    assert result.returncode != 0  # the step limit: no finish recorded
    fresh = fresh_dir(cli)
    model = scripted([bash("cat data.txt > copy.txt"), finish("copied")])
    result = cli.run("replay", "r", "--continue", "-n", "cont", "-d", str(fresh), model=model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "copied"
    assert (fresh / "copy.txt").read_text() == "one\n"
    # The model's first view holds the recorded task and the two replayed calls with
    # their fresh observations.
    first = model.requests[0]["messages"]
    assert first[1]["content"] == "write data.txt"
    replayed = [m for m in first if m["role"] == "tool"]
    assert len(replayed) == 2 and replayed[1]["content"].startswith("one\n")


def test_replay_trajectory_path_on_run_and_save_trajectory_path(cli: Cli, scripted) -> None:
    record(cli, scripted)
    assert cli.run("trajectory", "r", "-o", str(cli.home / "t.json")).returncode == 0
    fresh = fresh_dir(cli)
    model = scripted([finish("nothing more")])
    env = {
        "REPLAY_TRAJECTORY_PATH": str(cli.home / "t.json"),
        "SAVE_TRAJECTORY_PATH": str(cli.home / "out.json"),
    }
    result = cli.run("run", "-n", "again", "-d", str(fresh), model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert model.requests == []  # the trajectory's own finish ends the run
    assert result.stdout.strip() == "data.txt written"
    assert (fresh / "data.txt").read_text() == "one\n"
    saved = json.loads((cli.home / "out.json").read_text())
    actions = [e.get("action") for e in saved if "action" in e]
    assert actions[0] == "message" and actions.count("run") == 3 and actions[-1] == "finish"
