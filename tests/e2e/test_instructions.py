"""Repository instructions end to end: AGENTS.md, `.openhands/microagents/` (repo and
knowledge microagents), `.openhands/setup.sh`, and `[agent] enable_prompt_extensions`, through
the real CLI and a scripted model that keeps every request."""

from __future__ import annotations

from pathlib import Path

import pytest

from state_store.events import (
    InstructionsLoaded,
    KnowledgeRecalled,
    SetupScriptRan,
    UserMessage,
)
from state_store.store import read_events
from tests.conftest import TEST_API_KEY, Cli
from tests.e2e.test_resume import kill_once_saved, start
from tests.scripted_model import bash, finish

pytestmark = pytest.mark.e2e

REPO_MD = """---
name: repo
type: repo
agent: CodeActAgent
---
This repository builds with `make`; run `make test` before finishing.
"""

YUMMY_MD = """---
triggers:
- yummyhappy
- happyyummy
---
The user has said the magic word. Respond with "That was delicious!"
"""

EXTRA_INFO_YUMMY = (
    "<EXTRA_INFO>\n"
    'The following information has been included based on a keyword match for "yummyhappy".\n'
    "It may or may not be relevant to the user's request.\n\n"
    'The user has said the magic word. Respond with "That was delicious!"\n'
    "</EXTRA_INFO>"
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def microagents(cli: Cli) -> Path:
    return cli.workspace / ".openhands" / "microagents"


def events(cli: Cli, name: str) -> list:
    return read_events(cli.state_dir / name / "events.jsonl")


def contents(request: dict) -> list[str]:
    return [m.get("content") or "" for m in request["messages"]]


def test_agents_md_and_repo_microagent_reach_the_first_request(cli: Cli, scripted) -> None:
    write(cli.workspace / "AGENTS.md", "Indent with tabs.\n")
    write(microagents(cli) / "repo.md", REPO_MD)
    write(microagents(cli) / "README.md", "not a microagent\n")
    model = scripted([finish()])
    result = cli.run("run", "-n", "ins", "-t", "fix the build", model=model)
    assert result.returncode == 0, result.stderr

    first = model.requests[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "user"]
    assert first[1]["content"] == "fix the build"
    # OpenHands' additional_info.j2: the repo microagents joined by a blank line.
    assert first[2]["content"] == (
        "<REPOSITORY_INSTRUCTIONS>\n"
        "Indent with tabs.\n\n\n"
        "This repository builds with `make`; run `make test` before finishing.\n"
        "</REPOSITORY_INSTRUCTIONS>"
    )
    (loaded,) = [e for e in events(cli, "ins") if isinstance(e, InstructionsLoaded)]
    assert [(f.name, f.path, f.kind) for f in loaded.files] == [
        ("agents", "AGENTS.md", "repo"),
        ("repo", ".openhands/microagents/repo.md", "repo"),
    ]
    assert "instructions loaded: AGENTS.md, .openhands/microagents/repo.md" in result.stderr


def test_a_knowledge_microagent_comes_after_the_message_with_its_trigger(
    cli: Cli, scripted
) -> None:
    write(microagents(cli) / "yummy.md", YUMMY_MD)
    write(microagents(cli) / "lang" / "rust.md", "---\ntriggers: [cargo]\n---\nUse cargo.\n")
    model = scripted([finish("one"), finish("two"), finish("three")])
    result = cli.run("run", "-n", "kn", "-t", "build it with CARGO", model=model)
    assert result.returncode == 0, result.stderr
    first = contents(model.requests[0])
    assert not any("yummyhappy" in c for c in first)
    # Triggered by the task (case-insensitive): in the first request, named by its path.
    assert any('keyword match for "cargo"' in c and "Use cargo." in c for c in first)

    result = cli.run("resume", "kn", "-t", "say yummyhappy please", model=model)
    assert result.returncode == 0, result.stderr
    second = contents(model.requests[1])
    at = second.index("say yummyhappy please")
    assert second[at + 1] == EXTRA_INFO_YUMMY
    assert sum(EXTRA_INFO_YUMMY in c for c in second) == 1

    # Once a run: the trigger again adds nothing.
    result = cli.run("resume", "kn", "-t", "yummyhappy again", model=model)
    assert result.returncode == 0, result.stderr
    third = contents(model.requests[2])
    assert third[-1] == "yummyhappy again"
    assert sum(EXTRA_INFO_YUMMY in c for c in third) == 1
    recalled = [e for e in events(cli, "kn") if isinstance(e, KnowledgeRecalled)]
    assert [[(r.name, r.trigger) for r in e.recalled] for e in recalled] == [
        [("yummy", "yummyhappy")]
    ]
    (loaded,) = [e for e in events(cli, "kn") if isinstance(e, InstructionsLoaded)]
    assert [(r.name, r.trigger) for r in loaded.recalled] == [("lang/rust", "cargo")]


def test_resume_after_a_kill_uses_the_saved_text_not_the_file(cli: Cli, scripted) -> None:
    write(cli.workspace / "AGENTS.md", "original rules\n")
    write(microagents(cli) / "yummy.md", YUMMY_MD)
    model = scripted([bash("sleep 60"), finish("done")])
    proc = start(cli, model, "run", "-n", "killed", "-t", "go", env={"SANDBOX_SOFT_TIMEOUT": "120"})
    log = cli.state_dir / "killed" / "events.jsonl"
    kill_once_saved(proc, log, b'"sleep 60"')
    write(cli.workspace / "AGENTS.md", "CHANGED rules\n")
    (microagents(cli) / "yummy.md").unlink()

    result = cli.run("resume", "killed", "-t", "yummyhappy", model=model)
    assert result.returncode == 0, result.stderr
    last = contents(model.requests[-1])
    assert any("original rules" in c for c in last)
    assert not any("CHANGED" in c for c in last)
    # The knowledge microagent, deleted since, still comes from the saved event.
    assert EXTRA_INFO_YUMMY in last
    assert len([e for e in events(cli, "killed") if isinstance(e, InstructionsLoaded)]) == 1


def test_setup_script_runs_once_in_the_sandbox(cli: Cli, scripted) -> None:
    write(
        cli.workspace / ".openhands" / "setup.sh",
        "echo ran >> setup-ran.txt\nexport FROM_SETUP=yes\necho setting up\n",
    )
    model = scripted(
        [bash("echo value=$FROM_SETUP"), finish("one"), finish("two"), finish("three")]
    )
    result = cli.run("run", "-n", "setup", "-t", "go", model=model)
    assert result.returncode == 0, result.stderr
    assert (cli.workspace / "setup-ran.txt").read_text() == "ran\n"
    # Sourced in the agent's shell, as OpenHands does: its exports persist.
    assert "value=yes" in contents(model.requests[1])[-1]
    (ran,) = [e for e in events(cli, "setup") if isinstance(e, SetupScriptRan)]
    assert ran.exit_code == 0 and "setting up" in ran.output
    # The model is not shown it (OpenHands runs it as a hidden action).
    assert not any("setting up" in c for c in contents(model.requests[0]))

    for instruction in ("again", "and again"):
        result = cli.run("resume", "setup", "-t", instruction, model=model)
        assert result.returncode == 0, result.stderr
    assert (cli.workspace / "setup-ran.txt").read_text() == "ran\n"
    assert len([e for e in events(cli, "setup") if isinstance(e, SetupScriptRan)]) == 1


def test_a_failing_setup_script_is_a_warning(cli: Cli, scripted) -> None:
    write(cli.workspace / ".openhands" / "setup.sh", "echo broken\nfalse\n")
    model = scripted([bash("echo still here"), finish("ok")])
    result = cli.run("run", "-n", "bad", "-t", "go", model=model)
    assert result.returncode == 0, result.stderr
    assert "setup.sh failed (exit code 1); the run goes on" in result.stderr
    (ran,) = [e for e in events(cli, "bad") if isinstance(e, SetupScriptRan)]
    assert ran.exit_code == 1
    assert "still here" in contents(model.requests[1])[-1]


@pytest.mark.parametrize("how", ["env", "toml"])
def test_prompt_extensions_off_loads_nothing(cli: Cli, scripted, how: str) -> None:
    write(cli.workspace / "AGENTS.md", "Indent with tabs.\n")
    write(microagents(cli) / "yummy.md", YUMMY_MD)
    env = {}
    if how == "env":
        env["AGENT_ENABLE_PROMPT_EXTENSIONS"] = "false"
    else:
        write(cli.workspace / "config.toml", "[agent]\nenable_prompt_extensions = false\n")
    model = scripted([finish()])
    result = cli.run("run", "-n", "off", "-t", "yummyhappy", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert "enable_prompt_extensions" not in result.stderr  # no longer "ignored"
    assert contents(model.requests[0])[1:] == ["yummyhappy"]
    saved = events(cli, "off")
    assert not [e for e in saved if isinstance(e, InstructionsLoaded | KnowledgeRecalled)]
    assert [e.origin for e in saved if isinstance(e, UserMessage)] == ["task"]


def test_disabled_microagents_are_left_out(cli: Cli, scripted) -> None:
    write(microagents(cli) / "yummy.md", YUMMY_MD)
    model = scripted([finish()])
    env = {"AGENT_DISABLED_MICROAGENTS": '["yummy"]'}
    result = cli.run("run", "-t", "yummyhappy", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert contents(model.requests[0])[1:] == ["yummyhappy"]


def test_links_out_of_the_workspace_and_huge_files(cli: Cli, scripted, tmp_path: Path) -> None:
    secret = tmp_path / "outside.md"
    secret.write_text("SECRET OUTSIDE\n")
    (cli.workspace / "AGENTS.md").symlink_to(secret)
    outside_dir = tmp_path / "elsewhere"
    write(outside_dir / "x.md", "ALSO OUTSIDE\n")
    microagents(cli).mkdir(parents=True)
    (microagents(cli) / "linked").symlink_to(outside_dir)
    write(microagents(cli) / "big.md", "x" * 50_000 + "TAIL\n")
    model = scripted([finish()])
    result = cli.run("run", "-n", "edge", "-t", "go", model=model)
    assert result.returncode == 0, result.stderr
    shown = "\n".join(contents(model.requests[0]))
    assert "OUTSIDE" not in shown and "TAIL" not in shown
    assert "[runhands: .openhands/microagents/big.md is 50005 bytes" in shown
    assert "AGENTS.md: not loaded (a symbolic link)" in result.stderr
    (loaded,) = [e for e in events(cli, "edge") if isinstance(e, InstructionsLoaded)]
    assert [f.path for f in loaded.files] == [".openhands/microagents/big.md"]


def test_instructions_are_redacted_like_every_event(cli: Cli, scripted) -> None:
    write(cli.workspace / "AGENTS.md", f"deploy with key {TEST_API_KEY}\n")
    model = scripted([finish()])
    result = cli.run("run", "-t", "go", model=model)
    assert result.returncode == 0, result.stderr
    assert TEST_API_KEY.encode() not in cli.saved_bytes()
    shown = "\n".join(contents(model.requests[0]))
    assert "deploy with key" in shown and TEST_API_KEY not in shown


def test_cursorrules_and_a_users_microagent_reach_the_model(cli: Cli, scripted) -> None:
    write(cli.workspace / ".cursorrules", "Prefer small functions.\n")
    user = cli.home / ".openhands" / "microagents"
    write(user / "k8s.md", "---\ntriggers: [kubectl]\n---\nUse the staging context.\n")
    model = scripted([finish()])
    result = cli.run("run", "-n", "u", "-t", "run kubectl get pods", model=model)
    assert result.returncode == 0, result.stderr
    first = contents(model.requests[0])
    assert "Prefer small functions." in first[2] and "<REPOSITORY_INSTRUCTIONS>" in first[2]
    assert 'keyword match for "kubectl"' in first[2] and "Use the staging context." in first[2]
    (loaded,) = [e for e in events(cli, "u") if isinstance(e, InstructionsLoaded)]
    assert [f.path for f in loaded.files] == [".cursorrules", "~/.openhands/microagents/k8s.md"]
