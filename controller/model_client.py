"""Calling the model through litellm: native function calling, retries, fallbacks, prompt
caching, usage and cost.

Each call runs in a worker thread under a watchdog, so a provider that accepts the connection
and never answers cannot hang the run. Rate limits, 5xx, timeouts and connection errors are
retried with exponential backoff and jitter (or as long as `Retry-After` asks), and so is an
answer without a message (`"choices": []`); refusals that retrying cannot fix
(authentication, bad request, unknown model) are not. When a model keeps failing, the next of
`[llm] fallback_models` takes over.

Token counts the provider reports are checked before they reach the budget: one that is not
an integer from 0 to MAX_TOKENS_PER_CALL counts as 0, the call's cost is priced from the
counts that remain, and the answer carries a warning saying what was ignored.

litellm is imported lazily (it costs ~3.5 s and ~200 MB), so `--help`, `config` and the
store readers never pay for it.
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from datetime import UTC
from typing import Any, Literal, NamedTuple, Protocol

import msgspec

from controller.config import LLMConfig
from state_store.events import ToolCall, Usage

# Used when `[llm] timeout` is unset: no call may wait forever.
DEFAULT_TIMEOUT_S = 120.0
# How often a call in progress looks at the stop event, when there is one.
_STOP_POLL_S = 0.2
# The watchdog gives litellm's own timeout this long to fire before abandoning the call.
WATCHDOG_GRACE_S = 1.0
# A provider's Retry-After is honoured up to this (a bogus "wait a day" must not stall a run).
RETRY_AFTER_CAP_S = 600.0
# No model reads or writes more in one call (the largest windows are ~10 M tokens): a larger
# count is a provider bug, and would blow the budget.
MAX_TOKENS_PER_CALL = 100_000_000
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})

Message = dict[str, Any]


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """One model answer, reduced to what the controller needs."""

    model: str
    content: str | None
    tool_calls: list[ToolCall]
    usage: Usage = Usage()
    latency_s: float = 0.0
    # What was wrong with the answer but ignored (e.g. negative token counts), for the user.
    warnings: tuple[str, ...] = ()


class ProviderError(Exception):
    """The model could not be called: retries spent, or an error retrying cannot fix."""


class ContextWindowExceeded(ProviderError):
    """The prompt is larger than the model's input window: condensing helps, retrying not."""


class WatchdogTimeout(Exception):
    """The call did not return within its timeout plus a grace: abandoned, retried."""


class EmptyAnswer(Exception):
    """The provider answered without a message (`"choices": []`): a provider fault,
    retried like a 5xx since the same request usually gets an answer next time."""


class _ModelFailed(ProviderError):
    """This model is out for now (retries spent, refused credentials, unknown model):
    a fallback model may take over."""


# Called before each retry with (attempt number, error text, seconds to wait).
RetryHook = Callable[[int, str, float], None]
# Called when calls move to the next model with (from model, to model, why).
SwitchHook = Callable[[str, str, str], None]


def no_switch_hook(from_model: str, to_model: str, reason: str) -> None:
    """The default SwitchHook: nobody records switches."""


class ModelClient(Protocol):
    def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        on_retry: RetryHook,
        on_switch: SwitchHook = no_switch_hook,
    ) -> Completion: ...


def _ollama_url(config: LLMConfig) -> str | None:
    """OpenHands' `ollama_base_url`: the server of an `ollama/...` model without base_url."""
    provider = config.model.split("/", 1)[0] if "/" in config.model else ""
    return config.ollama_base_url if provider in ("ollama", "ollama_chat") else None


def import_litellm() -> Any:
    # The bundled cost map: no fetch at import, no hang on networks that never answer.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


class _Model(NamedTuple):
    """One model of the fallback chain and how to call it."""

    config: LLMConfig
    key_hint: str  # where its key comes from, for "authentication failed" messages
    cache_control: bool  # mark the prompt's stable prefix cacheable


class _Usage(NamedTuple):
    prompt: int
    completion: int
    cached: int
    cache_write: int
    rejected: tuple[str, ...] = ()  # the counts set to 0, as "name=value"


