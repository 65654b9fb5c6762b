"""Configuration loading: layers, sources, OpenHands compatibility, errors, secrets."""

from pathlib import Path

import msgspec
import pytest

from controller.cli import main as cli_main
from controller.config import (
    ENV_NAMES,
    FLAG_KEYS,
    AppConfig,
    ConfigError,
    LoadedConfig,
    config_options,
    describe_config,
    dotenv_environment,
    load_config,
    public_config,
    secrets_of,
)

# A realistic OpenHands config.toml: sections and values from OpenHands' config.template.toml,
# uncommented the way users do.
OPENHANDS_TOML = """
[core]
workspace_base = "./workspace"
cache_dir = "/tmp/cache"
debug = false
save_trajectory_path = "./trajectories"
file_store_path = "/tmp/file_store"
file_store = "local"
enable_browser = true
max_budget_per_task = 0.0
max_iterations = 100
workspace_mount_path_in_sandbox = "/workspace"
run_as_openhands = true
runtime = "docker"
default_agent = "CodeActAgent"
jwt_secret = ""

[llm]
aws_region_name = ""
api_key = "fake-openhands-template-key-0042"
reasoning_effort = "medium"
max_message_chars = 10000
model = "claude-sonnet-4-5-20250929"
num_retries = 8
retry_max_wait = 120
retry_min_wait = 15
retry_multiplier = 2.0
drop_params = false
modify_params = true
caching_prompt = true
temperature = 0.0
top_p = 1.0
disable_vision = true
native_tool_calling = true

[llm.draft_editor]
correct_num = 5

[llm.gpt4o-mini]
api_key = "fake-mini-key-abcdefgh"
model = "gpt-4o"

[agent]
enable_browsing = true
enable_llm_editor = false
enable_editor = true
enable_jupyter = true
enable_cmd = true
enable_think = true
enable_finish = true
enable_history_truncation = true
enable_condensation_request = false

[agent.RepoExplorerAgent]
llm_config = 'gpt3'

[agent.CustomAgent]
classpath = "my_package.my_module.MyCustomAgent"

[sandbox]
timeout = 120
user_id = 1000
base_container_image = "nikolaik/python-nodejs:python3.12-nodejs22"
use_host_network = false
enable_auto_lint = false
initialize_plugins = true
runtime_startup_env_vars = {}
keep_runtime_alive = false

[security]
confirmation_mode = false
security_analyzer = "llm"

[condenser]
type = "noop"
llm_config = "condenser"

[kubernetes]
namespace = "default"

[mcp]
sse_servers = ["http://localhost:8080/mcp/sse"]

[model_routing]
router_name = "noop_router"
"""


class Layout:
    """A working directory and a user config directory, both empty to start with."""

    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path / "project"
        self.user_dir = tmp_path / "user-config"
        self.cwd.mkdir()
        self.user_dir.mkdir()

    @property
    def project_file(self) -> Path:
        return self.cwd / "config.toml"

    @property
    def user_file(self) -> Path:
        return self.user_dir / "config.toml"

    def write(self, path: Path, text: str) -> Path:
        path.write_text(text)
        return path

    def load(self, environ: dict[str, str] | None = None, **kwargs: object) -> LoadedConfig:
        return load_config(
            environ=environ or {},
            cwd=str(self.cwd),
            user_config_dir=str(self.user_dir),
            **kwargs,  # type: ignore[arg-type]
        )

    def error(self, environ: dict[str, str] | None = None, **kwargs: object) -> str:
        with pytest.raises(ConfigError) as info:
            self.load(environ, **kwargs)
        message = str(info.value)
        assert "\n" not in message
        return message


