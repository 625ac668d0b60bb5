"""Process inspection for tests: which Codex processes exist, and bounded waiting."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

POLL = 0.05


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s pass (for OS state with no event to await)."""
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


def codex_processes() -> list[int]:
    """PIDs of live processes running a binary named codex (zombies excluded)."""
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
        out.append(pid)
    return out


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = [item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item]
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def codex_pids_with_home(home: Path) -> list[int]:
    return [pid for pid in codex_processes() if environ(pid).get("CODEX_HOME") == str(home)]