ErrorKind = Literal["retry", "auth", "not_found", "context", "refused"]


class LiteLLMClient:
    """ModelClient over `litellm.completion`, with the main model then its fallbacks.

    `llm_configs` are the named `[llm.NAME]` sections a fallback entry may name."""

    def __init__(
        self,
        config: LLMConfig,
        sleep: Callable[[float], None] = time.sleep,
        llm_configs: Mapping[str, LLMConfig] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        # Set by a batch to stop this run: the call or the pause in progress ends at once
        # with KeyboardInterrupt, as Ctrl-C ends it in the main thread.
        self._stop = stop
        self._litellm = import_litellm()
        lm = self._litellm
        self._retryable = (
            WatchdogTimeout,
            EmptyAnswer,
            lm.RateLimitError,
            lm.Timeout,
            lm.APIConnectionError,
            lm.InternalServerError,
            lm.ServiceUnavailableError,
            lm.BadGatewayError,
        )
        self._auth_errors = (lm.AuthenticationError, lm.PermissionDeniedError)
        self._chain = self._fallback_chain(config, llm_configs or {})
        self._active = 0  # index in the chain: once switched, later calls stay there

    @property
    def model(self) -> str:
        """The model calls currently go to."""
        return self._chain[self._active].config.model

    def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        on_retry: RetryHook,
        on_switch: SwitchHook = no_switch_hook,
    ) -> Completion:
        while True:
            current = self._chain[self._active]
            try:
                return self._complete_with(current, messages, tools, on_retry)
            except _ModelFailed as e:
                if self._active + 1 >= len(self._chain):
                    raise ProviderError(str(e)) from None
                self._active += 1
                on_switch(current.config.model, self.model, str(e))

    # ---- one model, with retries ------------------------------------------------------------

    def _complete_with(
        self,
        model: _Model,
        messages: list[Message],
        tools: list[dict[str, Any]],
        on_retry: RetryHook,
    ) -> Completion:
        request = self._request(model, messages, tools)
        limit = _timeout(model.config) + WATCHDOG_GRACE_S
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = self._call(request, limit)
                message = _first_message(response)
            except Exception as e:
                attempt += 1
                wait, note = self._wait_before_retry(model, e, attempt)
                on_retry(attempt, _describe(e) + note, wait)
                self._pause(wait)
                continue
            latency = time.monotonic() - started
            return self._completion(model.config, response, message, latency)

    def _call(self, request: dict[str, Any], limit: float) -> Any:
        """litellm.completion in a daemon thread, abandoned after `limit` seconds: a socket
        that never answers must not hold the run (nor, being a daemon, the exit)."""
        future: Future[Any] = Future()

        def work() -> None:
            try:
                future.set_result(self._litellm.completion(**request))
            except BaseException as e:  # handed to the caller's thread
                future.set_exception(e)

        threading.Thread(target=work, name="runhands-model-call", daemon=True).start()
        self._wait_answer(future, limit)
        if not future.done():
            raise WatchdogTimeout(f"no answer after {limit:g}s: the call was abandoned")
        return future.result()

    def _wait_answer(self, future: Future[Any], limit: float) -> None:
        if self._stop is None:
            wait_for([future], timeout=limit)
            return
        deadline = time.monotonic() + limit
        while not future.done() and (left := deadline - time.monotonic()) > 0:
            wait_for([future], timeout=min(left, _STOP_POLL_S))
            if self._stop.is_set():
                raise KeyboardInterrupt

    def _pause(self, seconds: float) -> None:
        if self._stop is None:
            self._sleep(seconds)
        elif self._stop.wait(seconds):
            raise KeyboardInterrupt

    def _wait_before_retry(
        self, model: _Model, error: Exception, attempt: int
    ) -> tuple[float, str]:
        """Seconds to wait before retrying, and a note for the retry event; raises the
        ProviderError to give up with."""
        kind = self._kind(error)
        if kind != "retry":
            raise _refusal(kind, model, error)
        if attempt > model.config.num_retries:
            raise _ModelFailed(
                f"{model.config.model}: {_describe(error)} (gave up after {attempt} attempts)"
            )
        asked = retry_after(error)
        if asked is not None:
            return asked, f" [Retry-After: {asked:g}s]"
        return self._backoff(model.config, attempt), ""

    def _kind(self, error: Exception) -> ErrorKind:
        if isinstance(error, self._litellm.ContextWindowExceededError):
            return "context"
        status = getattr(error, "status_code", None)
        if isinstance(error, self._auth_errors) or status in (401, 403):
            return "auth"
        if isinstance(error, self._litellm.NotFoundError) or status == 404:
            return "not_found"
        retryable_status = isinstance(status, int) and (
            status in _RETRYABLE_STATUS or status >= 500
        )
        if isinstance(error, self._retryable) or retryable_status:
            return "retry"
        return "refused"

    @staticmethod
    def _backoff(config: LLMConfig, attempt: int) -> float:
        c = config
        wait = min(c.retry_max_wait, c.retry_min_wait * c.retry_multiplier ** (attempt - 1))
        return wait * random.uniform(0.8, 1.0)  # jitter: parallel runs don't retry in step

    # ---- the request -------------------------------------------------------------------------

    def _request(
        self, model: _Model, messages: list[Message], tools: list[dict[str, Any]]
    ) -> dict[str, Any]:
        c = model.config
        request: dict[str, Any] = {
            "model": c.model,
            "messages": with_cache_breakpoints(messages) if model.cache_control else messages,
            "tools": tools or None,  # none for a summary: an empty list is refused
            "temperature": c.temperature,
            "top_p": c.top_p,
            "api_key": c.api_key,
            "base_url": c.base_url or _ollama_url(c),
            "api_version": c.api_version,
            "timeout": _timeout(c),
            "max_tokens": c.max_output_tokens,
            "reasoning_effort": c.reasoning_effort,
            "custom_llm_provider": c.custom_llm_provider,
            "drop_params": c.drop_params,
            "num_retries": 0,  # retries are ours: each one is an event
            "top_k": c.top_k,
            "seed": c.seed,
            # Bedrock credentials (OpenHands copies them to AWS_* in llm_config.py:
            # model_post_init; litellm takes them as arguments, keeping them per model).
            "aws_access_key_id": c.aws_access_key_id,
            "aws_secret_access_key": c.aws_secret_access_key,
            "aws_region_name": c.aws_region_name,
        }
        return {k: v for k, v in request.items() if v is not None}

    # ---- the fallback chain ----------------------------------------------------------------

    def _fallback_chain(self, main: LLMConfig, named: Mapping[str, LLMConfig]) -> list[_Model]:
        chain = [self._model(main, "LLM_API_KEY")]
        for entry in main.fallback_models:
            name = entry.strip("[]").removeprefix("llm.")  # as `-l` accepts it
            if name in named:
                chain.append(self._model(named[name], f"api_key in [llm.{name}]"))
            else:
                chain.append(self._fallback_model(main, entry))
        return chain

    def _fallback_model(self, main: LLMConfig, model: str) -> _Model:
        """A plain model name: of the main model's provider, it reuses its key and endpoint;
        of another provider, litellm takes that provider's key from the environment.
        Price overrides are per model: its cost comes from litellm's map."""
        plain = msgspec.structs.replace(
            main,
            model=model,
            fallback_models=[],
            input_cost_per_token=None,
            output_cost_per_token=None,
            cache_read_cost_per_token=None,
        )
        provider = self._provider(model)
        if provider is None or provider == self._provider(main.model, main.custom_llm_provider):
            return self._model(plain, "LLM_API_KEY")
        other = msgspec.structs.replace(
            plain, api_key=None, base_url=None, api_version=None, custom_llm_provider=None
        )
        return self._model(other, f"{provider.upper()}_API_KEY")

    def _model(self, config: LLMConfig, key_hint: str) -> _Model:
        return _Model(config, key_hint, self._uses_cache_control(config))

    def _provider(self, model: str, custom: str | None = None) -> str | None:
        try:
            return self._litellm.get_llm_provider(model, custom_llm_provider=custom)[1]
        except Exception:  # a bare name litellm cannot place
            return None

    def _uses_cache_control(self, config: LLMConfig) -> bool:
        """`cache_control` breakpoints are Anthropic's protocol: Claude models, whether
        called at Anthropic or through Bedrock, Vertex or OpenRouter."""
        if not config.caching_prompt:
            return False
        if self._provider(config.model, config.custom_llm_provider) == "anthropic":
            return True
        if "claude" not in config.model.lower():
            return False
        from litellm.utils import supports_prompt_caching

        try:
            return bool(supports_prompt_caching(config.model, config.custom_llm_provider))
        except Exception:  # not in litellm's map
            return False

    # ---- the answer ------------------------------------------------------------------------

    def _completion(
        self, config: LLMConfig, response: Any, message: Any, latency: float
    ) -> Completion:
        usage = _usage(response)
        cost, cost_note = _checked_cost(self._cost(config, response, usage))
        calls = [
            ToolCall(
                id=call.id or f"call_{i}",
                name=call.function.name or "",
                arguments=call.function.arguments or "",
            )
            for i, call in enumerate(message.tool_calls or [])
        ]
        return Completion(
            model=getattr(response, "model", None) or config.model,
            content=message.content or None,
            tool_calls=calls,
            usage=Usage(
                prompt_tokens=usage.prompt,
                completion_tokens=usage.completion,
                cost=cost,
                cached_tokens=usage.cached,
                cache_write_tokens=usage.cache_write,
            ),
            latency_s=latency,
            warnings=_usage_warnings(usage, cost_note),
        )

    def _cost(self, config: LLMConfig, response: Any, usage: _Usage) -> float:
        if config.input_cost_per_token is not None or config.output_cost_per_token is not None:
            return _override_cost(config, usage)
        if not usage.rejected:
            # litellm priced the call from its bundled cost map while logging it, cache
            # reads and writes included; None: the model is not in the map (unknown, not
            # an error).
            hidden = getattr(response, "_hidden_params", None) or {}
            return float(hidden.get("response_cost") or 0.0)
        return self._map_cost(config, usage)

    def _map_cost(self, config: LLMConfig, usage: _Usage) -> float:
        """The price of the counts that were kept: litellm's own cost was computed from the
        rejected ones too (a negative count lowers it, a huge one blows it up)."""
        try:
            prompt, completion = self._litellm.cost_per_token(
                model=config.model,
                custom_llm_provider=config.custom_llm_provider,
                prompt_tokens=usage.prompt,
                completion_tokens=usage.completion,
                cache_read_input_tokens=usage.cached,
                cache_creation_input_tokens=usage.cache_write,
            )
        except Exception:  # not in litellm's map: unknown, as above
            return 0.0
        return float(prompt) + float(completion)


