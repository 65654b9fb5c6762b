"""A batch starts at most N sandboxes at once: the gate around `start`, with real local
sandboxes starting from many threads."""

from __future__ import annotations

import threading
from pathlib import Path

from sandbox.gated import GatedStart
from sandbox.local import LocalSandbox


class _Counting(LocalSandbox):
    """A real local sandbox that counts how many start at the same time."""

    lock = threading.Condition()
    now = 0
    most = 0

    def start(self) -> None:
        with _Counting.lock:
            _Counting.now += 1
            _Counting.most = max(_Counting.most, _Counting.now)
            _Counting.lock.notify_all()
            # Hold on a little for others to come in: without the gate, more than two would.
            _Counting.lock.wait_for(lambda: _Counting.now > 2, timeout=0.3)
        try:
            super().start()
        finally:
            with _Counting.lock:
                _Counting.now -= 1


def test_at_most_n_sandboxes_start_at_once(tmp_path: Path) -> None:
    gate = threading.BoundedSemaphore(2)
    boxes = [GatedStart(_Counting(str(tmp_path)), gate) for _ in range(8)]
    threads = [threading.Thread(target=box.start) for box in boxes]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert 1 <= _Counting.most <= 2
        # Everything else is the sandbox's own.
        assert all(box.run("echo ok").output.strip() == "ok" for box in boxes)
        assert boxes[0].workdir == str(tmp_path)
    finally:
        for box in boxes:
            box.close()
