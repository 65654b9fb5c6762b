"""init: start the sandbox (the store is already open and the config validated)."""

from __future__ import annotations

from controller.outcome import EndReason
from controller.run_context import Next, RunContext
from sandbox import SandboxError
from state_store.events import SandboxStarted


def run(ctx: RunContext) -> Next:
    try:
        ctx.sandbox.start()
    except SandboxError as e:
        return Next("fail", f"the sandbox could not start: {e}", EndReason.SANDBOX)
    ctx.record(SandboxStarted, runtime=ctx.config.core.runtime, identity=ctx.sandbox.identity)
    return Next("start", f"sandbox ready in {ctx.workdir}")