@pytest.fixture
def lay(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


# ---- defaults and precedence ------------------------------------------------------------------


def test_defaults_without_any_source(lay: Layout) -> None:
    loaded = lay.load()
    assert loaded.config == AppConfig()
    assert loaded.config.core.runtime == "local"
    assert loaded.config.core.max_iterations == 500
    assert loaded.config.core.file_store_path == "~/.openhands-state"
    assert loaded.warnings == []
    assert set(loaded.sources.values()) == {"default"}
    assert "llm.model" in loaded.sources and "sandbox.soft_timeout" in loaded.sources


def test_precedence_of_every_layer(lay: Layout) -> None:
    lay.write(
        lay.user_file,
        "[core]\nmax_iterations = 11\n[llm]\nnum_retries = 1\ntemperature = 0.1\n"
        "top_p = 0.5\n[sandbox]\ntimeout = 30\n",
    )
    lay.write(
        lay.project_file,
        "[core]\nmax_iterations = 12\n[llm]\nnum_retries = 2\ntemperature = 0.2\ntop_p = 0.6\n",
    )
    lay.write(lay.cwd / ".env", "MAX_ITERATIONS=13\nLLM_NUM_RETRIES=3\nLLM_TEMPERATURE=0.3\n")
    environ = {"MAX_ITERATIONS": "14", "LLM_NUM_RETRIES": "4"}
    loaded = lay.load(environ, flags={"core.max_iterations": 15})
    cfg, src = loaded.config, loaded.sources
    assert (cfg.core.max_iterations, src["core.max_iterations"]) == (15, "flag --max-iterations")
    assert (cfg.llm.num_retries, src["llm.num_retries"]) == (4, "environment LLM_NUM_RETRIES")
    assert (cfg.llm.temperature, src["llm.temperature"]) == (0.3, ".env LLM_TEMPERATURE")
    assert (cfg.llm.top_p, src["llm.top_p"]) == (0.6, str(lay.project_file))
    assert (cfg.sandbox.timeout, src["sandbox.timeout"]) == (30, str(lay.user_file))
    assert (cfg.agent.enable_think, src["agent.enable_think"]) == (True, "default")


def test_dotenv_never_overrides_the_environment(lay: Layout) -> None:
    lay.write(lay.cwd / ".env", "LLM_MODEL=from-dotenv\nLLM_BASE_URL=http://dotenv\n")
    loaded = lay.load({"LLM_MODEL": "from-env"})
    assert loaded.config.llm.model == "from-env"
    assert loaded.sources["llm.model"] == "environment LLM_MODEL"
    assert loaded.config.llm.base_url == "http://dotenv"
    assert loaded.sources["llm.base_url"] == ".env LLM_BASE_URL"


def test_dotenv_environment_lists_only_unset_variables(lay: Layout) -> None:
    lay.write(lay.cwd / ".env", "OPENAI_API_KEY=sk-x\nHOME=/elsewhere\nBARE\n")
    assert dotenv_environment(str(lay.cwd), {"HOME": "/home/me"}) == {"OPENAI_API_KEY": "sk-x"}


def test_explicit_config_file_replaces_the_default_one(lay: Layout) -> None:
    lay.write(lay.project_file, "[core]\nmax_iterations = 7\n")
    other = lay.write(lay.cwd / "other.toml", "[core]\nmax_iterations = 8\n")
    loaded = lay.load(config_file="other.toml")
    assert loaded.config.core.max_iterations == 8
    assert loaded.sources["core.max_iterations"] == str(other)


def test_missing_default_file_is_fine_but_missing_explicit_file_is_an_error(
    lay: Layout,
) -> None:
    assert lay.load().config == AppConfig()
    assert lay.error(config_file="nope.toml") == "--config-file nope.toml: file not found"


def test_malformed_toml_names_file_and_line(lay: Layout) -> None:
    lay.write(lay.project_file, "[core]\nmax_iterations = = 3\n")
    message = lay.error()
    assert message.startswith("config.toml: invalid TOML: ")
    assert "line 2" in message


# ---- named [llm.NAME] sections ------------------------------------------------------------------

NAMED_TOML = """
[llm]
model = "base-model"
temperature = 0.5
api_key = "sk-base-key-123456"

[llm.fast]
model = "fast-model"

[llm.careful]
model = "careful-model"
temperature = 0.0
"""


def test_named_llm_sections_inherit_from_llm(lay: Layout) -> None:
    lay.write(lay.project_file, NAMED_TOML)
    loaded = lay.load()
    fast = loaded.config.llm_configs["fast"]
    assert (fast.model, fast.temperature, fast.api_key) == ("fast-model", 0.5, "sk-base-key-123456")
    assert loaded.config.llm_configs["careful"].temperature == 0.0
    assert loaded.config.llm.model == "base-model"  # without -l the base section is used
    assert loaded.sources["llm_configs.fast.model"] == f"{lay.project_file} [llm.fast]"
    assert loaded.sources["llm_configs.fast.temperature"] == str(lay.project_file)


def test_named_section_in_project_inherits_user_llm(lay: Layout) -> None:
    lay.write(lay.user_file, '[llm]\nbase_url = "http://user-proxy"\n')
    lay.write(lay.project_file, '[llm.fast]\nmodel = "fast-model"\n')
    loaded = lay.load(llm_config_name="fast")
    assert loaded.config.llm.base_url == "http://user-proxy"
    assert loaded.config.llm.model == "fast-model"


@pytest.mark.parametrize("name", ["fast", "llm.fast", "[llm.fast]"])
def test_l_selects_a_named_section(lay: Layout, name: str) -> None:
    lay.write(lay.project_file, NAMED_TOML)
    loaded = lay.load(llm_config_name=name)
    assert loaded.config.llm.model == "fast-model"
    assert loaded.config.llm.temperature == 0.5
    assert loaded.sources["llm.model"] == f"{lay.project_file} [llm.fast]"
    assert loaded.sources["llm.temperature"] == str(lay.project_file)


def test_l_drops_llm_environment_as_openhands_and_flags_still_win(lay: Layout) -> None:
    # OpenHands applies LLM_* to the [llm] object, which -l then replaces by
    # config.llms[NAME] (utils.py: load_from_env, then core/main.py), so they are lost.
    lay.write(lay.project_file, NAMED_TOML)
    loaded = lay.load(
        {"LLM_TEMPERATURE": "0.9", "SANDBOX_TIMEOUT": "9"},
        llm_config_name="fast",
        flags={"llm.model": "flag-model"},
    )
    assert loaded.config.llm.temperature == 0.5
    assert loaded.config.sandbox.timeout == 9
    assert loaded.warnings == [
        "environment: LLM_TEMPERATURE ignored: -l fast replaces [llm] (as in OpenHands)"
    ]
    assert loaded.config.llm.model == "flag-model"
    assert loaded.sources["llm.model"] == "flag llm.model"  # no CLI flag sets it
    # The named configs themselves keep their file values.
    assert loaded.config.llm_configs["fast"].model == "fast-model"


def test_missing_named_llm_lists_the_available_ones(lay: Layout) -> None:
    lay.write(lay.project_file, NAMED_TOML)
    assert lay.error(llm_config_name="gpt5") == (
        "-l gpt5: no [llm.gpt5] section in the config files (available: careful, fast)"
    )


def test_the_agents_llm_config_picks_a_named_section_as_l_would(lay: Layout) -> None:
    """OpenHands' `[agent] llm_config` / `AGENT_LLM_CONFIG` (config.get_llm_config_from_agent):
    the agent runs on `[llm.NAME]`; a `-l` given on the command line wins."""
    lay.write(lay.project_file, NAMED_TOML + '\n[agent]\nllm_config = "careful"\n')
    loaded = lay.load({"LLM_TEMPERATURE": "0.9"})
    assert (loaded.config.llm.model, loaded.config.llm.temperature) == ("careful-model", 0.0)
    assert loaded.warnings == [
        "environment: LLM_TEMPERATURE ignored: [agent] llm_config careful replaces [llm] "
        "(as in OpenHands)"
    ]
    assert lay.load({"AGENT_LLM_CONFIG": "fast"}).config.llm.model == "fast-model"
    assert lay.load(llm_config_name="fast").config.llm.model == "fast-model"
    lay.write(lay.project_file, NAMED_TOML + '\n[agent]\nllm_config = "gpt5"\n')
    assert lay.error().startswith("[agent] llm_config gpt5: no [llm.gpt5] section")


def test_missing_named_llm_without_any_section(lay: Layout) -> None:
    assert lay.error(llm_config_name="x").endswith("(available: none defined)")


# ---- environment conversion ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "attr", "expected"),
    [
        ("MAX_ITERATIONS", "42", "core.max_iterations", 42),
        ("MAX_BUDGET_PER_TASK", "1.5", "core.max_budget_per_task", 1.5),
        ("MAX_BUDGET_PER_TASK", "0", "core.max_budget_per_task", None),
        ("RUNTIME", "docker", "core.runtime", "docker"),
        ("FILE_STORE_PATH", "/state", "core.file_store_path", "/state"),
        ("SAVE_TRAJECTORY_PATH", "/t.json", "core.save_trajectory_path", "/t.json"),
        ("WORKSPACE_BASE", "/src", "core.workspace_base", "/src"),
        ("MAX_RUNTIME_SECONDS", "90", "core.max_runtime_seconds", 90.0),
        ("LOG_ALL_EVENTS", "true", "core.log_all_events", True),
        ("LOG_ALL_EVENTS", "1", "core.log_all_events", True),
        ("LOG_ALL_EVENTS", "Yes", "core.log_all_events", True),
        ("LOG_ALL_EVENTS", "FALSE", "core.log_all_events", False),
        ("LOG_ALL_EVENTS", "no", "core.log_all_events", False),
        ("LOG_ALL_EVENTS", "0", "core.log_all_events", False),
        ("LLM_MODEL", "anthropic/claude", "llm.model", "anthropic/claude"),
        ("LLM_API_VERSION", "2024-12-01", "llm.api_version", "2024-12-01"),
        ("LLM_NUM_RETRIES", " 3 ", "llm.num_retries", 3),
        ("LLM_TIMEOUT", "30.5", "llm.timeout", 30.5),
        ("LLM_TIMEOUT", "0", "llm.timeout", None),
        ("LLM_TEMPERATURE", "0.7", "llm.temperature", 0.7),
        ("LLM_INPUT_COST_PER_TOKEN", "3e-06", "llm.input_cost_per_token", 3e-06),
        ("LLM_OUTPUT_COST_PER_TOKEN", "0", "llm.output_cost_per_token", 0.0),
        ("LLM_CACHING_PROMPT", "false", "llm.caching_prompt", False),
        ("AGENT_ENABLE_THINK", "false", "agent.enable_think", False),
        ("SANDBOX_USER_ID", "1000", "sandbox.user_id", 1000),
        ("SANDBOX_TIMEOUT", "60", "sandbox.timeout", 60),
        ("SANDBOX_VOLUMES", "/tmp:/workspace", "sandbox.volumes", "/tmp:/workspace"),
        ("SANDBOX_KEEP_RUNTIME_ALIVE", "true", "sandbox.keep_runtime_alive", True),
        ("SANDBOX_RUNTIME_CONTAINER_IMAGE", "img:1", "sandbox.runtime_container_image", "img:1"),
        ("SANDBOX_BASE_CONTAINER_IMAGE", "debian", "sandbox.base_container_image", "debian"),
        (
            "SANDBOX_RUNTIME_STARTUP_ENV_VARS",
            '{"A": "1", "B": "two"}',
            "sandbox.runtime_startup_env_vars",
            {"A": "1", "B": "two"},
        ),
    ],
)
def test_environment_values_are_converted(
    lay: Layout, name: str, raw: str, attr: str, expected: object
) -> None:
    loaded = lay.load({name: raw})
    section, key = attr.split(".")
    assert getattr(getattr(loaded.config, section), key) == expected
    assert loaded.sources[attr] == f"environment {name}"


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("MAX_ITERATIONS", "ten", "environment MAX_ITERATIONS: expected an integer, got 'ten'"),
        ("MAX_ITERATIONS", "0", "environment MAX_ITERATIONS: expected an integer >= 1, got '0'"),
        ("MAX_ITERATIONS", "2.5", "environment MAX_ITERATIONS: expected an integer, got '2.5'"),
        (
            "MAX_BUDGET_PER_TASK",
            "-1",
            "environment MAX_BUDGET_PER_TASK: expected a number >= 0, got '-1'",
        ),
        (
            "RUNTIME",
            "e2b",
            "environment RUNTIME: expected one of 'local', 'docker', got 'e2b'",
        ),
        (
            "LOG_ALL_EVENTS",
            "maybe",
            "environment LOG_ALL_EVENTS: expected true or false, got 'maybe'",
        ),
        ("LLM_TEMPERATURE", "hot", "environment LLM_TEMPERATURE: expected a number, got 'hot'"),
        (
            "LLM_TOP_P",
            "1.5",
            "environment LLM_TOP_P: expected a number >= 0 and <= 1, got '1.5'",
        ),
        ("SANDBOX_TIMEOUT", "0", "environment SANDBOX_TIMEOUT: expected an integer > 0, got '0'"),
        (
            "SANDBOX_USER_ID",
            "me",
            "environment SANDBOX_USER_ID: expected an integer, got 'me'",
        ),
        (
            "SANDBOX_RUNTIME_STARTUP_ENV_VARS",
            "A=1",
            "environment SANDBOX_RUNTIME_STARTUP_ENV_VARS: expected a JSON or Python object "
            "of strings, "
            "got 'A=1'",
        ),
        (
            "SANDBOX_RUNTIME_STARTUP_ENV_VARS",
            '{"A": 1}',
            "environment SANDBOX_RUNTIME_STARTUP_ENV_VARS: expected a JSON or Python object "
            "of strings, "
            "got '{\"A\": 1}'",
        ),
    ],
)
def test_bad_environment_values_are_one_line_errors(
    lay: Layout, name: str, raw: str, message: str
) -> None:
    assert lay.error({name: raw}) == message


