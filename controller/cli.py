"""The `runhands` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from controller import __version__
from controller.config import (
    ConfigError,
    LoadedConfig,
    config_options,
    describe_config,
    dotenv_environment,
    load_config,
)
from controller.outcome import ExitCode

_SUBCOMMANDS = {"run", "config"}
_AGENTS = {"CodeActAgent"}  # the only agent; the flag exists for OpenHands command lines

EXIT_CODES_HELP = """\
exit codes:
  0    finished: the agent called finish
  1    the agent failed (malformed tool calls, never called a tool)
  2    bad usage or configuration: nothing ran
  3    a limit was reached (max iterations or budget)
  4    the sandbox failed
  5    the model provider failed (after retries) or refused the request
  6    internal error in runhands
  130  interrupted (Ctrl-C or SIGTERM)
"""


def settings_help() -> str:
    """Every setting, for `run --help`: environment variable, config.toml key, default."""
    lines = ["settings (environment variable = config.toml [section] key; default):"]
    for option in config_options():
        section, _, key = option.key.partition(".")
        lines.append(f"  {option.env:<34} [{section}] {key}; {option.default}")
    return "\n".join(lines) + "\n"


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (flags win over environment and files)")
    group.add_argument(
        "--config-file", metavar="PATH", help="TOML configuration (default: ./config.toml)"
    )
    group.add_argument(
        "-l", "--llm-config", metavar="NAME", help="use the [llm.NAME] section as the model"
    )
    group.add_argument(
        "-i", "--max-iterations", type=int, metavar="N", help="step limit (default 500)"
    )
    group.add_argument(
        "-b", "--max-budget-per-task", type=float, metavar="USD", help="cost limit in dollars"
    )
    group.add_argument("--runtime", choices=["local", "docker"], help="sandbox (default local)")
    group.add_argument(
        "--state-dir", metavar="DIR", help="where runs are saved (default ~/.openhands-state)"
    )
    group.add_argument(
        "-d", "--directory", metavar="DIR", help="the agent's working directory (default: cwd)"
    )


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
    _add_config_options(run)

    config = sub.add_parser(
        "config",
        help="print the effective configuration and where each value comes from",
        description="Print the effective configuration, with each value's source (secrets masked).",
    )
    _add_config_options(config)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config keys set on the command line."""
    pairs = {
        "core.max_iterations": args.max_iterations,
        "core.max_budget_per_task": args.max_budget_per_task,
        "core.runtime": args.runtime,
        "core.file_store_path": args.state_dir,
        "core.workspace_base": str(Path(args.directory).resolve()) if args.directory else None,
    }
    return {key: value for key, value in pairs.items() if value is not None}


def _load(args: argparse.Namespace) -> LoadedConfig:
    return load_config(
        config_file=args.config_file, llm_config_name=args.llm_config, flags=_flags(args)
    )


def read_task(args: argparse.Namespace) -> str:
    if args.file:
        try:
            task = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read task file {args.file}: {_reason(e)}") from None
    elif args.task is not None:
        task = args.task
    elif not sys.stdin.isatty():
        task = sys.stdin.read()
    else:
        raise ValueError("no task: give -t TEXT, -f FILE, or pipe the task on stdin")
    if not task.strip():
        raise ValueError("the task is empty")
    return task.strip()


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _fail(message: str) -> NoReturn:
    print(f"runhands: error: {message}", file=sys.stderr)
    raise SystemExit(ExitCode.USAGE)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops a run like Ctrl-C: saved, then exit 130


def cmd_run(args: argparse.Namespace) -> int:
    from controller.runner import UsageError, start_run  # keeps `--help` and `config` light

    if args.agent_cls and args.agent_cls not in _AGENTS:
        _fail(f"unknown agent class {args.agent_cls!r}; available: {', '.join(_AGENTS)}")
    try:
        task = read_task(args)
        loaded = _load(args)
        # Provider keys in .env (e.g. ANTHROPIC_API_KEY) must reach litellm too.
        os.environ.update(dotenv_environment(os.getcwd()))
        signal.signal(signal.SIGTERM, _on_sigterm)
        return start_run(loaded, task, run_id=args.name, json_lines=args.json)
    except (ValueError, ConfigError, UsageError) as e:
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # OpenHands' `python -m openhands.core.main -t ...` has no subcommand: same here.
    if argv and argv[0].startswith("-") and argv[0] not in {"-h", "--help", "-v", "--version"}:
        argv.insert(0, "run")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "config":
        return cmd_config(args)
    parser.print_help()
    return ExitCode.USAGE