# ---- helpers -----------------------------------------------------------------------------------


def _timeout(config: LLMConfig) -> float:
    return config.timeout or DEFAULT_TIMEOUT_S


def with_cache_breakpoints(messages: list[Message]) -> list[Message]:
    """The messages with the system prompt and the last two user/tool messages marked
    `cache_control: ephemeral` (Anthropic allows 4 breakpoints): the cached prefix grows
    with the conversation. The caller's dicts are not modified."""
    marked = list(messages)
    targets = [i for i, m in enumerate(messages) if m.get("role") in ("user", "tool")][-2:]
    system = next((i for i, m in enumerate(messages) if m.get("role") == "system"), None)
    for i in ([system] if system is not None else []) + targets:
        marked[i] = _with_cache_control(messages[i])
    return marked


def _with_cache_control(message: Message) -> Message:
    content = message.get("content")
    if isinstance(content, str) and content:
        block = {"type": "text", "text": content, "cache_control": {"type": "ephemeral"}}
        return {**message, "content": [block]}
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        last = {**content[-1], "cache_control": {"type": "ephemeral"}}
        return {**message, "content": [*content[:-1], last]}
    # Empty content: a message-level marker, which litellm moves onto the block it builds.
    return {**message, "cache_control": {"type": "ephemeral"}}