def test_bad_dotenv_value_names_the_dotenv_file(lay: Layout) -> None:
    lay.write(lay.cwd / ".env", "MAX_ITERATIONS=ten\n")
    assert lay.error() == ".env MAX_ITERATIONS: expected an integer, got 'ten'"


def test_unknown_and_empty_environment_variables_are_ignored(lay: Layout) -> None:
    environ = {
        "PATH": "/usr/bin",
        "LLM_FOO": "x",
        "AGENT_ENABLE_BROWSING": "true",  # OpenHands knows it, we do not: named
        "CLI_VI_MODE": "true",
        "MAX_ITERATIONS": "",
        "KUBERNETES_NAMESPACE": "",  # empty: unset, as in OpenHands
    }
    loaded = lay.load(environ)
    assert loaded.config == AppConfig()
    assert loaded.warnings == [
        "environment: ignoring OpenHands variables runhands does not use: "
        "AGENT_ENABLE_BROWSING, CLI_VI_MODE"
    ]


def test_every_section_has_its_environment_prefix() -> None:
    assert ENV_NAMES["MAX_ITERATIONS"] == "core.max_iterations"
    assert ENV_NAMES["LLM_API_KEY"] == "llm.api_key"
    assert ENV_NAMES["AGENT_ENABLE_CMD"] == "agent.enable_cmd"
    assert ENV_NAMES["SANDBOX_VOLUMES"] == "sandbox.volumes"
    assert {o.env for o in config_options()} == set(ENV_NAMES)


