"""Repository instructions, as OpenHands gives them: `AGENTS.md`, `.cursorrules`,
`.openhands/microagents/` and the user's `~/.openhands/microagents/` (repo microagents
always, knowledge microagents when a user message holds a trigger word) and
`.openhands/setup.sh`.

Everything is read from the workspace once, when a new run starts, and saved as an event
(`instructions_loaded`, `setup_script`); the model's view is built from those events, so a
resume or a replay shows the model the same text even when the files changed since. A
trigger found in a later user message is saved as `knowledge_recalled` at that point.

Prompt wording: OpenHands' `agenthub/codeact_agent/prompts/additional_info.j2`
(`<REPOSITORY_INSTRUCTIONS>`) and `microagent_info.j2` (`<EXTRA_INFO>`); loading rules:
`microagent/microagent.py` (`load_microagents_from_dir`, `BaseMicroagent.load`,
`KnowledgeMicroagent.match_trigger`), `memory/memory.py` (repo contents joined by a blank
line), `memory/conversation_memory.py` (each knowledge microagent once a conversation).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec

from state_store.events import (
    InstructionFile,
    InstructionsLoaded,
    KnowledgeRecalled,
    Recalled,
)

# Third-party files OpenHands reads at the repository root (the first AGENTS.md found).
AGENTS_FILES = ("AGENTS.md", "agents.md", "AGENT.md", "agent.md")
CURSOR_RULES = ".cursorrules"  # Cursor's, read by OpenHands as a repo microagent
MICROAGENTS_DIR = ".openhands/microagents"
# The user's own microagents, for every run (OpenHands' USER_MICROAGENTS_DIR); the
# workspace's win on a name both have.
USER_MICROAGENTS_DIR = "~/.openhands/microagents"
SETUP_SCRIPT = ".openhands/setup.sh"
# OpenHands sources the script with a 600 s hard timeout (runtime/base.py).
SETUP_TIMEOUT_S = 600.0
# Ours: what one file may bring into the prompt, and all of them together.
MAX_FILE_BYTES = 20_000
MAX_TOTAL_BYTES = 100_000
MAX_FILES = 100
MAX_SETUP_OUTPUT_CHARS = 20_000

CUT_NOTE = "\n[runhands: {path} is {size} bytes; only its first {limit} bytes were loaded]"

REPOSITORY_INSTRUCTIONS = "<REPOSITORY_INSTRUCTIONS>\n{content}\n</REPOSITORY_INSTRUCTIONS>"
EXTRA_INFO = (
    "<EXTRA_INFO>\n"
    'The following information has been included based on a keyword match for "{trigger}".\n'
    "It may or may not be relevant to the user's request.\n\n"
    "{content}\n"
    "</EXTRA_INFO>"
)


# -- what the model is shown ------------------------------------------------------------


def instructions_text(event: InstructionsLoaded) -> str | None:
    """OpenHands' workspace-context message: every repo file's content (a blank line
    between), then the knowledge microagents the task triggered; None when empty."""
    repo = "\n\n".join(f.content for f in event.files if f.kind == "repo")
    parts = [REPOSITORY_INSTRUCTIONS.format(content=repo)] if repo.strip() else []
    parts += [_extra_info(r) for r in event.recalled]
    return "\n".join(parts) or None


def recalled_text(event: KnowledgeRecalled) -> str | None:
    return "\n".join(_extra_info(r) for r in event.recalled) or None


def _extra_info(recalled: Recalled) -> str:
    return EXTRA_INFO.format(trigger=recalled.trigger, content=recalled.content)


# -- reading the workspace ---------------------------------------------------------------


class _Source(NamedTuple):
    base: Path  # the directory the file is read under, never left
    rel: str  # its path there
    shown: str  # its path as saved and shown: workspace-relative, or under ~
    name: str  # OpenHands' microagent name


def read_instructions(
    root: Path, user_dir: Path | None = None
) -> tuple[list[InstructionFile], list[str]]:
    """The instruction files of the workspace `root`, then the user's microagents in
    `user_dir`, and warnings about those left out: only regular files inside their
    directory, never through a symbolic link, cut to the size limits."""
    files: list[InstructionFile] = []
    warnings: list[str] = []
    budget = MAX_TOTAL_BYTES
    sources = _candidates(root, warnings)
    taken = {source.name for source in sources}
    if user_dir is not None:
        sources += [s for s in _user_candidates(user_dir) if s.name not in taken]
    for source in sources:
        rel = source.shown
        if len(files) >= MAX_FILES:
            warnings.append(f"more than {MAX_FILES} instruction files: the rest were not loaded")
            break
        if budget <= 0:
            warnings.append(f"{rel}: not loaded (all instructions together exceed the limit)")
            continue
        try:
            text, size = _read_regular(source.base, source.rel, min(MAX_FILE_BYTES, budget))
        except OSError as e:
            warnings.append(f"{rel}: not loaded ({e.strerror or e})")
            continue
        limit = min(MAX_FILE_BYTES, budget)
        budget -= min(size, limit)
        loaded = _parse(source, text)
        if loaded is None:
            warnings.append(f"{rel}: not loaded (its front matter could not be read)")
            continue
        if size > limit:
            cut = CUT_NOTE.format(path=rel, size=size, limit=limit)
            loaded = msgspec.structs.replace(loaded, content=loaded.content + cut)
            warnings.append(f"{rel} is {size} bytes: only its first {limit} bytes were loaded")
        files.append(loaded)
    return files, warnings


def _candidates(root: Path, warnings: list[str]) -> list[_Source]:
    """The workspace's files: `.cursorrules`, the first AGENTS.md variant, then every
    `*.md` under `.openhands/microagents/` but README.md (sorted; symbolic links are not
    followed)."""
    found: list[_Source] = []
    if os.path.lexists(root / CURSOR_RULES):
        found.append(_Source(root, CURSOR_RULES, CURSOR_RULES, "cursorrules"))
    for name in AGENTS_FILES:
        if os.path.lexists(root / name):
            found.append(_Source(root, name, name, "agents"))
            break
    if not real_dir(root, MICROAGENTS_DIR):
        if os.path.lexists(root / MICROAGENTS_DIR):
            warnings.append(f"{MICROAGENTS_DIR}: not a directory inside the workspace")
        return found
    for rel in _markdown_files(root / MICROAGENTS_DIR):
        shown = f"{MICROAGENTS_DIR}/{rel}"
        found.append(_Source(root, shown, shown, rel.removesuffix(".md")))
    return found


def _user_candidates(user_dir: Path) -> list[_Source]:
    if not user_dir.is_dir():
        return []
    return [
        _Source(user_dir, rel, f"{USER_MICROAGENTS_DIR}/{rel}", rel.removesuffix(".md"))
        for rel in _markdown_files(user_dir)
    ]


def _markdown_files(base: Path) -> list[str]:
    """`*.md` files under base but README.md, relative, sorted; links never followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(base):  # never descends into links
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".md") and name != "README.md":
                found.append(Path(dirpath, name).relative_to(base).as_posix())
    return found


