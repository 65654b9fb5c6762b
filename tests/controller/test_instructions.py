"""Reading repository instructions: front matter, kinds, names, what is left out."""

from __future__ import annotations

import os
from pathlib import Path

from controller.agent.instructions import match_triggers, read_instructions


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_kinds_names_and_triggers(tmp_path: Path) -> None:
    base = tmp_path / ".openhands" / "microagents"
    write(tmp_path / "agent.md", "lower-case agent file\n")
    write(base / "repo.md", "no front matter\n")
    write(
        base / "k.md", "---\n# a comment\ntriggers:\n  - 'Deploy'\n  - \"ship it\"\n---\n\nbody\n"
    )
    write(base / "t.md", "---\nname: release\ninputs:\n  - name: VERSION\n---\nRelease.\n")
    write(base / "sub" / "inline.md", "---\ntriggers: [alpha, beta]\nversion: 1\n---\nx\n")
    files, warnings = read_instructions(tmp_path)
    assert warnings == []
    got = [(f.name, f.kind, f.triggers, f.content) for f in files]
    assert got == [
        ("agents", "repo", [], "lower-case agent file\n"),
        ("k", "knowledge", ["Deploy", "ship it"], "body"),
        ("repo", "repo", [], "no front matter\n"),
        ("t", "knowledge", ["/release"], "Release."),
        ("sub/inline", "knowledge", ["alpha", "beta"], "x"),
    ]
    hits = match_triggers(files, "please DEPLOY and Beta", {"sub/inline"}, [])
    assert [(r.name, r.trigger) for r in hits] == [("k", "Deploy")]
    assert match_triggers(files, "deploy", set(), ["k"]) == []


def test_unreadable_front_matter_and_special_files_are_left_out(tmp_path: Path) -> None:
    base = tmp_path / ".openhands" / "microagents"
    write(base / "open.md", "---\ntriggers:\n- x\nno end\n")
    base.mkdir(parents=True, exist_ok=True)
    os.mkfifo(base / "fifo.md")
    files, warnings = read_instructions(tmp_path)
    assert files == []
    assert sorted(warnings) == [
        ".openhands/microagents/fifo.md: not loaded (not a regular file)",
        ".openhands/microagents/open.md: not loaded (its front matter could not be read)",
    ]


def test_a_linked_openhands_directory_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "microagents" / "repo.md", "outside\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".openhands").symlink_to(outside)
    files, warnings = read_instructions(workspace)
    assert files == []
    assert warnings == [".openhands/microagents: not a directory inside the workspace"]


def test_cursorrules_and_the_users_own_microagents(tmp_path: Path) -> None:
    """OpenHands also reads `.cursorrules` at the root (a repo microagent) and the user's
    `~/.openhands/microagents/` for every conversation; the workspace's win on a name."""
    workspace, user = tmp_path / "ws", tmp_path / "user"
    write(workspace / ".cursorrules", "Prefer small functions.\n")
    write(workspace / ".openhands" / "microagents" / "style.md", "workspace style\n")
    write(user / "style.md", "user style\n")
    write(user / "tools" / "k8s.md", "---\ntriggers: [kubectl]\n---\nUse the staging context.\n")
    write(tmp_path / "elsewhere.md", "outside\n")
    (user / "linked.md").symlink_to(tmp_path / "elsewhere.md")
    files, warnings = read_instructions(workspace, user)
    got = [(f.name, f.path, f.kind, f.content) for f in files]
    assert got == [
        ("cursorrules", ".cursorrules", "repo", "Prefer small functions.\n"),
        ("style", ".openhands/microagents/style.md", "repo", "workspace style\n"),
        (
            "tools/k8s",
            "~/.openhands/microagents/tools/k8s.md",
            "knowledge",
            "Use the staging context.",
        ),
    ]
    assert warnings == ["~/.openhands/microagents/linked.md: not loaded (a symbolic link)"]
    assert read_instructions(workspace, tmp_path / "missing")[1] == []