# ---- flags ----------------------------------------------------------------------------------


def test_flags_are_typed_named_and_none_means_not_given(lay: Layout) -> None:
    flags = {
        "core.max_budget_per_task": 2,
        "core.runtime": None,
        "sandbox.volumes": f"{lay.cwd}:/workspace",
        "llm.max_output_tokens": "100",
    }
    loaded = lay.load(flags=flags)
    assert loaded.config.core.max_budget_per_task == 2.0
    assert loaded.sources["core.max_budget_per_task"] == "flag --max-budget-per-task"
    assert loaded.sources["core.runtime"] == "default"
    assert loaded.config.sandbox.volumes == f"{lay.cwd}:/workspace"
    assert loaded.config.llm.max_output_tokens == 100
    assert loaded.sources["llm.max_output_tokens"] == "flag llm.max_output_tokens"


def test_bad_flags_are_errors(lay: Layout) -> None:
    message = lay.error(flags={"core.max_iterations": 0})
    assert message == "flag --max-iterations: expected an integer >= 1, got 0"
    assert lay.error(flags={"core.nope": 1}) == "flag core.nope: unknown setting"


def test_flag_keys_are_the_clis_config_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    flags = ["-i", "5", "-b", "1", "--max-runtime", "60", "--runtime", "docker"]
    flags += ["--state-dir", str(tmp_path), "-d", str(tmp_path), "--isolation", "none"]
    flags += ["--log-level", "debug", "--no-auto-continue", "--selected-repo", "o/r"]
    assert cli_main(["config", *flags]) == 0
    rows = capsys.readouterr().out.splitlines()
    sources = {row.split()[0]: row.rsplit("(", 1)[1].rstrip(")") for row in rows}
    # Every config flag, and nothing else, is named by FLAG_KEYS.
    assert {key: src for key, src in sources.items() if src.startswith("flag")} == {
        dotted: f"flag --{flag.replace('_', '-')}" for flag, dotted in FLAG_KEYS.items()
    }
    assert set(FLAG_KEYS.values()) <= set(ENV_NAMES.values())


