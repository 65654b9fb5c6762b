"""LiteLLMClient against the scripted server, in-process: retries, Retry-After, refusals, the
watchdog, empty answers, bogus token counts, fallback models, prompt caching and cached-token
accounting."""

from __future__ import annotations

import copy
import json
import threading
from email.utils import formatdate
from types import SimpleNamespace
from typing import Any

import pytest

from controller.config import LLMConfig
from controller.model_client import (
    MAX_TOKENS_PER_CALL,
    RETRY_AFTER_CAP_S,
    LiteLLMClient,
    ProviderError,
    retry_after,
    with_cache_breakpoints,
)
from tests.scripted_model import ScriptedModel, Turn, error, finish, raw_answer

# litellm's lazy imports of its pydantic types warn once per process: noise here.
pytestmark = pytest.mark.filterwarnings("ignore:Item .* `ReadOnly` qualifier:UserWarning")

MESSAGES = [
    {"role": "system", "content": "You are an agent."},
    {"role": "user", "content": "the task"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": "end",
            "parameters": {"type": "object", "properties": {"message": {"type": "string"}}},
        },
    }
]
# A conversation with two tool results after the task: the last two user/tool messages.
CONVERSATION = [
    *MESSAGES,
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "finish", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "name": "finish", "content": "first result"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "finish", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "c2", "name": "finish", "content": "second result"},
]


