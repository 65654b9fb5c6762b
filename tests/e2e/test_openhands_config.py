"""OpenHands parity of config.toml, environment variables and flags, through the real CLI.

Expected names and behaviour are OpenHands' (V0 headless, commit 156d068), as quoted in each
test and gathered in docs/parity/config-env-flags.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from controller import __version__
from controller.config import ENV_NAMES
from controller.config.mcp import ENV_NAMES as MCP_ENV_NAMES
from tests.conftest import TEST_API_KEY, Cli
from tests.scripted_model import bash, finish, text

pytestmark = pytest.mark.e2e

DOC = Path(__file__).parents[2] / "docs" / "parity" / "config-env-flags.md"


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("runhands: warning:")]


def _rows(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if line.strip()}


# ---- config.toml: what OpenHands only warns about ---------------------------------------------


def test_openhands_only_toml_keys_are_one_warning_and_typos_of_ours_still_fail(cli: Cli) -> None:
    # OpenHands (utils.py: load_from_toml) warns 'Unknown config key "runtime_extra_deps" in
    # [core] section', skips an [llm.NAME] it cannot parse ('Cannot parse [cheap] config from
    # toml. This section will be skipped.'), and reads [condenser.NAME] only in evaluation
    # scripts (get_condenser_config_arg).
    (cli.workspace / "config.toml").write_text(
        '[core]\nruntime_extra_deps = "pip install x"\nmax_iterations = 7\n'
        '[llm.cheap]\nmodel = "openai/cheap"\npresence_penalty = 0.5\n'
        '[condenser.summ]\ntype = "llm"\n'
    )
    result = cli.run("config")
    assert result.returncode == 0, result.stderr
    (warning,) = _warnings(result.stderr)
    for name in ("core.runtime_extra_deps", "llm.cheap.presence_penalty", "condenser.summ"):
        assert name in warning
    assert "7" in _rows(result.stdout)["core.max_iterations"]
    assert "openai/cheap" in _rows(result.stdout)["llm_configs.cheap.model"]

    (cli.workspace / "config.toml").write_text("[core]\nmax_iteration = 7\n")
    typo = cli.run("config")
    assert typo.returncode == 2
    assert typo.stderr.strip() == (
        "runhands: error: config.toml [core] max_iteration: unknown key "
        "(did you mean max_iterations?)"
    )


# ---- environment variables ------------------------------------------------------------------


def _doc_env_names() -> set[str]:
    """The 195 names OpenHands' load_from_env looks up (the doc's two tables)."""
    names = set(re.findall(r"^\| \d+ \| `([A-Z_]+)` \|", DOC.read_text(), re.MULTILINE))
    assert len(names) == 195
    return names


def test_every_openhands_variable_runhands_does_not_read_is_named_once(cli: Cli) -> None:
    # Each name OpenHands derives from its config classes (utils.py: load_from_env) either
    # sets a runhands setting or is named in one warning line: none is dropped silently.
    # LOG_LEVEL and DEBUG are the logger's (logger.py), tested below; MCP_* are read
    # (tests/controller/test_mcp_config.py).
    ignored = sorted(_doc_env_names() - set(ENV_NAMES) - set(MCP_ENV_NAMES) - {"DEBUG"})
    result = cli.run("config", env=dict.fromkeys(ignored, "1"))
    assert result.returncode == 0, result.stderr
    (warning,) = _warnings(result.stderr)
    assert warning.startswith(
        "runhands: warning: environment: ignoring OpenHands variables runhands does not use: "
    )
    assert warning.split(": ")[-1].split(", ") == ignored


def test_a_run_names_ignored_openhands_variables_once(cli: Cli, scripted) -> None:
    model = scripted([finish()])
    env = {"AGENT_ENABLE_BROWSING": "false", "SECURITY_CONFIRMATION_MODE": "true"}
    result = cli.run("run", "-t", "task", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert _warnings(result.stderr) == [
        "runhands: warning: environment: ignoring OpenHands variables runhands does not use: "
        "AGENT_ENABLE_BROWSING, SECURITY_CONFIRMATION_MODE"
    ]


@pytest.mark.parametrize(
    ("env", "args", "source"),
    [
        # logger.py: DEBUG = os.getenv('DEBUG', 'False').lower() in ['true', '1', 'yes']
        ({"DEBUG": "yes"}, (), "environment DEBUG"),
        # logger.py: LOG_LEVEL = os.getenv('LOG_LEVEL', 'INFO').upper()
        ({"LOG_LEVEL": "debug"}, (), "environment LOG_LEVEL"),
        # arg_utils.py: --log-level (parsed, unused by OpenHands' headless main)
        ({}, ("--log-level", "DEBUG"), "flag --log-level"),
    ],
)
def test_debug_level_logs_every_event(cli: Cli, scripted, env, args, source) -> None:
    model = scripted([bash("echo ok"), finish()])
    result = cli.run("run", *args, "-t", "task", model=model, env=env)
    assert result.returncode == 0, result.stderr
    logged = [line for line in result.stderr.splitlines() if line.startswith("[event]")]
    assert any('"kind":"observation"' in line for line in logged)
    assert TEST_API_KEY not in result.stderr
    shown = cli.run("config", *args, env=env)
    assert source in _rows(shown.stdout)["core.log_all_events"]


def test_other_log_levels_change_nothing_and_a_bad_one_is_named(cli: Cli) -> None:
    assert cli.run("config", env={"LOG_LEVEL": "warning", "DEBUG": "express:*"}).stderr == ""
    bad = cli.run("config", env={"LOG_LEVEL": "loud"})
    assert bad.returncode == 0
    assert "LOG_LEVEL='loud' ignored" in bad.stderr
    flag = cli.run("config", "--log-level", "loud")
    assert flag.returncode == 2
    assert flag.stderr.strip().endswith("expected one of debug, info, warning, error, critical")


def test_request_parameters_and_aws_credentials_reach_the_model_masked(cli: Cli, scripted) -> None:
    # llm_config.py: top_k, seed, aws_* fields; OpenHands sends them to litellm.completion
    # (aws_* through AWS_* variables set in model_post_init).
    secret = "aws-Secret/Access+Key0123456789"
    env = {
        "LLM_TOP_K": "40",
        "LLM_SEED": "7",
        "LLM_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE0123456",
        "LLM_AWS_SECRET_ACCESS_KEY": secret,
        "LLM_AWS_REGION_NAME": "eu-west-1",
        "LLM_DROP_PARAMS": "true",
    }
    model = scripted([bash("echo ok"), finish()])
    result = cli.run("run", "-t", "task", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert (model.requests[0]["top_k"], model.requests[0]["seed"]) == (40, 7)
    # Only Bedrock/SageMaker take AWS keys: litellm never sends them to an OpenAI endpoint.
    assert secret not in json.dumps(model.requests)
    shown = cli.run("config", env=env)
    assert secret not in shown.stdout + shown.stderr
    assert "eu-west-1" in _rows(shown.stdout)["llm.aws_region_name"]
    for path in cli.state_dir.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


@pytest.mark.parametrize(
    ("name", "shown", "warned"),
    [
        # condenser_config.py: ConversationWindowCondenserConfig.type = 'conversation_window'
        ("conversation_window", "conversation_window", False),
        ("recent", "recent", False),
        ("amortized", "amortized", False),
        ("observation_masking", "observation_masking", False),
        ("browser_output_masking", "browser_output_masking", False),
        ("noop", "noop", False),
        ("llm", "llm", False),
        # PipelineCondenserConfig: a chain runhands does not have
        ("pipeline", "pipeline", True),
    ],
)
def test_openhands_condenser_types(cli: Cli, name: str, shown: str, warned: bool) -> None:
    result = cli.run("config", env={"CONDENSER_TYPE": name})
    assert result.returncode == 0, result.stderr
    assert shown in _rows(result.stdout)["condenser.type"]
    assert bool(_warnings(result.stderr)) == warned


def test_startup_env_vars_accept_openhands_python_literals(cli: Cli, scripted) -> None:
    # utils.py: load_from_env parses dict fields with ast.literal_eval.
    model = scripted([bash("echo A=$A B=$B"), finish()])
    env = {"SANDBOX_RUNTIME_STARTUP_ENV_VARS": "{'A': '1', \"B\": 'two'}"}
    result = cli.run("run", "-t", "task", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert "A=1 B=two" in json.dumps(model.requests[1]["messages"])
    # A literal only: no call is ever evaluated.
    bad = cli.run("config", env={"SANDBOX_RUNTIME_STARTUP_ENV_VARS": "{'A': __import__('os')}"})
    assert bad.returncode == 2
    assert "expected a JSON or Python object of strings" in bad.stderr


def test_use_host_network_is_docker_network_mode_host(cli: Cli, scripted) -> None:
    # docker_runtime.py: network_mode='host' if self.config.sandbox.use_host_network
    env = {"SANDBOX_USE_HOST_NETWORK": "true"}
    shown = cli.run("config", env=env)
    assert "true" in _rows(shown.stdout)["sandbox.use_host_network"]
    # The docker runtime's own check names what host networking means; with network off
    # the two settings contradict each other.
    off = cli.run(
        "run", "--runtime", "docker", "-t", "x",
        env={**env, "SANDBOX_NETWORK": "off", "SANDBOX_RUNTIME_CONTAINER_IMAGE": "busybox"},
    )  # fmt: skip
    assert off.returncode == 2
    assert "network_mode is 'host'" in off.stderr
    # A local run names it as a docker-only setting it ignores.
    local = cli.run("run", "-t", "x", env=env, model=scripted([finish()]))
    assert local.returncode == 0, local.stderr
    assert "used only by the docker runtime, ignored: sandbox.use_host_network" in local.stderr


def test_use_host_network_gives_the_container_the_hosts_interfaces(cli: Cli, scripted) -> None:
    import os

    from tests.docker_image import require_base_image

    env = {
        "RUNTIME": "docker",
        "SANDBOX_RUNTIME_CONTAINER_IMAGE": require_base_image(),
        "SANDBOX_USE_HOST_NETWORK": "true",
    }
    model = scripted([bash("echo NETS: $(ls /sys/class/net) :NETS"), finish()])
    result = cli.run("run", "-t", "x", env=env, model=model, timeout=300)
    assert result.returncode == 0, result.stderr
    # The last match: the command's output (the first is the command itself).
    seen = re.findall(r"NETS: (\w[^$]*?) :NETS", json.dumps(model.requests[1]["messages"]))
    assert seen
    # veth pairs come and go with other containers; the host's own interfaces (docker0...)
    # are only visible from its network namespace (a bridged container has eth0 and lo).
    host = {name for name in os.listdir("/sys/class/net") if not name.startswith("veth")}
    assert host <= set(seen[-1].split())


def test_selected_repo_is_recorded_and_named_unless_the_directory_is_its_checkout(
    cli: Cli, scripted
) -> None:
    # core/setup.py: initialize_repository_for_runtime clones SANDBOX_SELECTED_REPO; runhands
    # never clones: a working directory that is a checkout of it is the repository.
    model = scripted([finish(), finish()])
    result = cli.run("run", "--selected-repo", "octo/demo", "-n", "r1", "-t", "x", model=model)
    assert result.returncode == 0, result.stderr
    assert "selected repo octo/demo is recorded, not cloned" in result.stderr
    saved = json.loads((cli.state_dir / "r1" / "config.json").read_text())
    assert saved["config"]["sandbox"]["selected_repo"] == "octo/demo"
    (cli.workspace / ".git").mkdir()
    (cli.workspace / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = git@github.com:Octo/demo.git\n'
    )
    env = {"SANDBOX_SELECTED_REPO": "octo/demo"}
    checkout = cli.run("run", "-t", "x", model=model, env=env)
    assert checkout.returncode == 0, checkout.stderr
    assert "selected repo" not in checkout.stderr
    shown = cli.run("config", env=env)
    assert "environment SANDBOX_SELECTED_REPO" in _rows(shown.stdout)["sandbox.selected_repo"]


# ---- flags -----------------------------------------------------------------------------------


def test_openhands_flags_are_accepted(cli: Cli) -> None:
    # arg_utils.py: --agent-config is parsed and never read (no reader in openhands/).
    result = cli.run("config", "--agent-config", "CodeActAgent", "--log-level", "info")
    assert result.returncode == 0, result.stderr
    assert _warnings(result.stderr) == [
        "runhands: warning: --agent-config CodeActAgent ignored "
        "(OpenHands' headless mode ignores it too)"
    ]


def test_version_after_other_flags(cli: Cli) -> None:
    # arg_utils.py: -v/--version is action='version' in the same parser as -t.
    result = cli.run("-t", "some task", "-v")
    assert (result.returncode, result.stdout.strip()) == (0, f"runhands {__version__}")


def test_bare_runhands_reads_the_task_from_stdin(cli: Cli, scripted) -> None:
    # io/io.py: read_task reads stdin when there is no -t/-f and stdin is not a TTY.
    model = scripted([finish()])
    result = cli.run(model=model, stdin="the piped task\n")
    assert result.returncode == 0, result.stderr
    assert "the piped task" in json.dumps(model.requests[0]["messages"])


def test_no_auto_continue_ends_the_run_at_a_text_answer(cli: Cli, scripted) -> None:
    # core/main.py: with --no-auto-continue there is no fake user response; headless, the
    # agent's answer is the end (without the flag it is answered "please continue").
    model = scripted([text("Here is my answer."), finish()])
    result = cli.run("run", "--no-auto-continue", "-t", "task", model=model)
    assert result.returncode == 0, result.stderr
    assert len(model.requests) == 1
    assert "without a tool call" in result.stderr
    assert result.stdout == "Here is my answer.\n"  # the answer, as a finish message is


# ---- SANDBOX_VOLUMES ---------------------------------------------------------------------------


def test_a_volume_that_does_not_exist_is_refused_by_config_and_run_alike(cli: Cli) -> None:
    env = {"SANDBOX_VOLUMES": f"{cli.workspace / 'missing'}:/workspace:rw"}
    config = cli.run("config", env=env)
    run = cli.run("run", "-t", "task", env=env)
    assert config.returncode == run.returncode == 2
    assert config.stderr == run.stderr
    assert "host path does not exist" in config.stderr
