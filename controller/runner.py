"""Setting up one run (workdir, store, sandbox, model client) and driving it to its end."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from controller import interrupts
from controller.config import AppConfig, LoadedConfig, is_secret_name, public_config
from controller.history import build_messages
from controller.machine import AgentMachine
from controller.model_client import LiteLLMClient, ModelClient
from controller.outcome import EXIT_CODES, EndReason, ExitCode
from controller.prompts import system_prompt
from controller.reporting import Reporter
from controller.run_context import Recorder, RunContext
from controller.run_state import derive
from controller.sandbox_factory import (
    SandboxConfigError,
    agent_workdir,
    check_docker_settings,
    make_sandbox,
)
from controller.tools import tool_specs
from controller.trajectory import RecordedStep
from controller.volumes import VolumeError, parse_volumes, workspace_host_path
from sandbox.editor import Editor
from state_store.events import RunEnded, RunStarted, Snapshot, UserMessage
from state_store.store import RunStore, StoreError, StoreWriteError, new_run_id

# Provider prefixes that need no API key (local servers).
_KEYLESS_PROVIDERS = {"ollama", "ollama_chat", "lm_studio", "llamafile", "vllm", "hosted_vllm"}


# Settings accepted for OpenHands compatibility whose feature is not built yet: a value
# set for them is named on stderr rather than silently dropped.
# Settings only the docker runtime uses: named on stderr when set for a local run.
DOCKER_ONLY = (
    "sandbox.user_id",
    "sandbox.base_container_image",
    "sandbox.runtime_container_image",
    "sandbox.keep_runtime_alive",
    "sandbox.runtime_startup_env_vars",
    "sandbox.network_mode",
    "sandbox.memory_limit",
    "sandbox.cpus",
)


# Ends after which `runhands resume` makes sense without a new instruction.
_RESUMABLE = {
    EndReason.LIMIT,
    EndReason.PROVIDER,
    EndReason.SANDBOX,
    EndReason.INTERRUPTED,
    EndReason.STORAGE,
}


class UsageError(Exception):
    """Bad input found before the run starts: nothing was saved, exit code 2."""


def resolve_workdir(config: AppConfig) -> str:
    """-d / [core] workspace_base, else the host side of the /workspace mount, else cwd."""
    try:
        volumes = parse_volumes(config.sandbox.volumes or "")
    except VolumeError as e:
        raise UsageError(str(e)) from None
    mount = config.core.workspace_mount_path_in_sandbox
    chosen = config.core.workspace_base or workspace_host_path(volumes, mount)
    given = Path(chosen or os.getcwd()).expanduser()
    try:
        path = given.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError on Python 3.11)
        raise UsageError(f"working directory {given} is a symlink loop") from None
    if not path.is_dir():
        raise UsageError(f"working directory {path} does not exist or is not a directory")
    return str(path)


def check_model(config: AppConfig, environ: dict[str, str]) -> None:
    llm = config.llm
    if not llm.model:
        raise UsageError(
            "no model configured: set LLM_MODEL (e.g. anthropic/claude-sonnet-4-5) "
            "or [llm] model in config.toml"
        )
    provider = llm.model.split("/", 1)[0].lower() if "/" in llm.model else ""
    provider_key = f"{provider.upper()}_API_KEY" if provider else "OPENAI_API_KEY"
    if llm.api_key or llm.base_url or provider in _KEYLESS_PROVIDERS or environ.get(provider_key):
        return
    raise UsageError(
        f"no API key for {llm.model}: set LLM_API_KEY (or [llm] api_key in config.toml), "
        "or LLM_BASE_URL for a local model server"
    )


def secrets_of(config: AppConfig) -> list[str]:
    keys = [config.llm.api_key] + [c.api_key for c in config.llm_configs.values()]
    return [k for k in keys if k]


def sandbox_environment(secrets: list[str]) -> dict[str, str]:
    """The host environment minus model settings and credentials: whatever the agent
    prints is saved, so it must never see a key."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LLM_") and not is_secret_name(name) and value not in secrets
    }