class Recorder:
    """The hooks and the sleep of a client, recorded instead of acted on."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.retries: list[tuple[int, str, float]] = []
        self.switches: list[tuple[str, str, str]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_retry(self, attempt: int, error: str, wait: float) -> None:
        self.retries.append((attempt, error, wait))

    def on_switch(self, from_model: str, to_model: str, reason: str) -> None:
        self.switches.append((from_model, to_model, reason))


def make_client(
    server: ScriptedModel,
    rec: Recorder,
    llm_configs: dict[str, LLMConfig] | None = None,
    **settings: Any,
) -> LiteLLMClient:
    config = LLMConfig(
        model=settings.pop("model", "openai/scripted-model"),
        api_key="test-key",
        base_url=server.base_url,
        num_retries=settings.pop("num_retries", 2),
        retry_min_wait=0.01,
        retry_max_wait=0.05,
        **settings,
    )
    return LiteLLMClient(config, sleep=rec.sleep, llm_configs=llm_configs)


def complete(client: LiteLLMClient, rec: Recorder, messages: list | None = None) -> Any:
    return client.complete(messages or MESSAGES, TOOLS, rec.on_retry, rec.on_switch)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


# ---- retries and refusals --------------------------------------------------------------------


def test_retry_after_is_honoured_then_success(rec: Recorder) -> None:
    with ScriptedModel([error(429, retry_after=1), finish("ok")]) as server:
        completion = complete(make_client(server, rec), rec)
    assert completion.tool_calls[0].name == "finish"
    assert len(server.requests) == 2
    assert rec.sleeps == [1.0]  # the provider's wait, not the 0.01 s backoff
    (attempt, text, wait) = rec.retries[0]
    assert (attempt, wait) == (1, 1.0)
    assert "RateLimitError" in text and "Retry-After: 1s" in text


def test_server_errors_are_retried_with_backoff_then_succeed(rec: Recorder) -> None:
    with ScriptedModel([error(503), error(503), finish()]) as server:
        completion = complete(make_client(server, rec), rec)
    assert completion.tool_calls and len(server.requests) == 3
    assert [r[0] for r in rec.retries] == [1, 2]
    assert all(0.008 <= s <= 0.05 for s in rec.sleeps)  # backoff with jitter, within bounds
    assert rec.switches == []


def test_retries_spent_is_a_provider_error(rec: Recorder) -> None:
    with (
        ScriptedModel([error(500)] * 3) as server,
        pytest.raises(ProviderError, match="gave up after 3 attempts"),
    ):
        complete(make_client(server, rec), rec)
    assert len(server.requests) == 3 and len(rec.retries) == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "authentication failed for openai/scripted-model: check LLM_API_KEY"),
        (403, "authentication failed for openai/scripted-model: check LLM_API_KEY"),
        (400, "openai/scripted-model refused the request: BadRequestError"),
        (404, "openai/scripted-model was not found"),
    ],
)
def test_refusals_are_not_retried(rec: Recorder, status: int, message: str) -> None:
    with ScriptedModel([error(status), finish()]) as server, pytest.raises(ProviderError) as caught:
        complete(make_client(server, rec), rec)
    assert len(server.requests) == 1
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert rec.retries == [] and rec.sleeps == []


# ---- timeouts and the watchdog ----------------------------------------------------------------


class NoLitellmTimeout(LiteLLMClient):
    """A client whose litellm call has no timeout of its own: only the watchdog can cut it."""

    def _request(self, *args: Any) -> dict[str, Any]:
        request = super()._request(*args)
        request.pop("timeout")
        return request


def model_calls_running() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "runhands-model-call"}


# How long the cuts take is measured by bench/bench_provider_faults.py, not asserted here.
# A call that was not cut would get the delayed answer (text, no tool call) instead.


def test_a_hanging_endpoint_is_cut_by_litellm_and_retried(rec: Recorder) -> None:
    with ScriptedModel([Turn(delay=30), finish()]) as server:
        completion = complete(make_client(server, rec, timeout=1), rec)
    assert [c.name for c in completion.tool_calls] == ["finish"]
    assert len(server.requests) == 2
    ((attempt, text, wait),) = rec.retries
    assert attempt == 1 and text.startswith("Timeout: ")  # litellm's, before the watchdog
    assert rec.sleeps == [wait] and 0.008 <= wait <= 0.05  # the backoff, nothing more


def test_the_watchdog_cuts_a_call_litellm_would_wait_on(rec: Recorder) -> None:
    before = model_calls_running()
    with ScriptedModel([Turn(delay=30)] * 2) as server:
        client = NoLitellmTimeout(
            make_client(server, rec, timeout=1, num_retries=1).config, sleep=rec.sleep
        )
        with pytest.raises(ProviderError, match=r"WatchdogTimeout.*gave up after 2 attempts"):
            complete(client, rec)
        # Both calls still wait on the server: abandoned, not answered.
        assert len(model_calls_running() - before) == 2
    assert len(server.requests) == 2
    ((attempt, text, _),) = rec.retries
    assert attempt == 1
    assert text.startswith("WatchdogTimeout: no answer after 2s: the call was abandoned")


# ---- answers without a message --------------------------------------------------------------


def test_an_answer_without_choices_is_retried(rec: Recorder) -> None:
    with ScriptedModel([raw_answer(choices=[]), finish("ok")]) as server:
        completion = complete(make_client(server, rec), rec)
    assert completion.tool_calls[0].name == "finish" and len(server.requests) == 2
    ((attempt, text, wait),) = rec.retries
    assert attempt == 1 and text == "EmptyAnswer: the provider answered with no choices"
    assert 0.008 <= wait <= 0.05


@pytest.mark.parametrize(
    ("choices", "why"),
    [
        ([], "EmptyAnswer: the provider answered with no choices"),
        (None, "InternalServerError"),  # litellm's own check
        ([{"index": 0, "finish_reason": "stop"}], "InternalServerError"),  # no message
    ],
)
def test_answers_without_a_message_end_in_a_provider_error(
    rec: Recorder, choices: Any, why: str
) -> None:
    with (
        ScriptedModel([raw_answer(choices=choices)] * 3) as server,
        pytest.raises(ProviderError, match="gave up after 3 attempts") as caught,
    ):
        complete(make_client(server, rec), rec)
    assert why in str(caught.value)
    assert len(server.requests) == 3 and len(rec.retries) == 2


class CannedClient(LiteLLMClient):
    """A client whose litellm call returns the given objects in turn: answers litellm
    itself would not build, from providers it passes through."""

    def __init__(self, config: LLMConfig, answers: list[Any], rec: Recorder) -> None:
        super().__init__(config, sleep=rec.sleep)
        self.answers = answers

    def _call(self, request: dict[str, Any], limit: float) -> Any:
        return self.answers.pop(0)


def canned(
    choices: list[Any] | None = None, usage: Any = None, response_cost: float | None = None
) -> SimpleNamespace:
    call = SimpleNamespace(id="c1", function=SimpleNamespace(name="finish", arguments="{}"))
    message = SimpleNamespace(content=None, tool_calls=[call])
    return SimpleNamespace(
        model="canned",
        choices=[SimpleNamespace(message=message)] if choices is None else choices,
        usage=usage or {"prompt_tokens": 10, "completion_tokens": 5},
        _hidden_params={"response_cost": response_cost},
    )


def canned_client(rec: Recorder, *answers: Any) -> CannedClient:
    config = LLMConfig(model="openai/canned", num_retries=1, retry_min_wait=0.01)
    return CannedClient(config, list(answers), rec)


def test_a_choice_without_a_message_is_retried(rec: Recorder) -> None:
    client = canned_client(rec, canned([SimpleNamespace(message=None)]), canned())
    assert complete(client, rec).tool_calls[0].name == "finish"
    assert rec.retries[0][1] == "EmptyAnswer: the provider answered with a choice but no message"


# ---- token counts and cost --------------------------------------------------------------------


def usage(prompt: Any = 100, completion: Any = 20, **more: Any) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 0, **more}


PRICES = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}


@pytest.mark.parametrize(
    ("reported", "kept", "rejected"),
    [
        (usage(-5, 20), (0, 20, 0), "prompt_tokens=-5"),
        (usage(100, MAX_TOKENS_PER_CALL + 1), (100, 0, 0), "completion_tokens=100000001"),
        (usage(100, 20, prompt_tokens_details={"cached_tokens": -80}), (100, 20, 0), "=-80"),
        (usage(100, 20, cache_read_input_tokens=10**12), (100, 20, 0), "=1000000000000"),
    ],
)
def test_bogus_token_counts_count_as_zero_with_a_warning(
    rec: Recorder, reported: dict[str, Any], kept: tuple[int, int, int], rejected: str
) -> None:
    with ScriptedModel([raw_answer(usage=reported)]) as server:
        completion = complete(make_client(server, rec, **PRICES), rec)
    usage = completion.usage
    got = (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
    assert got == kept
    prompt, answer, cached = kept
    assert completion.usage.cost == pytest.approx((prompt - cached) * 1e-6 + answer * 2e-6)
    (warning,) = completion.warnings
    assert warning.startswith("ignored token counts the provider reported")
    assert rejected in warning and warning.endswith("; counted as 0")


@pytest.mark.parametrize("prompt", [-5, 10**12])
def test_a_bogus_count_does_not_move_litellms_price(rec: Recorder, prompt: int) -> None:
    # litellm prices gpt-4o from the reported counts: -5 would lower the cost, 10**12 make
    # it $2.5 M. Only the 20 completion tokens are priced ($10 per million).
    with ScriptedModel([raw_answer(usage=usage(prompt, 20))]) as server:
        completion = complete(make_client(server, rec, model="openai/gpt-4o"), rec)
    assert completion.usage.prompt_tokens == 0
    assert completion.usage.cost == pytest.approx(20 * 1e-5)
    assert f"prompt_tokens={prompt}" in completion.warnings[0]


def test_sane_counts_carry_no_warning(rec: Recorder) -> None:
    with ScriptedModel([finish()]) as server:
        completion = complete(make_client(server, rec, model="openai/gpt-4o"), rec)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (100, 20)
    assert completion.usage.cost == pytest.approx(100 * 2.5e-6 + 20 * 1e-5)
    assert completion.warnings == ()


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_non_integer_counts_are_a_provider_fault(rec: Recorder) -> None:
    # litellm refuses to build such an answer (a 500 to us): retried, never counted.
    with ScriptedModel([raw_answer(usage=usage(1.5)), finish()]) as server:
        completion = complete(make_client(server, rec), rec)
    assert rec.retries[0][1].startswith("InternalServerError")
    assert (completion.usage.prompt_tokens, completion.warnings) == (100, ())


@pytest.mark.parametrize("value", [True, "12", 3.0, None])
def test_counts_that_are_not_ints_are_rejected(rec: Recorder, value: Any) -> None:
    answer = canned(usage={"prompt_tokens": value, "completion_tokens": 5})
    completion = complete(canned_client(rec, answer), rec)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (0, 5)
    assert bool(completion.warnings) is (value is not None)  # absent is just unknown


@pytest.mark.parametrize("cost", [-0.5, float("nan"), float("inf")])
def test_a_negative_or_infinite_cost_counts_as_zero(rec: Recorder, cost: float) -> None:
    completion = complete(canned_client(rec, canned(response_cost=cost)), rec)
    assert completion.usage.cost == 0.0
    assert completion.warnings[0].endswith("computed for the call; counted as $0")


# ---- fallback models ------------------------------------------------------------------------


def test_a_fallback_model_takes_over_when_retries_are_spent(rec: Recorder) -> None:
    script = [error(503)] * 2 + [finish("from backup"), finish("again")]
    with ScriptedModel(script) as server:
        client = make_client(server, rec, num_retries=1, fallback_models=["openai/backup-model"])
        first = complete(client, rec)
        second = complete(client, rec)  # stays on the fallback
    assert [r["model"] for r in server.requests] == ["scripted-model"] * 2 + ["backup-model"] * 2
    assert first.model == second.model == "backup-model"
    ((source, dest, reason),) = rec.switches
    assert (source, dest) == ("openai/scripted-model", "openai/backup-model")
    assert "gave up after 2 attempts" in reason
    assert client.model == "openai/backup-model"


def test_an_authentication_error_switches_to_the_fallback(rec: Recorder) -> None:
    with ScriptedModel([error(401), finish()]) as server:
        client = make_client(server, rec, fallback_models=["openai/backup-model"])
        assert complete(client, rec).tool_calls
    assert len(server.requests) == 2 and rec.retries == []
    assert "authentication failed" in rec.switches[0][2]


def test_a_named_section_brings_its_own_endpoint_and_key(rec: Recorder) -> None:
    with ScriptedModel([error(401)]) as main, ScriptedModel([finish()]) as other:
        backup = LLMConfig(model="openai/named-model", base_url=other.base_url, api_key="k2")
        named = {"backup": backup}
        client = make_client(main, rec, named, fallback_models=["backup"])
        assert complete(client, rec).model == "named-model"
    assert len(main.requests) == 1 and len(other.requests) == 1
    assert rec.switches[0][:2] == ("openai/scripted-model", "openai/named-model")


def test_when_every_model_fails_the_last_error_ends_the_call(rec: Recorder) -> None:
    with ScriptedModel([error(401), error(401)]) as server:
        client = make_client(server, rec, fallback_models=["openai/backup-model"])
        with pytest.raises(ProviderError, match="authentication failed for openai/backup-model"):
            complete(client, rec)
    assert len(rec.switches) == 1


def test_a_bad_request_does_not_switch(rec: Recorder) -> None:
    with ScriptedModel([error(400), finish()]) as server:
        client = make_client(server, rec, fallback_models=["openai/backup-model"])
        with pytest.raises(ProviderError, match="refused the request"):
            complete(client, rec)
    assert len(server.requests) == 1 and rec.switches == []


def test_a_fallback_of_another_provider_does_not_get_the_main_key(rec: Recorder) -> None:
    with ScriptedModel([]) as server:
        client = make_client(
            server, rec, input_cost_per_token=1.0, fallback_models=["anthropic/claude-haiku-4-5"]
        )
    fallback = client._chain[1]
    assert fallback.config.api_key is None and fallback.config.base_url is None
    assert fallback.config.input_cost_per_token is None  # a price is per model
    assert fallback.key_hint == "ANTHROPIC_API_KEY"


# ---- prompt caching -------------------------------------------------------------------------


class AnthropicModel(ScriptedModel):
    """The scripted server also speaking Anthropic's Messages API (`.../messages`), with
    cache usage in its answers."""

    def _handler(self) -> type:
        model = self

        class Handler(super()._handler()):
            def do_POST(self) -> None:
                if not self.path.endswith("/messages"):
                    return super().do_POST()
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                model.next_turn(body)
                self._send(200, anthropic_answer())

        return Handler


def anthropic_answer() -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "finish", "input": {}}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 20,
            "cache_creation_input_tokens": 50,
            "cache_read_input_tokens": 1000,
        },
    }


def cache_marks(body: Any) -> list[str]:
    """The text (or tool-result id) of every block marked cache_control, in order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "cache_control" in node:
                found.append(node.get("text") or node.get("tool_use_id") or "?")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return found


