"""Calling the model through litellm: native function calling, retries, usage and cost.

litellm is imported lazily (it costs ~3.5 s and ~200 MB), so `--help`, `config` and the
store readers never pay for it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from controller.config import LLMConfig
from state_store.events import ToolCall


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """One model answer, reduced to what the controller needs."""

    model: str
    content: str | None
    tool_calls: list[ToolCall]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0


class ProviderError(Exception):
    """The model could not be called: retries spent, or an error retrying cannot fix."""


# Called before each retry with (attempt number, error text, seconds to wait).
RetryHook = Callable[[int, str, float], None]


class ModelClient(Protocol):
    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_retry: RetryHook
    ) -> Completion: ...


def import_litellm() -> Any:
    # The bundled cost map: no fetch at import, no hang on networks that never answer.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


class LiteLLMClient:
    """ModelClient over `litellm.completion`."""

    def __init__(self, config: LLMConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._litellm = import_litellm()
        lm = self._litellm
        self._retryable = (
            lm.RateLimitError,
            lm.Timeout,
            lm.APIConnectionError,
            lm.InternalServerError,
            lm.ServiceUnavailableError,
            lm.BadGatewayError,
        )

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_retry: RetryHook
    ) -> Completion:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = self._litellm.completion(**self._request(messages, tools))
            except self._retryable as e:
                attempt += 1
                if attempt > self.config.num_retries:
                    raise ProviderError(f"{_describe(e)} (after {attempt} attempts)") from None
                wait = self._backoff(attempt)
                on_retry(attempt, _describe(e), wait)
                self._sleep(wait)
                continue
            except Exception as e:  # auth, bad request, unknown model...: retrying won't help
                raise ProviderError(_describe(e)) from None
            return self._completion(response, time.monotonic() - started)

    def _request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict:
        c = self.config
        request: dict[str, Any] = {
            "model": c.model,
            "messages": messages,
            "tools": tools,
            "temperature": c.temperature,
            "top_p": c.top_p,
            "api_key": c.api_key,
            "base_url": c.base_url,
            "api_version": c.api_version,
            "timeout": c.timeout,
            "max_tokens": c.max_output_tokens,
            "reasoning_effort": c.reasoning_effort,
            "custom_llm_provider": c.custom_llm_provider,
            "drop_params": c.drop_params,
            "num_retries": 0,  # retries are ours: each one is an event
        }
        return {k: v for k, v in request.items() if v is not None}

    def _backoff(self, attempt: int) -> float:
        c = self.config
        wait = min(c.retry_max_wait, c.retry_min_wait * c.retry_multiplier ** (attempt - 1))
        return wait * random.uniform(0.8, 1.0)  # jitter: parallel runs don't retry in step

    def _completion(self, response: Any, latency: float) -> Completion:
        message = response.choices[0].message
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        calls = [
            ToolCall(
                id=call.id or f"call_{i}",
                name=call.function.name or "",
                arguments=call.function.arguments or "",
            )
            for i, call in enumerate(message.tool_calls or [])
        ]
        return Completion(
            model=getattr(response, "model", None) or self.config.model,
            content=message.content or None,
            tool_calls=calls,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=self._cost(response, prompt, completion),
            latency_s=latency,
        )

    def _cost(self, response: Any, prompt: int, completion: int) -> float:
        c = self.config
        if c.input_cost_per_token is not None or c.output_cost_per_token is not None:
            return prompt * (c.input_cost_per_token or 0.0) + completion * (
                c.output_cost_per_token or 0.0
            )
        # litellm prices the call from its bundled cost map while logging it; None means
        # the model is not in the map: the cost is unknown, not an error.
        hidden = getattr(response, "_hidden_params", None) or {}
        return float(hidden.get("response_cost") or 0.0)


def _describe(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:500]}"
