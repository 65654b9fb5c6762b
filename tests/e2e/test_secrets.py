"""No credential reaches a file or the terminal, and model text cannot drive the terminal:
the real CLI with a scripted model that prints every credential runhands knows of, plainly
and encoded, and writes escape sequences wherever its text is shown."""

from __future__ import annotations

import base64
import json

import pytest

from state_store.events import ModelResponse
from state_store.store import read_events
from tests.conftest import TEST_API_KEY, Cli, CliResult
from tests.scripted_model import Turn, bash, finish, text

pytestmark = pytest.mark.e2e

PROVIDER_KEY = "fake-proj-Provider-Secret-4c1d8e2f"  # from the environment, not configured
DOTENV_VALUE = "dotenv-Deploy-Token-9b7a5c3e"  # in ./.env, under a name that says nothing
PASSED_VALUE = "sandbox-Passed-Value-2e4f6a8c"  # SANDBOX_ENV_DEPLOY: given to the sandbox
QUERY_KEY = "url-Query-Secret-5150aa"  # LLM_BASE_URL=...?api_key=
SECRETS = (TEST_API_KEY, PROVIDER_KEY, DOTENV_VALUE, PASSED_VALUE, QUERY_KEY)
FILES = {"key.txt": TEST_API_KEY, "provider.txt": PROVIDER_KEY, "passed.txt": PASSED_VALUE}

# Every encoding of every file: as written, base64 (standard; after "K=", so the key starts
# mid-group; url-safe), reversed, hex; then .env and the sandbox's environment.
PRINT_EVERYTHING = (
    "for f in key.txt provider.txt passed.txt; do cat $f; echo; base64 -w0 $f; echo;"
    " printf 'K=%s' \"$(cat $f)\" | base64 -w0; echo;"
    " python3 -c \"import base64,sys; print(base64.urlsafe_b64encode(open('$f','rb').read()))\";"
    " rev $f; echo; od -An -v -tx1 $f | tr -d ' \\n'; echo; done;"
    " cat .env; printenv | grep -i deploy"
)
TITLE = "\x1b]0;pwned-title\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"