def test_anthropic_prompts_mark_the_stable_prefix_cacheable(rec: Recorder) -> None:
    original = copy.deepcopy(CONVERSATION)
    with AnthropicModel([finish()]) as server:
        client = make_client(server, rec, model="anthropic/claude-sonnet-4-5")
        completion = complete(client, rec, CONVERSATION)
    body = server.requests[0]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert cache_marks(body) == ["first result", "second result", "You are an agent."]
    assert original == CONVERSATION  # the caller's messages are untouched
    # Usage: cache reads and writes counted, priced by litellm's map.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1060, 20)
    assert (completion.usage.cached_tokens, completion.usage.cache_write_tokens) == (1000, 50)
    expected = 10 * 3e-6 + 20 * 15e-6 + 1000 * 3e-7 + 50 * 3.75e-6
    assert completion.usage.cost == pytest.approx(expected)


def test_caching_prompt_false_sends_no_cache_control(rec: Recorder) -> None:
    with AnthropicModel([finish()]) as server:
        client = make_client(server, rec, model="anthropic/claude-sonnet-4-5", caching_prompt=False)
        complete(client, rec, CONVERSATION)
    assert cache_marks(server.requests[0]) == []


def test_models_without_cache_breakpoints_get_none(rec: Recorder) -> None:
    with ScriptedModel([finish()]) as server:
        complete(make_client(server, rec), rec, CONVERSATION)
    assert cache_marks(server.requests[0]) == []


