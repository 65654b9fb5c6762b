"""A sandbox whose start waits for a free slot, so that a batch starts at most so many
sandboxes (containers, bubblewrap) at once; everything else is the wrapped sandbox's."""

from __future__ import annotations

import threading
from typing import Any

from sandbox.protocol import Sandbox


class GatedStart:
    def __init__(self, inner: Sandbox, gate: threading.Semaphore) -> None:
        self._inner = inner
        self._gate = gate

    def start(self) -> None:
        with self._gate:
            self._inner.start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
