"""The CLI around a run: config display, named model sections, logging, entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller import __version__
from tests.conftest import TEST_API_KEY, Cli
from tests.scripted_model import bash, finish

pytestmark = pytest.mark.e2e


def test_config_shows_each_value_with_its_source_and_masks_the_key(cli: Cli) -> None:
    (cli.workspace / "config.toml").write_text("[core]\nmax_iterations = 42\n")
    result = cli.run("config", "-b", "3", env={"LLM_TEMPERATURE": "0.5"})
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "42" in rows["core.max_iterations"] and "config.toml" in rows["core.max_iterations"]
    assert "0.5" in rows["llm.temperature"] and "LLM_TEMPERATURE" in rows["llm.temperature"]
    assert "flag" in rows["core.max_budget_per_task"]
    assert "default" in rows["sandbox.timeout"]
    assert TEST_API_KEY not in result.stdout
    assert TEST_API_KEY[-4:] in rows["llm.api_key"]


def test_an_openhands_config_loads_with_one_warning(cli: Cli, scripted) -> None:
    model = scripted([bash("echo ok"), finish()])
    (cli.workspace / "config.toml").write_text(
        "[core]\nworkspace_base = './'\njwt_secret = 'x'\nenable_browser = true\n"
        "max_iterations = 10\n\n[llm]\nembedding_model = 'local'\n\n"
        "[security]\nconfirmation_mode = false\n\n[agent.CodeActAgent]\nenable_jupyter = false\n"
    )
    result = cli.run("run", "-t", "task", model=model, fresh=True)  # `python -m controller`
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    for name in ("jwt_secret", "enable_browser", "embedding_model", "security"):
        assert name in warnings[0]


def test_named_llm_section_is_selected_with_l(cli: Cli, scripted) -> None:
    model = scripted([finish("via named config")])
    (cli.workspace / "config.toml").write_text(
        f'[llm]\nmodel = "openai/default-model"\n\n[llm.small]\nmodel = "openai/small-model"\n'
        f'base_url = "{model.base_url}"\napi_key = "sk-small-section-key"\n'
    )
    result = cli.run("run", "-l", "small", "-t", "task", env={"LLM_TEMPERATURE": "0.7"})
    assert result.returncode == 0, result.stderr
    assert model.requests[0]["model"] == "small-model"
    # OpenHands: -l replaces the [llm] object LLM_* were applied to (core/main.py after
    # utils.py: load_from_env), so they are lost; runhands names them.
    assert "temperature" not in model.requests[0] or model.requests[0]["temperature"] == 0.0
    warning = next(line for line in result.stderr.splitlines() if "-l small" in line)
    assert "LLM_API_KEY" in warning and "LLM_TEMPERATURE" in warning
    assert "LLM_MODEL" in warning and TEST_API_KEY not in result.stderr


def test_log_all_events_prints_every_event(cli: Cli, scripted) -> None:
    model = scripted([bash("echo ok"), finish()])
    result = cli.run("run", "-t", "task", model=model, env={"LOG_ALL_EVENTS": "true"})
    assert result.returncode == 0, result.stderr
    logged = [line for line in result.stderr.splitlines() if line.startswith("[event]")]
    kinds = {
        kind
        for line in logged
        for kind in ("transition", "model_response", "observation")
        if f'"kind":"{kind}"' in line
    }
    assert kinds == {"transition", "model_response", "observation"}
    assert TEST_API_KEY not in result.stderr


def test_version_and_console_script(cli: Cli) -> None:
    script = Path(sys.executable).with_name("runhands")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.stdout.strip() == f"runhands {__version__}"
    assert cli.run("-v").stdout.strip() == f"runhands {__version__}"


def test_help_lists_every_setting(cli: Cli) -> None:
    result = cli.run("run", "--help")
    for name in (
        "LLM_MODEL",
        "LLM_API_KEY",
        "SANDBOX_VOLUMES",
        "MAX_ITERATIONS",
        "LOG_ALL_EVENTS",
        "FILE_STORE_PATH",
        "--max-budget-per-task",
        "exit codes",
    ):
        assert name in result.stdout
