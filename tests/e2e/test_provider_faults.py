"""Provider faults end to end: the real CLI against a scripted model that rate-limits, hangs,
answers without a message, refuses the key or fails until a fallback model takes over.

How long the cuts take is measured by bench/bench_provider_faults.py, not asserted here: a
call that was not cut would get its delayed answer (text, no tool call), and the run would
not end with exit code 5."""

from __future__ import annotations

import json
import time

import pytest

from state_store.events import AnyEvent, ModelResponse, ModelRetry, ModelSwitched, RunEnded
from state_store.store import read_events
from tests.conftest import Cli, CliResult
from tests.scripted_model import ScriptedModel, Turn, bash, error, finish, raw_answer

pytestmark = pytest.mark.e2e


def events_of(cli: Cli) -> list[AnyEvent]:
    (run_dir,) = cli.run_dirs()
    return read_events(run_dir / "events.jsonl")


def test_429_with_retry_after_waits_as_asked_then_succeeds(cli: Cli, scripted) -> None:
    model = scripted([error(429, retry_after=1), bash("echo ok"), finish()])
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 0, result.stderr
    (retry,) = [e for e in events_of(cli) if isinstance(e, ModelRetry)]
    assert retry.wait_s == 1.0  # the provider's value, not the 0.01 s backoff
    assert "RateLimitError" in retry.error
    assert "retry 1 in 1.0s" in result.stderr


def assert_provider_failure(cli: Cli, result: CliResult, why: str) -> list[ModelRetry]:
    """The run ended errored for the provider, exit code 5, after two retries whose errors
    start with `why`, each after the 0.01-0.05 s backoff; returns the retries."""
    assert result.returncode == 5, result.stderr
    events = events_of(cli)
    retries = [e for e in events if isinstance(e, ModelRetry)]
    assert [e.attempt for e in retries] == [1, 2]  # LLM_NUM_RETRIES=2
    assert all(e.error.startswith(why) for e in retries), retries
    assert all(0.008 <= e.wait_s <= 0.05 for e in retries)
    ended = events[-1]
    assert isinstance(ended, RunEnded) and (ended.state, ended.reason) == ("errored", "provider")
    assert "gave up after 3 attempts" in result.stderr
    return retries


def test_a_hanging_endpoint_is_cut_and_the_run_ends_with_exit_code_5(cli: Cli, scripted) -> None:
    model = scripted([Turn(delay=30)] * 3)
    result = cli.run("run", "-t", "task", model=model, env={"LLM_TIMEOUT": "1"})
    assert_provider_failure(cli, result, "Timeout: ")
    assert len(model.requests) == 3


class TricklingModel(ScriptedModel):
    """Answers 200 then sends its body one byte every 0.3 s for a minute: each read gets
    data before litellm's read timeout, so only the watchdog can end the call."""

    def _handler(self) -> type:
        model = self

        class Handler(super()._handler()):
            def do_POST(self) -> None:
                model.next_turn(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "200")
                self.end_headers()
                try:
                    for _ in range(200):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.3)
                except OSError:  # the client gave up
                    pass

        return Handler


def test_a_trickling_endpoint_is_cut_by_the_watchdog(cli: Cli) -> None:
    with TricklingModel([]) as model:
        result = cli.run("run", "-t", "task", model=model, env={"LLM_TIMEOUT": "1"})
    assert_provider_failure(cli, result, "WatchdogTimeout: no answer after 2s")
    assert len(model.requests) == 3


def test_answers_without_choices_end_the_run_with_exit_code_5(cli: Cli, scripted) -> None:
    model = scripted([raw_answer(choices=[])] * 3)
    result = cli.run("run", "-t", "task", model=model)
    assert_provider_failure(cli, result, "EmptyAnswer: the provider answered with no choices")
    assert len(model.requests) == 3
    assert "Traceback" not in result.stderr


def test_a_refused_key_is_not_retried_and_says_what_to_check(cli: Cli, scripted) -> None:
    model = scripted([error(401), finish()])
    result = cli.run("run", "-t", "task", model=model)
    assert result.returncode == 5, result.stderr
    assert len(model.requests) == 1
    assert "authentication failed for openai/scripted-model: check LLM_API_KEY" in result.stderr
    assert not any(isinstance(e, ModelRetry) for e in events_of(cli))


def test_a_fallback_model_takes_over_after_the_main_one_keeps_failing(cli: Cli, scripted) -> None:
    model = scripted([error(503)] * 3 + [bash("echo ok"), finish()])
    env = {"LLM_FALLBACK_MODELS": "openai/backup-model"}
    result = cli.run("run", "-t", "task", model=model, env=env)
    assert result.returncode == 0, result.stderr
    assert [r["model"] for r in model.requests] == ["scripted-model"] * 3 + ["backup-model"] * 2
    events = events_of(cli)
    (switch,) = [e for e in events if isinstance(e, ModelSwitched)]
    assert (switch.step, switch.from_model, switch.to_model) == (
        1,
        "openai/scripted-model",
        "openai/backup-model",
    )
    assert "gave up after 3 attempts" in switch.reason
    assert {e.model for e in events if isinstance(e, ModelResponse)} == {"backup-model"}
