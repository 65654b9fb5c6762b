"""The `runhands` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from controller import __version__
from controller.agent.outcome import ExitCode
from controller.cli.hardening import make_undumpable
from controller.config import (
    LOG_LEVELS,
    ConfigError,
    LoadedConfig,
    config_options,
    describe_config,
    dotenv_environment,
    is_debug_level,
    load_config,
)
from controller.errors import UserError
from controller.run import interrupts

_AGENTS = {"CodeActAgent"}  # the only agent; the flag exists for OpenHands command lines

EXIT_CODES_HELP = """\
exit codes:
  0    finished: the agent called finish
  1    the agent failed (stuck in a loop, malformed tool calls, never called a tool)
  2    bad usage or configuration: nothing ran
  3    a limit was reached (iterations, budget or runtime)
  4    the sandbox failed
  5    the model provider failed (after retries) or refused the request
  6    internal error in runhands
  7    the run's state could not be written (e.g. no space left); resume it later
  130  interrupted (Ctrl-C or SIGTERM)
"""


def settings_help() -> str:
    """Every setting, for `run --help`: environment variable, config.toml key, default."""
    lines = ["settings (environment variable = config.toml [section] key; default):"]
    for option in config_options():
        section, _, key = option.key.partition(".")
        lines.append(f"  {option.env:<34} [{section}] {key}; {option.default}")
    return "\n".join(lines) + "\n"


def _add_run_id(parser: argparse.ArgumentParser, what: str = "the run id") -> None:
    parser.add_argument("run_id", metavar="RUN", help=f"{what} (see `runhands list`)")


def _add_instruction(parser: argparse.ArgumentParser, when: str) -> None:
    more = parser.add_argument_group(f"a new instruction (needed to {when})")
    more.add_argument("-t", "--task", metavar="TEXT", help="the instruction")
    more.add_argument("-f", "--file", metavar="PATH", help="read the instruction from a file")


def _add_config_options(
    parser: argparse.ArgumentParser,
    directory: str = "the agent's working directory (default: cwd)",
) -> None:
    group = parser.add_argument_group("configuration (flags win over environment and files)")
    group.add_argument(
        "--config-file", metavar="PATH", help="TOML configuration (default: ./config.toml)"
    )
    group.add_argument(
        "-l",
        "--llm-config",
        metavar="NAME",
        help="use the [llm.NAME] section as the model (LLM_* variables are then ignored)",
    )
    group.add_argument(
        "-i", "--max-iterations", type=int, metavar="N", help="step limit (default 500)"
    )
    group.add_argument(
        "-b", "--max-budget-per-task", type=float, metavar="USD", help="cost limit in dollars"
    )
    group.add_argument(
        "--max-runtime",
        type=float,
        metavar="SECONDS",
        help="time limit: seconds the run is active, summed over resumes",
    )
    group.add_argument("--runtime", choices=["local", "docker"], help="sandbox (default local)")
    group.add_argument(
        "--isolation",
        choices=["auto", "workspace-write", "read-only", "none"],
        help="how the local sandbox is isolated (default auto: workspace-write with bubblewrap)",
    )
    group.add_argument(
        "--state-dir", metavar="DIR", help="where runs are saved (default ~/.openhands-state)"
    )
    group.add_argument("-d", "--directory", metavar="DIR", help=directory)
    _add_openhands_options(group)


def _add_openhands_options(group: argparse._ArgumentGroup) -> None:
    """Flags of OpenHands' headless parser (openhands/core/config/arg_utils.py)."""
    group.add_argument(
        "--log-level", metavar="LEVEL", help="debug: log every event on stderr (LOG_LEVEL)"
    )
    group.add_argument(
        "--no-auto-continue",
        action="store_true",
        help="an answer without a tool call ends the run (default: the agent is told to go on)",
    )
    group.add_argument(
        "--selected-repo",
        metavar="OWNER/REPO",
        help="recorded with the run; never cloned: the working directory is the repository",
    )
    # OpenHands parses it and never reads it: accepted for its command lines, named as unused.
    group.add_argument("--agent-config", metavar="NAME", help="ignored, as by OpenHands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runhands",
        description="A headless autonomous coding agent. Every step is saved.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--version", action="version", version=f"runhands {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the agent on a task until it ends",
        description="Run the agent on a task until it finishes, fails or hits a limit.",
        epilog=settings_help() + "\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    task = run.add_argument_group("task (-f wins over -t; stdin is read when neither is given)")
    task.add_argument("-t", "--task", metavar="TEXT", help="the task")
    task.add_argument("-f", "--file", metavar="PATH", help="read the task from a file")
    run.add_argument("-n", "--name", metavar="NAME", help="run id (default: generated)")
    run.add_argument("--json", action="store_true", help="print one JSON event per line on stdout")
    run.add_argument("-c", "--agent-cls", metavar="NAME", help="agent class (only CodeActAgent)")
    # OpenHands prints its version whatever else is given (`-t x -v`): so does `run`.
    run.add_argument("-v", "--version", action="version", version=f"runhands {__version__}")
    _add_config_options(run)

    resume = sub.add_parser(
        "resume",
        help="continue a saved run from its last completed step",
        description="Continue a saved run from its last completed step. Flags and variables "
        "override the run's saved configuration (e.g. raise -i or -b after a limit).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_id(resume)
    _add_instruction(resume, "continue a finished run")
    resume.add_argument(
        "--json", action="store_true", help="print one JSON event per line on stdout"
    )
    _add_config_options(resume)

    listing = sub.add_parser("list", help="list saved runs, newest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per run")
    _add_config_options(listing)

    inspect = sub.add_parser(
        "inspect", help="show a saved run: summary, transitions, actions, cost"
    )
    _add_run_id(inspect)
    inspect.add_argument("--json", action="store_true", help="the report as JSON")
    _add_config_options(inspect)

    replay = sub.add_parser(
        "replay",
        help="re-run a recorded run's actions and compare the observations",
        description="Re-execute the recorded actions of a run (or an OpenHands trajectory "
        "file) in a fresh sandbox without calling the model, compare each observation with "
        "the recorded one, and exit non-zero at the first divergence.",
    )
    replay.add_argument("source", metavar="RUN|TRAJECTORY.json", help="run id or file")
    replay.add_argument("--json", action="store_true", help="the comparison as JSON lines")
    replay.add_argument(
        "--continue",
        dest="continue_run",
        action="store_true",
        help="replay into a new run, then hand it to the model (OpenHands' replay)",
    )
    replay.add_argument(
        "--live-mcp",
        action="store_true",
        help="call the MCP servers again (default: their recorded results are reused)",
    )
    replay.add_argument("-n", "--name", metavar="NAME", help="with --continue: the new run id")
    replay.add_argument(
        "-t", "--task", metavar="TEXT", help="with --continue: the task (default: the recorded one)"
    )
    _add_config_options(replay)

    trajectory = sub.add_parser(
        "trajectory", help="export a run as an OpenHands-compatible trajectory (JSON)"
    )
    _add_run_id(trajectory)
    trajectory.add_argument("-o", "--output", metavar="PATH", help="file (default: stdout)")
    _add_config_options(trajectory)

    diff = sub.add_parser(
        "diff",
        help="what a run changed in its workspace (unified diff), whole or per step",
        description="Show what a run changed in its workspace, from its checkpoints: the "
        "whole run (from its start), one step (--step N), or from the end of one step to "
        "the end of another (--from A --to B). Binary files are named.",
    )
    _add_run_id(diff)
    diff.add_argument("--step", type=int, metavar="N", help="what step N changed")
    diff.add_argument("--from", dest="start", type=int, metavar="A", help="from the end of step A")
    diff.add_argument("--to", dest="end", type=int, metavar="B", help="to the end of step B")
    diff.add_argument("--stat", action="store_true", help="files and line counts only")
    _add_config_options(diff)

    patch = sub.add_parser(
        "patch",
        help="the run's change as a patch for `git apply`",
        description="The run's change as a patch `git apply` accepts (binary files "
        "included): relative to the commit the workspace's git repository was at when the "
        "run started, else to the workspace as the run found it.",
    )
    _add_run_id(patch)
    patch.add_argument("-o", "--output", metavar="PATH", help="file (default: stdout)")
    _add_config_options(patch)

    fork = sub.add_parser(
        "fork",
        help="a new run from another's files and conversation at a step",
        description="Start a new run whose history is RUN's up to the end of step N and "
        "whose workspace is RUN's checkpoint of that step, materialised in a new directory; "
        "then the model takes over. RUN is not changed.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_id(fork, "the run to fork")
    fork.add_argument("--at", type=int, required=True, metavar="N", help="the step to fork at")
    fork.add_argument("-n", "--name", metavar="NAME", help="the new run's id (default: generated)")
    _add_instruction(fork, "fork at a finished step")
    fork.add_argument("--json", action="store_true", help="print one JSON event per line on stdout")
    _add_config_options(fork, "the new run's workspace: new or empty (default: beside RUN's)")

    rewind = sub.add_parser(
        "rewind",
        help="take a run back to a step: its workspace and conversation",
        description="Take RUN back to the end of step N in place: its workspace is saved "
        "in a checkpoint, then restored to step N's, and the model's view is cut back to "
        "step N (the log keeps everything). `runhands resume RUN` goes on from there.",
    )
    _add_run_id(rewind)
    rewind.add_argument("--to", dest="to_step", type=int, required=True, metavar="N")
    rewind.add_argument(
        "--force",
        action="store_true",
        help="rewind even if the workspace changed outside the run (saved first)",
    )
    _add_config_options(rewind)

    _add_batch_parser(sub)

    gc = sub.add_parser(
        "gc",
        help="remove containers left behind by runs that crashed or were killed",
        description="Remove the containers runhands created for runs that are no longer "
        "running (never a container runhands did not create, nor one a run keeps alive).",
    )
    _add_config_options(gc)

    config = sub.add_parser(
        "config",
        help="print the effective configuration and where each value comes from",
        description="Print the effective configuration, with each value's source (secrets masked).",
    )
    _add_config_options(config)
    return parser


BATCH_EXIT_CODES_HELP = """\
exit codes:
  0    every task ended (finished, failed or at a limit), none on an infrastructure failure
  2    bad usage, tasks file or configuration: nothing ran
  8    some tasks ended on an infrastructure failure after their retries (sandbox, provider,
       storage, workspace), a runhands error, or a setup that failed: see results.jsonl
  130  interrupted (Ctrl-C or SIGTERM): every run saved; the same command goes on
"""


def _add_batch_parser(sub: Any) -> None:
    batch = sub.add_parser(
        "batch",
        help="run many tasks (a JSON-lines file), N at a time, here or on a Ray cluster",
        description="Run every task of a JSON-lines file, N at a time, each in its own "
        "sandbox and workspace, every run saved under OUT/runs. OUT/results.jsonl gets a line "
        "per task ending; the same command again skips ended tasks, resumes unfinished ones "
        "and retries those that ended on an infrastructure failure.",
        epilog=BATCH_EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("tasks", metavar="TASKS.jsonl", help="one task per line")
    batch.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default="runhands-batch",
        help="results, runs, workspaces, patches and logs (default: ./runhands-batch)",
    )
    batch.add_argument(
        "-w", "--workers", type=int, default=4, metavar="N", help="runs at a time (default 4)"
    )
    batch.add_argument(
        "--format",
        choices=["runhands", "swe-bench"],
        default="runhands",
        help="the tasks file's format (swe-bench: instance lines; writes OUT/preds.jsonl)",
    )
    batch.add_argument(
        "--image-pattern",
        metavar="PATTERN",
        help="swe-bench: the image of an instance, with {instance_id} or {docker_id} "
        "(default swebench/sweb.eval.x86_64.{docker_id}:latest)",
    )
    batch.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="resume a task that ended on an infrastructure failure up to N times (default 2)",
    )
    batch.add_argument(
        "--retry-wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="pause before such a retry (default 10)",
    )
    batch.add_argument(
        "--max-starting",
        type=int,
        default=4,
        metavar="N",
        help="sandboxes starting at once (default 4)",
    )
    batch.add_argument(
        "--eval-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="longest a task's setup or eval may take (default 1800)",
    )
    batch.add_argument("--json", action="store_true", help="one JSON event per task start and end")
    batch.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="run on a Ray cluster (pip install 'runhands[ray]'): auto, or the head's address",
    )
    batch.add_argument(
        "--ray-num-cpus", type=float, default=1.0, metavar="N", help="CPUs per run (default 1)"
    )
    _add_config_options(batch)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config keys set on the command line."""
    pairs = {
        "core.max_iterations": args.max_iterations,
        "core.max_budget_per_task": args.max_budget_per_task,
        "core.max_runtime_seconds": args.max_runtime,
        "core.runtime": args.runtime,
        "sandbox.isolation": args.isolation,
        "core.file_store_path": args.state_dir,
        "core.workspace_base": str(Path(args.directory).absolute()) if args.directory else None,
        "core.log_all_events": _log_level_flag(args.log_level),
        "core.auto_continue": False if args.no_auto_continue else None,
        "sandbox.selected_repo": args.selected_repo,
    }
    return {key: value for key, value in pairs.items() if value is not None}


def _log_level_flag(level: str | None) -> bool | None:
    """--log-level debug logs every event; another known level changes nothing."""
    if level is None:
        return None
    if level.strip().upper() not in LOG_LEVELS:
        _fail(f"--log-level {level}: expected one of debug, info, warning, error, critical")
    return True if is_debug_level(level) else None


def _load(args: argparse.Namespace) -> LoadedConfig:
    loaded = load_config(
        config_file=args.config_file, llm_config_name=args.llm_config, flags=_flags(args)
    )
    if args.agent_config:
        loaded.warnings.append(
            f"--agent-config {args.agent_config} ignored (OpenHands' headless mode ignores it too)"
        )
    return loaded


# A task is an instruction, not data: a bounded read, so `-f /dev/zero`, a FIFO or a huge
# file fails at once instead of hanging or filling the memory (documented in the README).
MAX_TASK_BYTES = 1_000_000


def read_task(args: argparse.Namespace) -> str:
    if args.file:
        task = _read_task_file(args.file)
    elif args.task is not None:
        task = args.task
    elif not sys.stdin.isatty():
        task = _read_task_stdin()
    else:
        raise UserError("no task: give -t TEXT, -f FILE, or pipe the task on stdin")
    if not task.strip():
        raise UserError("the task is empty")
    return task.strip()


def _read_task_file(name: str) -> str:
    """A regular file of at most MAX_TASK_BYTES (a FIFO or a device is never opened)."""
    # Imported here: `--help` and `config` need not load the sandbox package.
    from sandbox.file_reading import read_regular_file

    try:
        data = read_regular_file(name, MAX_TASK_BYTES)
    except OSError as e:
        raise UserError(f"cannot read task file {name}: {_reason(e)}") from None
    return _decode_task(data, f"task file {name}")


def _read_task_stdin() -> str:
    from sandbox.file_reading import describe_size

    data = sys.stdin.buffer.read(MAX_TASK_BYTES + 1)
    if len(data) > MAX_TASK_BYTES:
        raise UserError(f"the task on stdin is larger than {describe_size(MAX_TASK_BYTES)}")
    return _decode_task(data, "the task on stdin")


def _decode_task(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"cannot read {what}: {_reason(e)}") from None


def _optional_task(args: argparse.Namespace) -> str | None:
    try:
        return read_task(args)
    except UserError:  # nothing on stdin: the recorded task will do
        return None


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _fail(message: str) -> NoReturn:
    print(f"runhands: error: {message}", file=sys.stderr)
    raise SystemExit(ExitCode.USAGE)


def cmd_run(args: argparse.Namespace) -> int:
    from controller.run.start import start_run  # keeps `--help` and `config` light

    if args.agent_cls and args.agent_cls not in _AGENTS:
        _fail(f"unknown agent class {args.agent_cls!r}; available: {', '.join(_AGENTS)}")
    try:
        loaded = _load(args)
        replay_source = loaded.config.core.replay_trajectory_path
        # Replaying a trajectory first (OpenHands' replay_trajectory_path): its task is the
        # default, so -t/-f/stdin become optional.
        explicit = args.task is not None or args.file
        task = read_task(args) if explicit or not replay_source else _optional_task(args)
        # Provider keys in .env (e.g. ANTHROPIC_API_KEY) must reach litellm too.
        os.environ.update(dotenv_environment(os.getcwd()))
        interrupts.install()
        if args.name and _saved_run_exists(loaded, args.name):
            # OpenHands restores a session given its name again and goes on with the task.
            print(
                f"runhands: run {args.name!r} exists: continuing it with this task "
                "(pick another name for a new run)",
                file=sys.stderr,
            )
            from controller.run.resume import resume_run

            return resume_run(loaded, args.name, task, json_lines=args.json)
        return start_run(
            loaded, task, run_id=args.name, json_lines=args.json, replay_source=replay_source
        )
    except (ConfigError, UserError) as e:
        _fail(str(e))


def _saved_run_exists(loaded: LoadedConfig, run_id: str) -> bool:
    from state_store.store import EVENTS_FILE, StoreError, validate_run_id

    try:
        validate_run_id(run_id)
    except StoreError:
        return False  # the new run's start names the problem
    root = Path(loaded.config.core.file_store_path).expanduser()
    return (root / run_id / EVENTS_FILE).is_file()


def cmd_resume(args: argparse.Namespace) -> int:
    from controller.run.resume import resume_run

    try:
        instruction = read_task(args) if (args.task is not None or args.file) else None
        loaded = _load(args)
        os.environ.update(dotenv_environment(os.getcwd()))
        interrupts.install()
        return resume_run(loaded, args.run_id, instruction, json_lines=args.json)
    except (ConfigError, UserError) as e:
        _fail(str(e))


def cmd_config(args: argparse.Namespace) -> int:
    try:
        loaded = _load(args)
    except ConfigError as e:
        _fail(str(e))
    for warning in loaded.warnings:
        print(f"runhands: warning: {warning}", file=sys.stderr)
    rows = describe_config(loaded)
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        print(f"{key:<{width}}  {value}  ({source})")
    return 0


def _state_root(args: argparse.Namespace) -> Path:
    try:
        return Path(_load(args).config.core.file_store_path).expanduser()
    except ConfigError as e:
        _fail(str(e))


def cmd_list(args: argparse.Namespace) -> int:
    from controller.cli.views import show_list

    return _guarded(lambda: show_list(_state_root(args), as_json=args.json))


def cmd_inspect(args: argparse.Namespace) -> int:
    from controller.cli.views import show_inspect

    return _guarded(lambda: show_inspect(_state_root(args), args.run_id, as_json=args.json))


def cmd_trajectory(args: argparse.Namespace) -> int:
    from controller.trajectory import export_trajectory

    output = Path(args.output) if args.output else None
    return _guarded(lambda: export_trajectory(_state_root(args), args.run_id, output))


def cmd_replay(args: argparse.Namespace) -> int:
    from controller.run.replay import replay

    if args.continue_run:
        return _continue_replay(args)

    def go() -> int:
        interrupts.install()
        return replay(args.source, _load(args), as_json=args.json, live_mcp=args.live_mcp)

    return _guarded(go)


def _continue_replay(args: argparse.Namespace) -> int:
    from controller.run.start import start_run

    try:
        loaded = _load(args)
        os.environ.update(dotenv_environment(os.getcwd()))
        interrupts.install()
        return start_run(
            loaded, args.task, run_id=args.name, json_lines=args.json, replay_source=args.source
        )
    except (ConfigError, UserError) as e:
        _fail(str(e))


def cmd_diff(args: argparse.Namespace) -> int:
    from controller.cli.changes import Steps, show_diff

    return _guarded(
        lambda: show_diff(
            _state_root(args),
            args.run_id,
            Steps(args.step, args.start, args.end),
            stat=args.stat,
        )
    )


def cmd_patch(args: argparse.Namespace) -> int:
    from controller.cli.changes import show_patch

    return _guarded(lambda: show_patch(_state_root(args), args.run_id, args.output))


def cmd_fork(args: argparse.Namespace) -> int:
    from controller.run.fork import fork_run

    try:
        instruction = read_task(args) if (args.task is not None or args.file) else None
        loaded = _load(args)
        os.environ.update(dotenv_environment(os.getcwd()))
        interrupts.install()
        return fork_run(
            loaded,
            args.run_id,
            args.at,
            name=args.name,
            directory=args.directory,
            instruction=instruction,
            json_lines=args.json,
        )
    except (ConfigError, UserError) as e:
        _fail(str(e))


def cmd_rewind(args: argparse.Namespace) -> int:
    from controller.run.rewind import rewind_run

    return _guarded(lambda: rewind_run(_load(args), args.run_id, args.to_step, force=args.force))


def cmd_batch(args: argparse.Namespace) -> int:
    from controller.batch.command import batch_command

    try:
        return batch_command(args, _load(args), _flags(args))
    except (ConfigError, UserError) as e:
        _fail(str(e))


def cmd_gc(args: argparse.Namespace) -> int:
    from controller.run.gc import collect_garbage

    root = _state_root(args)
    try:
        removed = collect_garbage(root)
    except Exception as e:  # the engine is unreachable: say so, one line
        print(f"runhands: error: cannot reach the Docker engine: {e}", file=sys.stderr)
        return ExitCode.SANDBOX
    for name in removed:
        print(name)
    print(f"runhands: removed {len(removed)} leftover container(s)", file=sys.stderr)
    return 0


def _guarded(action: Callable[[], int]) -> int:
    """Readers and replay: a bad run id or a damaged store is a one-line error, exit 2."""
    from controller.agent.timeline import NoSuchStep
    from state_store.checkpoints import CheckpointError
    from state_store.store import StoreError

    try:
        return action()
    except (StoreError, ConfigError, UserError, CheckpointError, NoSuchStep) as e:
        _fail(str(e))


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "resume": cmd_resume,
    "list": cmd_list,
    "inspect": cmd_inspect,
    "replay": cmd_replay,
    "trajectory": cmd_trajectory,
    "diff": cmd_diff,
    "patch": cmd_patch,
    "fork": cmd_fork,
    "rewind": cmd_rewind,
    "batch": cmd_batch,
    "gc": cmd_gc,
    "config": cmd_config,
}


def main(argv: list[str] | None = None) -> int:
    make_undumpable()  # before any sandbox starts: see controller/cli/hardening.py
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv and not sys.stdin.isatty():
        argv = ["run"]  # OpenHands reads the task from stdin when no -t/-f is given
    # OpenHands' `python -m openhands.core.main -t ...` has no subcommand: same here.
    if argv and argv[0].startswith("-") and argv[0] not in {"-h", "--help", "-v", "--version"}:
        argv.insert(0, "run")
    parser = build_parser()
    args = parser.parse_args(argv)
    command = _COMMANDS.get(args.command)
    if command is None:
        parser.print_help()
        return ExitCode.USAGE
    return command(args)