def test_dead_settings_are_gone(lay: Layout) -> None:
    # Never used by runhands: in a config file they are OpenHands settings, ignored aloud.
    lay.write(
        lay.project_file, "[llm]\nnative_tool_calling = false\n[condenser]\nllm_config = 'x'\n"
    )
    loaded = lay.load()
    assert loaded.warnings == [
        "config.toml: ignoring OpenHands settings runhands does not use: "
        "llm.native_tool_calling, condenser.llm_config"
    ]
    assert "llm.native_tool_calling" not in ENV_NAMES.values()
    assert "condenser.llm_config" not in ENV_NAMES.values()


# ---- OpenHands compatibility and typos -------------------------------------------------------


def test_openhands_config_loads_with_one_ignored_keys_warning(lay: Layout) -> None:
    lay.write(lay.project_file, OPENHANDS_TOML)
    loaded = lay.load()
    cfg = loaded.config
    assert cfg.core.runtime == "docker"
    assert cfg.core.max_iterations == 100
    assert cfg.core.max_budget_per_task is None  # OpenHands: 0.0 means no limit
    assert cfg.core.workspace_base == "./workspace"
    assert cfg.llm.model == "claude-sonnet-4-5-20250929"
    assert (cfg.llm.num_retries, cfg.llm.retry_min_wait, cfg.llm.drop_params) == (8, 15, False)
    assert cfg.condenser.type == "noop"
    assert cfg.llm_configs["gpt4o-mini"].model == "gpt-4o"
    assert cfg.llm_configs["draft_editor"].model == "claude-sonnet-4-5-20250929"
    assert cfg.sandbox.user_id == 1000
    assert cfg.sandbox.base_container_image == "nikolaik/python-nodejs:python3.12-nodejs22"
    assert loaded.warnings == [
        "config.toml: ignoring OpenHands settings runhands does not use: "
        "core.cache_dir, core.debug, core.file_store, core.enable_browser, "
        "core.run_as_openhands, core.default_agent, core.jwt_secret, "
        "llm.modify_params, llm.disable_vision, "
        "llm.native_tool_calling, llm.draft_editor.correct_num, "
        "agent.enable_browsing, agent.enable_llm_editor, agent.enable_jupyter, "
        "agent.enable_history_truncation, agent.enable_condensation_request, "
        "agent.RepoExplorerAgent, agent.CustomAgent, "
        "sandbox.enable_auto_lint, sandbox.initialize_plugins, "
        "[security], condenser.llm_config, [kubernetes], [model_routing]"
    ]
    assert [s.url for s in cfg.mcp.sse_servers] == ["http://localhost:8080/mcp/sse"]


def test_empty_openhands_sections_do_not_warn(lay: Layout) -> None:
    lay.write(lay.project_file, "[security]\n# confirmation_mode = false\n[core]\n")
    assert lay.load().warnings == []