def start_run(
    loaded: LoadedConfig,
    task: str | None,
    *,
    run_id: str | None,
    json_lines: bool,
    replay_source: str | None = None,
) -> int:
    """Run a new task to its end; returns the process exit code. With `replay_source` (a
    run or trajectory), its recorded actions are carried out first, then the model takes
    over; the task defaults to the recorded one."""
    config = loaded.config
    check_model(config, dict(os.environ))
    host_workdir = resolve_workdir(config)
    try:
        check_docker_settings(config)
    except SandboxConfigError as e:
        raise UsageError(str(e)) from None
    workdir = agent_workdir(config, host_workdir)
    steps: list[RecordedStep] = []
    if replay_source:
        task, steps = _recorded(loaded, replay_source, task, workdir)
    if not task:
        raise UsageError("no task: give -t TEXT, -f FILE, or pipe the task on stdin")
    root = Path(config.core.file_store_path).expanduser()
    run_id = new_run_id() if run_id is None else run_id
    started = {
        "run_id": run_id,
        "task": "",  # the task lives in the log once: in the user message that follows
        "workdir": workdir,
        "host_workdir": host_workdir,
        "runtime": config.core.runtime,
        "model": config.llm.model,
    }
    opening = [(RunStarted, started), (UserMessage, {"content": task, "origin": "task"})]
    try:
        store = RunStore.create(
            root, run_id, secrets_of(config), config=public_config(config), opening=opening
        )
    except StoreError as e:
        raise UsageError(str(e)) from None
    except StoreWriteError as e:  # e.g. no space left: the name stays free
        print(f"runhands: error: the run could not be created: {e}", file=sys.stderr)
        return int(ExitCode.STORAGE)
    reporter = make_reporter(loaded, json_lines)
    snapshot = derive(store.run_id, store.events)

    def begin(ctx: RunContext, machine: AgentMachine) -> None:
        ctx.replay_steps = steps
        reporter.info(f"runhands: run {store.run_id} (state in {store.run_dir})")
        for event in store.events[1:]:
            reporter.event(event)
        ctx.save_snapshot()

    return drive(config, store, reporter, snapshot, host_workdir, begin)


def _recorded(
    loaded: LoadedConfig, source: str, task: str | None, workdir: str
) -> tuple[str, list[RecordedStep]]:
    """The task and the steps to replay, moved to this run's working directory."""
    from controller.replay import load_recording, relocate

    root = Path(loaded.config.core.file_store_path).expanduser()
    try:
        recording = load_recording(source, root)
    except (ValueError, StoreError) as e:
        raise UsageError(str(e)) from None
    recorded_dir = recording.workdir or loaded.config.core.workspace_mount_path_in_sandbox
    steps = [
        msgspec.structs.replace(step, args=relocate(step.args, recorded_dir, workdir))
        for step in recording.steps
    ]
    return task or recording.task, steps


def make_reporter(loaded: LoadedConfig, json_lines: bool) -> Reporter:
    config = loaded.config
    reporter = Reporter(
        json_lines=json_lines,
        log_all_events=config.core.log_all_events,
        secrets=secrets_of(config),
    )
    for warning in loaded.warnings + _not_used_here(loaded):
        reporter.info(f"runhands: warning: {warning}")
    return reporter


