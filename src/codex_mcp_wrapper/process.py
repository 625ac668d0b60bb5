"""The one module that spawns processes: each in its own process group, reaped on every path.

A child gets ``start_new_session=True`` (its own process group, so its children can be killed
with it), stdin as a pipe we own (never our terminal, never left to block), stderr to a log file,
and on Linux ``PR_SET_PDEATHSIG`` so that it dies with the wrapper even on ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

TERM_GRACE = 2.0  # seconds between closing stdin / SIGTERM and SIGKILL
KILL_WAIT = 5.0

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


async def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stderr_log: Path | None = None,
    merge_stderr: bool = False,
    stdout_limit: int = 64 * 1024 * 1024,
) -> asyncio.subprocess.Process:
    """Start ``argv`` with pipes on stdin/stdout, stderr appended to ``stderr_log`` (or merged
    into stdout, or discarded)."""
    stderr_fh = None
    if stderr_log is not None:
        stderr_log.parent.mkdir(parents=True, exist_ok=True)
        stderr_fh = stderr_log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr_fh
            if stderr_fh is not None
            else (asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.DEVNULL),
            env=dict(env),
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            limit=stdout_limit,
        )
    finally:
        if stderr_fh is not None:
            stderr_fh.close()


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by ``pid``; silent if it is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def stop(proc: asyncio.subprocess.Process, grace: float = TERM_GRACE) -> None:
    """Close stdin, wait up to ``grace``, SIGTERM the group, wait, then SIGKILL the group.

    Shielded from cancellation: once begun, the process is always reaped.
    """
    await asyncio.shield(_stop(proc, grace))


async def _stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    if proc.stdin is not None and not proc.stdin.is_closing():
        with contextlib.suppress(OSError, RuntimeError):
            proc.stdin.close()
    if proc.returncode is None:
        try:
            async with asyncio.timeout(grace / 2):
                await proc.wait()
        except TimeoutError:
            kill_group(proc.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(grace / 2):
                    await proc.wait()
            except TimeoutError:
                pass
    # The leader may be gone while its children (MCP servers, commands) live on: always sweep.
    kill_group(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KILL_WAIT):
                await proc.wait()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22); None when there
    is no such process. With the pid it names one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[19])


def is_running(pid: int | None, started: int | None = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie) and, when ``started`` is given, still
    the process that started then (not a reuse of its pid)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: assume alive rather than steal a live run
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started