def test_each_file_gets_its_own_warning_line(lay: Layout) -> None:
    lay.write(lay.user_file, "[core]\ndebug = true\n")
    lay.write(lay.project_file, "[security]\nconfirmation_mode = true\n")
    warnings = lay.load().warnings
    assert len(warnings) == 2
    assert warnings[0].endswith("core.debug")
    assert warnings[1] == (
        "config.toml: ignoring OpenHands settings runhands does not use: [security]"
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[core]\nmax_iteration = 3\n",
            "config.toml [core] max_iteration: unknown key (did you mean max_iterations?)",
        ),
        (
            '[llm]\nmodle = "x"\n',
            "config.toml [llm] modle: unknown key (did you mean model?)",
        ),
        (
            "[llm.fast]\ntemprature = 1\n",
            "config.toml [llm.fast] temprature: unknown key (did you mean temperature?)",
        ),
        (
            "[sandbox]\nuse_host_netwrk = true\n",
            "config.toml [sandbox] use_host_netwrk: unknown key (did you mean use_host_network?)",
        ),
        ("[agent]\nzzz = 1\n", "config.toml [agent] zzz: unknown key"),
        (
            "[sandbx]\ntimeout = 3\n",
            "config.toml [sandbx]: unknown section (did you mean sandbox?)",
        ),
        ("[whatever]\nx = 1\n", "config.toml [whatever]: unknown section"),
        (
            "max_iterations = 3\n",
            "config.toml: max_iterations = 3 is outside any section (put it under [core]?)",
        ),
    ],
)
def test_unknown_keys_and_sections_are_errors_with_suggestions(
    lay: Layout, toml: str, message: str
) -> None:
    lay.write(lay.project_file, toml)
    assert lay.error() == message


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[llm]\ntemperature = "hot"\n',
            "config.toml [llm] temperature: expected a number, got 'hot'",
        ),
        (
            '[core]\nmax_iterations = "10"\n',
            "config.toml [core] max_iterations: expected an integer, got '10'",
        ),
        (
            '[core]\nruntime = "remote"\n',
            "config.toml [core] runtime: expected one of 'local', 'docker', got 'remote'",
        ),
        (
            "[core]\nlog_all_events = 1\n",
            "config.toml [core] log_all_events: expected true or false, got 1",
        ),
        (
            "[sandbox]\nruntime_startup_env_vars = {PORT = 8080}\n",
            "config.toml [sandbox] runtime_startup_env_vars: expected a table of strings, "
            "got {'PORT': 8080}",
        ),
        (
            "[llm.fast]\nnum_retries = -1\n",
            "config.toml [llm.fast] num_retries: expected an integer >= 0, got -1",
        ),
    ],
)
def test_toml_values_are_strictly_typed(lay: Layout, toml: str, message: str) -> None:
    lay.write(lay.project_file, toml)
    assert lay.error() == message


def test_toml_integers_are_accepted_for_numbers(lay: Layout) -> None:
    lay.write(lay.project_file, "[llm]\ntemperature = 1\ntimeout = 0\nmax_input_tokens = 0\n")
    llm = lay.load().config.llm
    assert llm.temperature == 1.0 and isinstance(llm.temperature, float)
    assert (llm.timeout, llm.max_input_tokens) == (None, None)


def test_errors_in_the_user_file_name_it(lay: Layout) -> None:
    lay.write(lay.user_file, "[core]\nmax_iterations = 0\n")
    message = lay.error()
    assert message.endswith("config.toml [core] max_iterations: expected an integer >= 1, got 0")
    assert "user-config" in message


# ---- showing and saving secrets -----------------------------------------------------------------

SECRET = "fake-live-SECRET-abcdef123456"


def test_describe_config_masks_secrets(lay: Layout) -> None:
    lay.write(
        lay.project_file,
        f'[llm]\napi_key = "{SECRET}"\nbase_url = "https://bob:hunter2pass@proxy.example/v1"\n'
        '[llm.short]\napi_key = "abc"\n'
        '[sandbox]\nruntime_startup_env_vars = {GITHUB_TOKEN = "ghp_0123456789abcdef", '
        'MODE = "ci"}\n',
    )
    loaded = lay.load({"SANDBOX_TIMEOUT": "99"}, llm_config_name="short")
    rows = describe_config(loaded)
    text = repr(rows)
    for secret in (SECRET, "abc'", "hunter2pass", "ghp_0123456789abcdef", "ghp_0123"):
        assert secret not in text
    by_key = {key: (value, source) for key, value, source in rows}
    assert by_key["llm.api_key"] == ("(set)", f"{lay.project_file} [llm.short]")
    assert by_key["llm_configs.short.api_key"][0] == "(set)"
    assert by_key["llm.base_url"][0] == "https://proxy.example/v1"
    assert by_key["sandbox.timeout"] == ("99", "environment SANDBOX_TIMEOUT")
    env_vars = by_key["sandbox.runtime_startup_env_vars"][0]
    assert env_vars == "{GITHUB_TOKEN=****cdef, MODE=ci}"


def test_describe_config_long_secret_shows_last_four_only(lay: Layout) -> None:
    loaded = lay.load({"LLM_API_KEY": SECRET})
    by_key = {key: value for key, value, _ in describe_config(loaded)}
    assert by_key["llm.api_key"] == "****3456"
    assert by_key["core.max_budget_per_task"] == "(not set)"
    assert by_key["core.log_all_events"] == "false"


