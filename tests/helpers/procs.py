"""Process inspection for tests: which Codex processes exist, and bounded waiting."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterable
from pathlib import Path

POLL = 0.05


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait, on the kernel's exit events (pidfds), until every process in ``pids`` has exited;
    False if some still run after ``timeout`` s. A zombie counts as exited."""
    fds: list[int] = []
    for pid in set(pids):
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            continue
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    remaining = set(fds)
    deadline = time.monotonic() + timeout
    try:
        while remaining:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for fd, _ in poller.poll(left * 1000):
                remaining.discard(fd)
                poller.unregister(fd)
        return True
    finally:
        for fd in fds:
            os.close(fd)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s pass: only for state that has no event to
    wait on (a line appearing in a file another process writes). Process exits use wait_gone."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def codex_processes(mine: bool = False) -> list[int]:
    """PIDs of live processes running a binary named codex (zombies excluded); with ``mine``,
    only those this test session started (``started_by_this_session``)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if not _exe(pid).endswith("/codex"):
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue
        if mine and not started_by_this_session(pid):
            continue
        out.append(pid)
    return out


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[-1].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def started_by_this_session(pid: int) -> bool:
    """Whether ``pid`` descends from this test process, or was orphaned from a process tree
    of ours (the top of its tree, adopted by init, is the wrapper or Codex itself: a leftover
    whose parents are gone). Processes of other sessions (a parallel pytest-xdist worker, a
    suite or a script run elsewhere on the machine) are not this session's."""
    me, current, seen = os.getpid(), pid, 0
    while seen < 64:
        parent = _parent(current)
        if parent == me:
            return True
        if parent <= 1:
            return "codex" in _cmdline(current).lower()
        current, seen = parent, seen + 1
    return False


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = [item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item]
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def codex_pids_with_home(home: Path) -> list[int]:
    return [pid for pid in codex_processes() if environ(pid).get("CODEX_HOME") == str(home)]
