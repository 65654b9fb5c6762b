"""Sandboxes: where the agent's commands run and its files live."""

from sandbox.editor import Editor, EditorResult
from sandbox.local import LocalSandbox
from sandbox.protocol import CommandResult, PathKind, Sandbox, SandboxError

__all__ = [
    "CommandResult",
    "Editor",
    "EditorResult",
    "LocalSandbox",
    "PathKind",
    "Sandbox",
    "SandboxError",
]