def test_breakpoints_on_system_and_the_last_two_user_or_tool_messages() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "sys"}]},
        {"role": "user", "content": "task"},
        {"role": "assistant", "content": "thinking"},
        {"role": "user", "content": "more"},
        {"role": "tool", "tool_call_id": "c", "content": ""},
    ]
    original = copy.deepcopy(messages)
    marked = with_cache_breakpoints(messages)
    assert messages == original
    assert marked[0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert marked[1] == messages[1] and marked[2] == messages[2]
    assert marked[3]["content"] == [
        {"type": "text", "text": "more", "cache_control": {"type": "ephemeral"}}
    ]
    assert marked[4]["cache_control"] == {"type": "ephemeral"}  # empty: message-level


class CachingOpenAIModel(ScriptedModel):
    """The scripted server reporting 80 of each prompt's 100 tokens as cache hits."""

    def _handler(self) -> type:
        class Handler(super()._handler()):
            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                if "usage" in payload:
                    payload["usage"]["prompt_tokens_details"] = {"cached_tokens": 80}
                super()._send(status, payload, headers)

        return Handler


@pytest.mark.parametrize(("cache_price", "cached_price"), [(None, 1e-6), (1e-7, 1e-7)])
def test_cached_tokens_with_price_overrides(
    rec: Recorder, cache_price: float | None, cached_price: float
) -> None:
    with CachingOpenAIModel([finish()]) as server:
        client = make_client(
            server,
            rec,
            input_cost_per_token=1e-6,
            output_cost_per_token=2e-6,
            cache_read_cost_per_token=cache_price,
        )
        completion = complete(client, rec)
    assert (completion.usage.prompt_tokens, completion.usage.cached_tokens) == (100, 80)
    assert completion.usage.cost == pytest.approx(20 * 1e-6 + 80 * cached_price + 20 * 2e-6)


# ---- Retry-After parsing --------------------------------------------------------------------


def http_error(headers: dict[str, str]) -> Exception:
    error = Exception("busy")
    error.response = SimpleNamespace(headers=headers)  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"Retry-After-Ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": "86400"}, RETRY_AFTER_CAP_S),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_values(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(http_error(headers)) == expected


def test_retry_after_as_an_http_date() -> None:
    now = 1_700_000_000.0
    header = formatdate(now + 30, usegmt=True)
    assert retry_after(http_error({"Retry-After": header}), now=now) == pytest.approx(30)


def test_retry_after_from_litellm_response_headers() -> None:
    error = Exception("busy")
    error.litellm_response_headers = {"Retry-After": "2"}  # type: ignore[attr-defined]
    assert retry_after(error) == 2.0


# ---- OpenHands request settings --------------------------------------------------------------


def test_ollama_base_url_is_the_server_of_an_ollama_model(rec: Recorder) -> None:
    # OpenHands' LLMConfig.ollama_base_url (llm_config.py): an ollama model's server.
    with ScriptedModel([finish()]) as server:
        url = server.base_url.removesuffix("/v1")
        config = LLMConfig(model="ollama_chat/llama3", ollama_base_url=url, num_retries=0)
        client = LiteLLMClient(config, sleep=rec.sleep)
        with pytest.raises(ProviderError):  # the scripted server does not speak ollama
            complete(client, rec)
        assert server.requests and "options" in server.requests[0]  # ollama's own body


def test_top_k_seed_and_aws_credentials_are_passed_to_litellm(rec: Recorder) -> None:
    # llm_config.py: top_k, seed, aws_access_key_id, aws_secret_access_key, aws_region_name
    with ScriptedModel([finish()]) as server:
        aws = {
            "aws_access_key_id": "AKIAEXAMPLE",
            "aws_secret_access_key": "s3cr3t-value-long",
            "aws_region_name": "eu-west-1",
        }
        client = make_client(server, rec, top_k=40, seed=7, **aws)
        request = client._request(client._chain[0], MESSAGES, TOOLS)
        assert {k: request[k] for k in aws} == aws
        complete(client, rec)
        # OpenAI takes top_k and seed; litellm keeps the AWS keys for AWS providers.
        assert (server.requests[0]["top_k"], server.requests[0]["seed"]) == (40, 7)
        assert "s3cr3t-value-long" not in json.dumps(server.requests)
