"""How a run ended, and the process exit code that says so (documented in the README)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class EndReason(StrEnum):
    FINISHED = "finished"  # the agent called `finish`
    AGENT = "agent"  # the model misbehaved: malformed tool calls, never called a tool
    LIMIT = "limit"  # max_iterations, max_budget_per_task or max_runtime_seconds reached
    SANDBOX = "sandbox"  # the sandbox could not start or broke
    PROVIDER = "provider"  # the model provider failed after retries, or refused the request
    INTERNAL = "internal"  # a bug in runhands, e.g. an illegal transition
    INTERRUPTED = "interrupted"  # SIGINT / SIGTERM
    STORAGE = "storage"  # the run's state could not be written (e.g. no space left)


class ExitCode(IntEnum):
    FINISHED = 0
    AGENT = 1
    USAGE = 2  # bad flags, configuration or input: nothing ran
    LIMIT = 3
    SANDBOX = 4
    PROVIDER = 5
    INTERNAL = 6
    STORAGE = 7  # the state directory could not be written: nothing saved is lost
    INTERRUPTED = 130


EXIT_CODES: dict[EndReason, ExitCode] = {
    EndReason.FINISHED: ExitCode.FINISHED,
    EndReason.AGENT: ExitCode.AGENT,
    EndReason.LIMIT: ExitCode.LIMIT,
    EndReason.SANDBOX: ExitCode.SANDBOX,
    EndReason.PROVIDER: ExitCode.PROVIDER,
    EndReason.INTERNAL: ExitCode.INTERNAL,
    EndReason.INTERRUPTED: ExitCode.INTERRUPTED,
    EndReason.STORAGE: ExitCode.STORAGE,
}
