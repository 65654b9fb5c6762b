"""Stopping local process trees: a shell's whole session, or what a crashed runhands left.

Processes are found in /proc, so a process that left the session, or lost its parent, is
still found; one that runhands did not start is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import NamedTuple

# Set in the environment of every shell runhands starts; its value is the session's random
# tag. Anything in the sandbox can read it: it is not the end-of-command marker's secret.
SESSION_TAG_VAR = "RUNHANDS_SANDBOX_ID"


class _ProcStat(NamedTuple):
    ppid: int
    pgrp: int
    session: int
    state: str


def _process_table() -> dict[int, _ProcStat]:
    table: dict[int, _ProcStat] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # exited while we were looking
        # The command name is in parentheses and may itself contain spaces or parentheses.
        fields = raw[raw.rfind(b")") + 2 :].split()
        state, ppid, pgrp, session = fields[0].decode(), *map(int, fields[1:4])
        table[int(name)] = _ProcStat(ppid, pgrp, session, state)
    return table


def _session_processes(leader: int) -> dict[int, int]:
    """Live processes of leader's session and their descendants, as pid -> process group.

    Descendants are included because a child may have started a session of its own.
    """
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, st in table.items():
        children.setdefault(st.ppid, []).append(pid)
    found = {pid for pid, st in table.items() if st.session == leader}
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(os.getpid())
    return {pid: table[pid].pgrp for pid in found if table[pid].state not in ("Z", "X")}


def kill_session(leader: int) -> None:
    """SIGKILL every process of the session, the leader last so it can reap the others."""
    for _ in range(200):
        live = _session_processes(leader)
        targets = {pid: grp for pid, grp in live.items() if pid != leader} or live
        if not targets:
            return
        for pgrp in set(targets.values()) - {leader}:
            with contextlib.suppress(OSError):
                os.killpg(pgrp, signal.SIGKILL)
        for pid in targets:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.002)  # let the kills land before looking again


def stop_leftovers(identity: str) -> bool:
    """Kill what a crashed runhands left running in the shell named by `identity` (from
    `BashSession.identity`). Every process started in that shell inherits its tag variable,
    so this finds them all, even those that left its session or lost their parent, and
    never touches a process it did not start. True when something was stopped."""
    _, _, session_tag = identity.partition(":")
    if not session_tag:
        return False
    tag = f"{SESSION_TAG_VAR}={session_tag}".encode()
    stopped = False
    for _ in range(50):  # a dying process may still fork: look again until none is left
        tagged = [pid for pid in _process_table() if pid != os.getpid() and _has_tag(pid, tag)]
        if not tagged:
            break
        stopped = True
        for pid in tagged:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return stopped


def _has_tag(pid: int, tag: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return tag in f.read().split(b"\0")
    except OSError:
        return False