def leaked_forms(secret: str) -> list[str]:
    """The secret and the parts of its encodings that encode it alone."""
    raw = secret.encode()
    usable = len(raw) // 3 * 4
    shifted = base64.b64encode(b"K=" + raw).decode()[4 : (len(raw) + 2) // 3 * 4]
    return [
        secret,
        secret[::-1],
        raw.hex(),
        base64.b64encode(raw).decode()[:usable],
        base64.urlsafe_b64encode(raw).decode()[:usable],
        shifted,
    ]


def assert_clean(where: str, output: str | bytes) -> None:
    data = output if isinstance(output, str) else output.decode("utf-8", "replace")
    for secret in SECRETS:
        for form in leaked_forms(secret):
            assert form not in data, f"{where} shows {form!r}"


def assert_terminal_safe(result: CliResult) -> None:
    for stream in (result.stdout, result.stderr):
        assert not any(c in stream for c in "\x1b\x07\x9b"), stream


def setup(cli: Cli, model_url: str) -> dict[str, str]:
    for name, value in FILES.items():
        (cli.workspace / name).write_text(value)
    (cli.workspace / ".env").write_text(f"DEPLOY_HOOK={DOTENV_VALUE}\n")
    return {
        "OPENAI_API_KEY": PROVIDER_KEY,
        "SANDBOX_ENV_DEPLOY": PASSED_VALUE,
        "LLM_BASE_URL": f"{model_url}?api_key={QUERY_KEY}",
        "SAVE_TRAJECTORY_PATH": str(cli.home / "trajectory.json"),
    }


def hostile_script() -> list[Turn]:
    return [
        bash(PRINT_EVERYTHING),
        bash(f"echo {TEST_API_KEY} | wc -c"),  # saved as `echo **** | wc -c`
        text(f"hello {TITLE}\x1b[2J\x1b[H{CLIPBOARD} bye"),
        Turn(tool_calls=[("think", {"thought": f"\x1b[31mred{TITLE}"})]),
        bash(f"echo previewed # {TITLE}"),
        finish(f"all done {CLIPBOARD}"),
    ]


def test_no_credential_reaches_a_file_or_the_terminal(cli: Cli, scripted) -> None:
    model = scripted(hostile_script())
    env = setup(cli, model.base_url)
    result = cli.run("run", "-n", "s", "-t", "print every secret", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert_clean("run", result.stdout + result.stderr)
    assert "****" in result.stderr
    assert_clean("the store", cli.saved_bytes())
    assert_clean("the trajectory", (cli.home / "trajectory.json").read_bytes())
    config = json.loads((cli.state_dir / "s" / "config.json").read_text())["config"]
    assert config["llm"]["base_url"] == model.base_url
    for command in (("inspect", "s"), ("inspect", "s", "--json"), ("config",)):
        shown = cli.run(*command, env=env)
        assert shown.returncode == 0, shown.stderr
        assert_clean(" ".join(command), shown.stdout + shown.stderr)


def test_model_text_cannot_drive_the_terminal(cli: Cli, scripted) -> None:
    model = scripted(hostile_script())
    env = setup(cli, model.base_url)
    result = cli.run("run", "-n", "s", "-t", "print every secret", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result)
    err = result.stderr
    assert "model said: hello \\x1b]0;pwned-title\\x07\\x1b[2J\\x1b[H\\x1b]52;c;" in err
    assert "think: \\x1b[31mred\\x1b]0;pwned-title\\x07" in err
    assert "$ echo previewed # \\x1b]0;pwned-title\\x07" in err
    assert result.stdout == "all done \\x1b]52;c;cm0gLXJmIH4=\\x07\n"
    events = read_events(cli.state_dir / "s" / "events.jsonl")
    said = [e.content for e in events if isinstance(e, ModelResponse)]
    assert f"hello {TITLE}\x1b[2J\x1b[H{CLIPBOARD} bye" in said  # the log keeps the data
    for command in (("inspect", "s"), ("inspect", "s", "--json"), ("list",)):
        shown = cli.run(*command, env=env)
        assert shown.returncode == 0, shown.stderr
        assert_terminal_safe(shown)
    assert "\\x1b]0;pwned-title" in cli.run("inspect", "s", env=env).stdout


def test_replay_redacts_and_never_runs_a_redacted_command(cli: Cli, scripted) -> None:
    model = scripted(hostile_script())
    env = setup(cli, model.base_url)
    assert cli.run("run", "-n", "s", "-t", "leak", model=model, env=env).returncode == 0
    (cli.workspace / "canary").write_text("")  # `echo ****` would print its name
    for as_json in ((), ("--json",)):
        result = cli.run("replay", "s", *as_json, env=env)
        assert result.returncode == 0, result.stderr
        assert_clean("replay", result.stdout + result.stderr)
        assert_terminal_safe(result)
        assert "[2/5] $ echo **** | wc -c ... not replayed (its command held a secret" in (
            result.stderr
        )
        assert "replay matched: 4/5 steps the same, 1 not replayed (held a secret)" in (
            result.stderr
        )
    *steps, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["skipped"] for s in steps] == [False, True, False, False, False]
    assert (summary["skipped"], summary["exit_code"]) == ([2], 0)


def test_a_key_in_the_base_url_is_not_saved_and_resume_reads_it_again(cli: Cli, scripted) -> None:
    first = scripted([finish("one")])
    url = f"{first.base_url}?api_key={QUERY_KEY}"
    result = cli.run("run", "-n", "u", "-t", "x", model=first, env={"LLM_BASE_URL": url})
    assert result.returncode == 0, result.stderr
    saved = (cli.state_dir / "u" / "config.json").read_text()
    assert QUERY_KEY not in saved
    assert json.loads(saved)["config"]["llm"]["base_url"] == first.base_url
    shown = cli.run("config", env={"LLM_BASE_URL": url}).stdout
    assert f"{first.base_url}?api_key=****" in shown and QUERY_KEY not in shown
    second = scripted([finish("two")])
    url = f"{second.base_url}?api_key={QUERY_KEY}"
    again = cli.run("resume", "u", "-t", "more", model=second, env={"LLM_BASE_URL": url})
    assert again.returncode == 0, again.stderr
    assert again.stdout == "two\n" and len(second.requests) == 1


def test_the_model_sees_output_as_saved_never_the_key(cli: Cli, scripted) -> None:
    """Redaction happens as an event is saved, and the run goes on from the saved event:
    the provider never receives a known secret in an observation."""
    (cli.workspace / "k.txt").write_text(f"the key is {TEST_API_KEY}\n")
    model = scripted([bash("cat k.txt"), finish("done")])
    result = cli.run("run", "-t", "show the key", model=model)
    assert result.returncode == 0, result.stderr
    sent = json.dumps(model.requests[1]["messages"])
    assert TEST_API_KEY not in sent
    assert "the key is ****" in sent
