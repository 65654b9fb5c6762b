"""How fast provider faults are cut: prints the figures; not a test (the tests assert what
happens, never how long it takes).

    .venv/bin/python bench/bench_provider_faults.py

- in-process (LiteLLMClient): a hung call cut by litellm's own timeout (`timeout` = 1 s),
  and one litellm would wait on, abandoned by the watchdog (timeout + 1 s grace);
- through the CLI (`LLM_TIMEOUT=1`, 2 retries, 0.01-0.05 s backoff): a hanging endpoint, a
  trickling one (only the watchdog can end it) and one answering `"choices": []`, each
  until the run ends with exit code 5.

Every hung answer would take 30 s (the trickle 60 s) if it were not cut.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from controller.config import LLMConfig  # noqa: E402
from controller.model_client import LiteLLMClient, ProviderError  # noqa: E402
from tests.conftest import Cli  # noqa: E402
from tests.e2e.test_provider_faults import TricklingModel  # noqa: E402
from tests.scripted_model import ScriptedModel, Turn, raw_answer  # noqa: E402

MESSAGES = [{"role": "user", "content": "the task"}]


def stamp_requests(server: ScriptedModel) -> list[float]:
    """The monotonic time each request reaches `server`, filled in as they arrive."""
    arrivals: list[float] = []
    original = server.next_turn

    def stamped(body: dict[str, Any]) -> Any:
        arrivals.append(time.monotonic())
        return original(body)

    server.next_turn = stamped  # type: ignore[method-assign]
    return arrivals


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# ---- in-process -------------------------------------------------------------------------------


class NoLitellmTimeout(LiteLLMClient):
    """litellm gets no timeout of its own: only the watchdog can cut the call."""

    def _request(self, *args: Any) -> dict[str, Any]:
        request = super()._request(*args)
        request.pop("timeout")
        return request


def cut_times(client_type: type[LiteLLMClient], attempts: int = 3) -> list[float]:
    """Seconds from each hung call's request to its retry (or final) error."""
    with ScriptedModel([Turn(delay=30)] * attempts) as server:
        arrivals = stamp_requests(server)
        ends: list[float] = []
        config = LLMConfig(
            model="openai/bench",
            api_key="bench-key",
            base_url=server.base_url,
            timeout=1,
            num_retries=attempts - 1,
        )
        client = client_type(config, sleep=lambda _: None)
        try:
            client.complete(MESSAGES, [], lambda *_: ends.append(time.monotonic()))
        except ProviderError:
            ends.append(time.monotonic())
    return [end - start for start, end in zip(arrivals, ends, strict=True)]


# ---- through the CLI --------------------------------------------------------------------------


def report_cli(name: str, server: ScriptedModel, env: dict[str, str]) -> None:
    """Exit code, seconds from process start and from the first request to exit, and the
    gaps between requests (each: the cut plus the backoff)."""
    # The client hanging up is the point here: no traceback for the broken pipe.
    server._server.handle_error = lambda *_: None  # type: ignore[method-assign]
    arrivals = stamp_requests(server)
    with server, tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        code = Cli(Path(tmp)).run("run", "-t", "task", model=server, env=env).returncode
        ended = time.monotonic()
    spaced = ", ".join(f"{g:.2f}" for g in gaps(arrivals))
    print(
        f"CLI, {name}: exit code {code} after {ended - started:.2f} s "
        f"({ended - arrivals[0]:.2f} s after the first request); "
        f"{len(arrivals)} requests, {spaced} s apart"
    )


def main() -> None:
    litellm_cut = cut_times(LiteLLMClient)
    watchdog_cut = cut_times(NoLitellmTimeout)
    print(
        "in-process, litellm timeout 1 s: hung calls cut after "
        f"{statistics.mean(litellm_cut):.2f} s (max {max(litellm_cut):.2f} s, 3 calls)"
    )
    print(
        "in-process, watchdog limit 2 s: hung calls abandoned after "
        f"{statistics.mean(watchdog_cut):.2f} s (max {max(watchdog_cut):.2f} s, 3 calls)"
    )
    timeout = {"LLM_TIMEOUT": "1"}
    report_cli("hanging endpoint", ScriptedModel([Turn(delay=30)] * 3), timeout)
    report_cli("trickling endpoint", TricklingModel([]), timeout)
    report_cli('"choices": []', ScriptedModel([raw_answer(choices=[])] * 3), {})


if __name__ == "__main__":
    main()
