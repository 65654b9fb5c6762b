"""What a run needs before it starts, shared by `run`, `resume` and `replay`: the
working directory, the model check, the secrets to keep out, the sandbox's environment and
the progress reporter."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from controller.agent.reporting import Reporter
from controller.config import AppConfig, LoadedConfig, secrets_of
from controller.config.redaction import SANDBOX_ENV_PREFIX
from controller.config.volumes import VolumeError, parse_volumes, workspace_host_path
from controller.errors import UserError

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
    "sandbox.network_mode",
    "sandbox.use_host_network",
    "sandbox.memory_limit",
    "sandbox.cpus",
)


def resolve_workdir(config: AppConfig) -> str:
    """-d / [core] workspace_base, else the host side of the /workspace mount, else cwd."""
    try:
        volumes = parse_volumes(config.sandbox.volumes or "")
    except VolumeError as e:
        raise UserError(str(e)) from None
    mount = config.core.workspace_mount_path_in_sandbox
    chosen = config.core.workspace_base or workspace_host_path(volumes, mount)
    given = Path(chosen or os.getcwd()).expanduser()
    try:
        path = given.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError on Python 3.11)
        raise UserError(f"working directory {given} is a symlink loop") from None
    if not path.is_dir():
        raise UserError(f"working directory {path} does not exist or is not a directory")
    return str(path)


def check_model(config: AppConfig, environ: dict[str, str]) -> None:
    llm = config.llm
    if not llm.model:
        raise UserError(
            "no model configured: set LLM_MODEL (e.g. anthropic/claude-sonnet-4-5) "
            "or [llm] model in config.toml"
        )
    provider = llm.model.split("/", 1)[0].lower() if "/" in llm.model else ""
    provider_key = f"{provider.upper()}_API_KEY" if provider else "OPENAI_API_KEY"
    keyless = provider in _KEYLESS_PROVIDERS or llm.aws_access_key_id  # Bedrock: AWS keys
    if llm.api_key or llm.base_url or keyless or environ.get(provider_key):
        return
    raise UserError(
        f"no API key for {llm.model}: set LLM_API_KEY (or [llm] api_key in config.toml), "
        "or LLM_BASE_URL for a local model server"
    )


# The only variables of runhands' environment the sandbox gets (and LC_*): an allow-list,
# since no name rule tells DATABASE_URL=postgres://u:password@h or CI_JOB_JWT apart.
_SANDBOX_ENV_ALLOWED = ("PATH", "HOME", "LANG", "TERM", "USER", "SHELL", "TZ")


def sandbox_environment(
    config: AppConfig, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The local sandbox's environment: the allow-list of runhands' own, then what the
    user passes on purpose (`passed_environment`). HOME is replaced by a private one when
    the sandbox is isolated."""
    env = os.environ if environ is None else environ
    kept = {
        name: value
        for name, value in env.items()
        if name in _SANDBOX_ENV_ALLOWED or name.startswith("LC_")
    }
    return kept | passed_environment(config, env)


def passed_environment(config: AppConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """What the user passes to the sandbox on purpose: `[sandbox] runtime_startup_env_vars`,
    then each `SANDBOX_ENV_<NAME>=v` as `NAME=v` (OpenHands' prefix), which wins."""
    passed = dict(config.sandbox.runtime_startup_env_vars)
    for name, value in environ.items():
        if name.startswith(SANDBOX_ENV_PREFIX) and len(name) > len(SANDBOX_ENV_PREFIX):
            passed[name.removeprefix(SANDBOX_ENV_PREFIX)] = value
    return passed


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


def _not_used_here(loaded: LoadedConfig) -> list[str]:
    """Docker settings given for a local run, and a selected repository runhands cannot
    use, are named, never silently dropped."""
    notes = _selected_repo_notes(loaded.config)
    if loaded.config.core.runtime != "local":
        return notes
    chosen = [key for key in DOCKER_ONLY if loaded.sources.get(key, "default") != "default"]
    if chosen:
        notes.append(f"used only by the docker runtime, ignored: {', '.join(chosen)}")
    return notes


def _selected_repo_notes(config: AppConfig) -> list[str]:
    """OpenHands clones `--selected-repo OWNER/REPO` into the sandbox (core/setup.py:
    initialize_repository_for_runtime). runhands never clones: the working directory is
    the repository, fine when it is a checkout of it, else named on stderr."""
    repo = config.sandbox.selected_repo
    if not repo:
        return []
    try:
        workdir = resolve_workdir(config)
    except UserError:
        return []  # the run reports the bad directory itself
    if _is_checkout_of(workdir, repo):
        return []
    return [
        f"selected repo {repo} is recorded, not cloned: runhands works on {workdir}, which is "
        "not a checkout of it (clone it and pass -d)"
    ]


_REMOTE_URL = re.compile(r"^\s*url\s*=\s*(\S+)\s*$", re.MULTILINE)


def _is_checkout_of(workdir: str, repo: str) -> bool:
    """A remote of the directory's git repository ends in OWNER/REPO (https or ssh URL).
    Its `.git/config` is read as text: git is not run in a directory the agent may write."""
    try:
        text = (Path(workdir) / ".git" / "config").read_text(errors="replace")
    except OSError:
        return False
    wanted = repo.strip("/").removesuffix(".git").lower()
    for url in _REMOTE_URL.findall(text):
        path = url.rstrip("/").removesuffix(".git").lower()
        if path.endswith(("/" + wanted, ":" + wanted)):
            return True
    return False