def drive(
    config: AppConfig,
    store: RunStore,
    reporter: Reporter,
    snapshot: Snapshot,
    host_workdir: str,
    prepare: Callable[[RunContext, AgentMachine], None],
) -> int:
    """Build the run's context, let `prepare` record how it (re)starts, run the machine to
    its end, and record that end. Returns the exit code."""
    started = time.monotonic()
    env = sandbox_environment(secrets_of(config))
    scope = str(store.run_dir.parent.resolve())
    sandbox = make_sandbox(config, store.run_id, host_workdir, env, scope)
    workdir = agent_workdir(config, host_workdir)
    pool = ThreadPoolExecutor(max_workers=1)
    ctx = RunContext(
        config=config,
        store=store,
        sandbox=sandbox,
        reporter=reporter,
        snapshot=snapshot,
        workdir=workdir,
        client_future=pool.submit(_make_client, config),
        editor=Editor(sandbox),
        tools=tool_specs(_enabled_tools(config)),
        messages=build_messages(system_prompt(workdir), store.events),
        events=list(store.events),
        runtime_before=snapshot.counters.runtime_s,
    )
    stopped: EndReason | None = None
    try:
        machine = AgentMachine(ctx)
        prepare(ctx, machine)
        machine.drive()
    except KeyboardInterrupt:
        stopped = EndReason.INTERRUPTED
    except StoreWriteError as e:
        reporter.info(f"runhands: error: {e}")
        stopped = EndReason.STORAGE
    with interrupts.closing():
        sandbox.close()
        code = end_run(
            ctx.record, ctx.snapshot, store, config, reporter, stopped, time.monotonic() - started
        )
        pool.shutdown(wait=True, cancel_futures=True)
    return code


def end_run(
    record: Recorder,
    snapshot: Snapshot,
    store: RunStore,
    config: AppConfig,
    reporter: Reporter,
    stopped: EndReason | None,
    duration: float,
    *,
    close: bool = True,
) -> int:
    """Record how the run ended (`run_ended`), write its trajectory, close the store;
    returns the exit code. `stopped`: interrupted, or the store failed, in any state."""
    if stopped is not None:
        message = f"{stopped.value} in state {snapshot.state}"
        reason = stopped
    else:
        reason = EndReason(snapshot.reason or EndReason.INTERNAL)
        message = snapshot.message
    if reason is EndReason.FINISHED:
        message = snapshot.finish_message or ""
    exit_code = int(EXIT_CODES[reason])
    counters = snapshot.counters
    try:
        record(
            RunEnded,
            run_id=snapshot.run_id,
            state=snapshot.state,
            reason=reason.value,
            message=message,
            steps=counters.steps,
            prompt_tokens=counters.prompt_tokens,
            completion_tokens=counters.completion_tokens,
            cost=round(counters.cost, 6),
            exit_code=exit_code,
            duration_s=round(duration, 3),
        )
        store.save_snapshot(snapshot)
        _save_trajectory(config, store, reporter)
    except StoreWriteError as e:
        if reason is not EndReason.STORAGE:
            reporter.info(f"runhands: error: {e}")
        reason, exit_code = EndReason.STORAGE, int(ExitCode.STORAGE)
    finally:
        if close:
            store.close()
    if close and reason in _RESUMABLE:
        reporter.info(f"runhands: continue with: runhands resume {snapshot.run_id}")
    return exit_code


def _save_trajectory(config: AppConfig, store: RunStore, reporter: Reporter) -> None:
    """[core] save_trajectory_path: the run in OpenHands' trajectory shape, at every end."""
    path = config.core.save_trajectory_path
    if not path:
        return
    from controller.trajectory import save_trajectory

    try:
        written = save_trajectory(path, store.read_events(), secrets=secrets_of(config))
    except ValueError as e:
        reporter.info(f"runhands: warning: trajectory not saved: {e}")
        return
    reporter.info(f"runhands: trajectory saved to {written}")


def _not_used_here(loaded: LoadedConfig) -> list[str]:
    """Docker settings given for a local run are named, never silently dropped."""
    if loaded.config.core.runtime != "local":
        return []
    chosen = [key for key in DOCKER_ONLY if loaded.sources.get(key, "default") != "default"]
    if not chosen:
        return []
    return [f"used only by the docker runtime, ignored: {', '.join(chosen)}"]


def _make_client(config: AppConfig) -> ModelClient:
    return LiteLLMClient(config.llm, llm_configs=config.llm_configs)


def _enabled_tools(config: AppConfig) -> dict[str, bool]:
    agent = config.agent
    return {
        "enable_cmd": agent.enable_cmd,
        "enable_editor": agent.enable_editor,
        "enable_think": agent.enable_think,
        "enable_finish": agent.enable_finish,
    }