def real_dir(root: Path, rel: str) -> bool:
    """`rel` is a directory reached from `root` without any symbolic link."""
    current = root
    for part in Path(rel).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return False
        if not stat.S_ISDIR(mode):
            return False
    return True


def _read_regular(root: Path, rel: str, limit: int) -> tuple[str, int]:
    """At most `limit` bytes of a regular file (never a link, FIFO or device) and its size."""
    parent = str(Path(rel).parent)
    if parent != "." and not real_dir(root, parent):
        raise OSError(0, "not inside the workspace")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(root / rel, flags)
    except OSError as e:
        if os.path.islink(root / rel):
            raise OSError(0, "a symbolic link") from e
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        data = os.read(fd, limit)
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace"), info.st_size


def _parse(source: _Source, text: str) -> InstructionFile | None:
    """A file as OpenHands loads it: AGENTS.md and .cursorrules whole; a microagent's
    front matter read for `triggers` (knowledge) or `inputs` (a task: its trigger is
    `/name`), else it is a repo microagent."""
    if source.name in ("agents", "cursorrules") and "/" not in source.shown:
        return InstructionFile(name=source.name, path=source.shown, kind="repo", content=text)
    meta, body = _front_matter(text)
    if meta is None:
        return None
    triggers = _as_list(meta.get("triggers"))
    if meta.get("inputs"):
        task_trigger = f"/{meta.get('name') or 'default'}"
        triggers = triggers if task_trigger in triggers else [*triggers, task_trigger]
    kind = "knowledge" if triggers else "repo"
    return InstructionFile(
        name=source.name, path=source.shown, kind=kind, content=body, triggers=triggers
    )


def _front_matter(text: str) -> tuple[dict[str, object] | None, str]:
    """The YAML front matter's top-level keys (scalars and lists of scalars: what the
    fields OpenHands reads here hold) and the body; ({}, text) without front matter."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        return None, text
    meta: dict[str, object] = {}
    key: str | None = None
    for raw in lines[1:end]:
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        stripped = line.strip()
        if stripped.startswith("- ") or stripped == "-":
            if key is None:
                return None, text
            current = meta.get(key)
            items = current if isinstance(current, list) else []
            items.append(_scalar(stripped[1:].strip()))
            meta[key] = items
            continue
        if line[0] in " \t":  # nested mapping (inputs' fields, mcp_tools): kept as present
            if key is not None and not meta.get(key):
                meta[key] = True
            continue
        if ":" not in line:
            return None, text
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if value.startswith("[") and value.endswith("]"):
            inner = value[1:-1].strip()
            meta[key] = [_scalar(v.strip()) for v in inner.split(",")] if inner else []
        else:
            meta[key] = _scalar(value) if value else None
    return meta, "".join(lines[end + 1 :]).strip()  # python-frontmatter strips it


def _scalar(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if str(v)]
    if isinstance(value, str) and value:
        return [value]
    return []


# -- during a run ------------------------------------------------------------------------


def match_triggers(
    files: Sequence[InstructionFile], message: str, skip: set[str], disabled: Sequence[str]
) -> list[Recalled]:
    """Knowledge microagents a message triggers (OpenHands: the first trigger of each that
    is a case-insensitive substring), leaving out those in `skip` and the disabled ones."""
    lowered = message.lower()
    recalled = []
    for f in files:
        if f.kind != "knowledge" or f.name in skip or f.name in disabled:
            continue
        trigger = next((t for t in f.triggers if t.lower() in lowered), None)
        if trigger is not None:
            recalled.append(Recalled(name=f.name, trigger=trigger, content=f.content))
    return recalled