def test_public_config_has_no_secrets(lay: Layout) -> None:
    lay.write(
        lay.project_file,
        '[llm]\nbase_url = "https://u:p4ss@h.example"\n[llm.fast]\nmodel = "m"\n'
        '[sandbox]\nruntime_startup_env_vars = {API_TOKEN = "t0ken-value", MODE = "ci"}\n',
    )
    loaded = lay.load({"LLM_API_KEY": SECRET})
    public = public_config(loaded.config)
    encoded = msgspec.json.encode(public).decode()
    for secret in (SECRET, "p4ss", "t0ken-value"):
        assert secret not in encoded
    assert public.llm.api_key is None and public.llm_configs["fast"].api_key is None
    assert public.sandbox.runtime_startup_env_vars == {"MODE": "ci"}
    assert public.llm.base_url == "https://h.example"
    assert loaded.config.llm.api_key == SECRET  # the original is untouched


def test_aws_credentials_are_secrets_like_the_api_key(lay: Layout) -> None:
    # OpenHands' LLMConfig: aws_access_key_id, aws_secret_access_key are SecretStr.
    environ = {"LLM_AWS_ACCESS_KEY_ID": "AKIA0123456789AB", "LLM_AWS_SECRET_ACCESS_KEY": SECRET}
    loaded = lay.load(environ)
    encoded = msgspec.json.encode(public_config(loaded.config)).decode()
    assert SECRET not in encoded and "AKIA0123456789AB" not in encoded
    assert {SECRET, "AKIA0123456789AB"} <= set(secrets_of(loaded.config, environ={}))
    assert SECRET not in repr(describe_config(loaded))


def test_a_key_in_the_base_url_query_is_masked_and_never_saved(lay: Layout) -> None:
    url = "https://proxy.example/v1?api-version=2024&api_key=q-Secret-0123456789&sig=s1gnature9"
    lay.write(lay.cwd / ".env", f"LLM_BASE_URL={url}\n")
    loaded = lay.load()
    shown = {key: value for key, value, _ in describe_config(loaded)}["llm.base_url"]
    assert shown == "https://proxy.example/v1?api-version=2024&api_key=****&sig=****"
    public = public_config(loaded.config)
    assert public.llm.base_url == "https://proxy.example/v1?api-version=2024"
    assert loaded.config.llm.base_url == url  # the model is still called with it
    assert {"q-Secret-0123456789", "s1gnature9"} <= set(secrets_of(loaded.config, {}, lay.cwd))


def test_secrets_of_lists_every_credential_runhands_knows_of(lay: Layout) -> None:
    lay.write(
        lay.project_file,
        '[llm]\napi_key = "cfg-Key-0001"\n[llm.fast]\napi_key = "named-Key-0002"\n'
        "[sandbox]\nruntime_startup_env_vars = "
        '{GITHUB_TOKEN = "ghp_Startup0003", MODE = "Verbose-0004"}\n',
    )
    lay.write(
        lay.cwd / ".env",
        "DEPLOY_TOKEN=dotenv-Token-0005\nSTRIPE=sk_live_Dotenv0006\nDEBUG=true\nPORT=8080\n"
        "LLM_MODEL=openai/gpt-4o-2024-08-06\nNODE_ENV=production\n",
    )
    environ = {
        "OPENAI_API_KEY": "sk-Provider-0007",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE0008",
        "AWS_SECRET_ACCESS_KEY": "wJalr/EXAMPLE+0009",
        "AWS_SESSION_TOKEN": "FwoGZX-Session-0010",
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/Creds-0011.json",
        "SANDBOX_ENV_DEPLOY_URL": "https://deployer:Passed-0012@ci.example",
        "SANDBOX_ENV_PLAIN": "Passed-Plain-0013",
        "DATABASE_URL": "postgres://app:Db-Password-0014@db/app",
        "HOME": "/home/me-0015",
        "MAX_TOKENS": "4096-0016",
        "TOKENIZERS_PARALLELISM": "false",
    }
    loaded = lay.load(environ)
    found = set(secrets_of(loaded.config, environ, lay.cwd))
    assert found == {
        "cfg-Key-0001",
        "named-Key-0002",
        "ghp_Startup0003",  # MODE is no secret: its value is saved and shown
        "dotenv-Token-0005",
        "sk_live_Dotenv0006",  # .env values whatever their names, but runhands' settings
        "sk-Provider-0007",
        "AKIAEXAMPLE0008",
        "wJalr/EXAMPLE+0009",
        "FwoGZX-Session-0010",
        "/home/me/Creds-0011.json",
        "https://deployer:Passed-0012@ci.example",
        "Passed-0012",  # "deployer": a plain word, like true, 8080 and production
        "Passed-Plain-0013",
        "Db-Password-0014",  # HOME, MAX_TOKENS: not secret names
    }