def retry_after(error: Exception, now: float | None = None) -> float | None:
    """Seconds the provider asked to wait (`retry-after-ms`, or `Retry-After` in seconds or
    as an HTTP date), capped at RETRY_AFTER_CAP_S; None when it did not say."""
    headers = _headers_of(error)
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return _capped(float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return _capped(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return _capped(when.timestamp() - (time.time() if now is None else now))


def _capped(seconds: float) -> float | None:
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def _headers_of(error: Exception) -> dict[str, str]:
    """The HTTP response headers behind a litellm error, lower-cased; {} if none."""
    response = getattr(error, "response", None)
    for headers in (
        getattr(response, "headers", None),
        getattr(error, "litellm_response_headers", None),
    ):
        if headers:
            return {str(k).lower(): str(v) for k, v in headers.items()}
    return {}


def _refusal(kind: ErrorKind, model: _Model, error: Exception) -> ProviderError:
    """The error to stop with when retrying cannot help, in one line."""
    name, why = model.config.model, _describe(error)
    if kind == "auth":
        return _ModelFailed(f"authentication failed for {name}: check {model.key_hint} ({why})")
    if kind == "not_found":
        return _ModelFailed(f"{name} was not found: check the model name and base_url ({why})")
    if kind == "context":
        return ContextWindowExceeded(f"the prompt is too long for {name} ({why})")
    return ProviderError(f"{name} refused the request: {why}")


def _first_message(response: Any) -> Any:
    """The answer's message; EmptyAnswer when the provider sent none."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise EmptyAnswer("the provider answered with no choices")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise EmptyAnswer("the provider answered with a choice but no message")
    return message


def _usage(response: Any) -> _Usage:
    """Token counts; cache reads as OpenAI reports them (prompt_tokens_details.cached_tokens)
    or as Anthropic does (cache_read_input_tokens), cache writes as Anthropic does."""
    usage = getattr(response, "usage", None)
    details = _field(usage, "prompt_tokens_details")
    rejected: list[str] = []

    def count(source: Any, name: str) -> int:
        value = _field(source, name)
        if value is None:
            return 0
        if not _is_token_count(value):
            rejected.append(f"{name}={value!r}")
            return 0
        return value

    prompt, completion = count(usage, "prompt_tokens"), count(usage, "completion_tokens")
    cached = count(details, "cached_tokens") or count(usage, "cache_read_input_tokens")
    cache_write = count(usage, "cache_creation_input_tokens") or count(
        details, "cache_creation_tokens"
    )
    return _Usage(prompt, completion, cached, cache_write, tuple(rejected))


def _is_token_count(value: object) -> bool:
    # bool is an int to Python, not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return 0 <= value <= MAX_TOKENS_PER_CALL


def _field(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def _override_cost(config: LLMConfig, usage: _Usage) -> float:
    """The cost at `[llm] input_cost_per_token` / `output_cost_per_token` (and the cached
    price), which config validation keeps non-negative."""
    c = config
    price_in = c.input_cost_per_token or 0.0
    price_cached = price_in if c.cache_read_cost_per_token is None else c.cache_read_cost_per_token
    uncached = max(usage.prompt - usage.cached, 0)
    return (
        uncached * price_in
        + usage.cached * price_cached
        + usage.completion * (c.output_cost_per_token or 0.0)
    )


def _checked_cost(cost: float) -> tuple[float, str]:
    """The cost, or 0 with a note when it is negative or not finite: the budget only grows."""
    if math.isfinite(cost) and cost >= 0:
        return cost, ""
    return 0.0, f"ignored the cost of ${cost!r} computed for the call; counted as $0"


def _usage_warnings(usage: _Usage, cost_note: str) -> tuple[str, ...]:
    found = []
    if usage.rejected:
        found.append(
            "ignored token counts the provider reported "
            f"(not whole numbers from 0 to {MAX_TOKENS_PER_CALL:,}): "
            + ", ".join(usage.rejected)
            + "; counted as 0"
        )
    if cost_note:
        found.append(cost_note)
    return tuple(found)


def _describe(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:500]}"