def test_secrets_of_reads_the_environment_and_dotenv_by_default(
    lay: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    lay.write(lay.cwd / ".env", "ANTHROPIC_API_KEY=fake-ant-Dotenv-0001\n")
    monkeypatch.setenv("GEMINI_API_KEY", "gem-Env-0002")
    monkeypatch.chdir(lay.cwd)
    assert {"fake-ant-Dotenv-0001", "gem-Env-0002"} <= set(secrets_of(AppConfig()))


def test_loaded_config_round_trips_through_json(lay: Layout) -> None:
    lay.write(lay.project_file, NAMED_TOML)
    loaded = lay.load()
    again = msgspec.json.decode(msgspec.json.encode(loaded), type=LoadedConfig)
    assert again == loaded


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        (
            "[llm]\napi_key = 123456789\n",
            {},
            "config.toml [llm] api_key: expected a string, got (hidden)",
        ),
        (
            '[sandbox]\nruntime_startup_env_vars = {GH_TOKEN = "ghp_x", N = 1}\n',
            {},
            "config.toml [sandbox] runtime_startup_env_vars: expected a table of strings, "
            "got {'GH_TOKEN': '****', 'N': 1}",
        ),
        (
            "",
            {"SANDBOX_RUNTIME_STARTUP_ENV_VARS": '{"GH_TOKEN": "ghp_x"'},
            "environment SANDBOX_RUNTIME_STARTUP_ENV_VARS: expected a JSON or Python object "
            "of strings, "
            "got (hidden: it may hold a secret)",
        ),
    ],
)
def test_errors_never_echo_secrets(
    lay: Layout, toml: str, environ: dict[str, str], message: str
) -> None:
    lay.write(lay.project_file, toml)
    assert lay.error(environ) == message


def test_empty_strings_in_toml_mean_unset(lay: Layout) -> None:
    lay.write(lay.project_file, '[llm]\napi_key = ""\nbase_url = ""\nmodel = ""\n')
    loaded = lay.load()
    assert (loaded.config.llm.api_key, loaded.config.llm.base_url) == (None, None)
    assert loaded.sources["llm.api_key"] == str(lay.project_file)


def test_a_file_cannot_loosen_a_saved_runs_sandbox_policy(lay: Layout) -> None:
    """The cwd is often the agent's workspace: a config.toml or .env it wrote must not turn
    the isolation off or the network on for the run it is in; a flag or variable may."""
    from controller.config import overlay_config

    saved = msgspec.convert(
        {"sandbox": {"isolation": "workspace-write", "network": "off"}}, AppConfig
    )
    lay.write(lay.project_file, '[sandbox]\nisolation = "none"\nnetwork = "on"\n')
    lay.write(lay.cwd / ".env", "SANDBOX_WRITABLE_PATHS=/\nMAX_ITERATIONS=9\n")
    loaded = lay.load()
    merged = overlay_config(saved, loaded)
    assert (merged.sandbox.isolation, merged.sandbox.network) == ("workspace-write", "off")
    assert merged.sandbox.writable_paths == []
    assert merged.core.max_iterations == 9  # other settings still come from files
    assert sum("ignored" in w and "sandbox." in w for w in loaded.warnings) == 3
    from_env = overlay_config(saved, lay.load({"SANDBOX_ISOLATION": "read-only"}))
    assert from_env.sandbox.isolation == "read-only"


def test_how_many_outputs_the_model_sees_whole_is_configured(lay: Layout) -> None:
    """`[condenser] keep_outputs` (controller/agent/lean_view.py), its environment name,
    and OpenHands' observation_masking `attention_window`, which counts events."""
    assert lay.load().config.condenser.outputs_kept() == 5
    env = {"CONDENSER_KEEP_OUTPUTS": "0"}
    assert lay.load(env).config.condenser.outputs_kept() == 0
    lay.write(lay.project_file, '[condenser]\ntype = "observation_masking"\nattention_window = 8\n')
    loaded = lay.load()
    assert loaded.config.condenser.outputs_kept() == 4 and loaded.warnings == []
    lay.write(lay.project_file, "[condenser]\nkeep_outputs = -1\n")
    assert "keep_outputs" in lay.error()


def test_the_codeact_agent_section_applies_over_agent(lay: Layout) -> None:
    """OpenHands' `[agent.CodeActAgent]` (config.get_agent_config('CodeActAgent')): the
    agent runhands stands in for; other agents' sections are named as ignored."""
    lay.write(
        lay.project_file,
        "[agent.CodeActAgent]\nenable_think = false\nenable_browsing = true\n"
        "[agent.BrowsingAgent]\nenable_cmd = false\n",
    )
    loaded = lay.load()
    assert loaded.config.agent.enable_think is False and loaded.config.agent.enable_cmd
    assert loaded.warnings == [
        "config.toml: ignoring OpenHands settings runhands does not use: "
        "agent.enable_browsing, agent.BrowsingAgent"
    ]
    lay.write(lay.project_file, "[agent.CodeActAgent]\nenable_thnk = false\n")
    assert "enable_thnk" in lay.error() and "enable_think" in lay.error()
