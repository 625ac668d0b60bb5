"""The one module that spawns the processes of a run: each reaped, with all it starts, on
every path.

A child gets ``start_new_session=True`` (its own process group, so its children can be killed
with it), stdin as a pipe we own (never our terminal, never left to block), and stderr to a log
file. On Linux it runs under ``_reaper.py``, a supervisor that is a child subreaper and follows
the wrapper's death (``PR_SET_PDEATHSIG``): when the child exits, the worker is stopped, or the
wrapper dies (even by ``kill -9``), every process the child started dies too, including those
that left its process group (Codex's ``danger-full-access`` commands do).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

TERM_GRACE = 2.0  # seconds between closing stdin / SIGTERM and SIGKILL
# After SIGTERM, how long the supervisor (_reaper.py) may take to sweep what its child left:
# its own TERM_GRACE (2 s) for descendants to exit, then SIGKILL; killing it sooner would cut
# the sweep short and leave descendants outside its process group running.
SUPERVISOR_SWEEP = 3.0
REAPER = Path(__file__).with_name("_reaper.py")
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
    into stdout, or discarded). Raises ``OSError`` when ``argv[0]`` cannot be run."""
    program = shutil.which(argv[0]) if "/" not in argv[0] else argv[0]
    if program is None or not os.path.isfile(program):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    if not os.access(program, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), argv[0])
    if sys.platform.startswith("linux"):
        argv = [sys.executable, "-I", "-S", str(REAPER), str(os.getpid()), "--", *argv]
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


async def finish(work: Awaitable[T]) -> T:
    """Await ``work`` to its end whatever cancellations arrive meanwhile, then re-raise the
    cancellation if one came: for cleanup that must complete (releasing a lease, reaping a
    process). ``asyncio.shield`` alone is not enough: the awaiting task still returns at the
    first cancel (and the MCP SDK, through anyio, re-delivers a cancel on every iteration
    until its handler ends), leaving the cleanup to run unobserved."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done() and not task.cancelled():
                result = task.result()
                cancelled = True
                break
            if task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


async def stop(proc: asyncio.subprocess.Process, grace: float = TERM_GRACE) -> None:
    """Close stdin, wait up to ``grace``, SIGTERM the group, wait, then SIGKILL the group.

    Shielded from cancellation: once begun, the process is always reaped.
    """
    await finish(_stop(proc, grace))


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
            supervised = sys.platform.startswith("linux")
            try:
                async with asyncio.timeout(max(grace / 2, SUPERVISOR_SWEEP if supervised else 0)):
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


_PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Make this process a child subreaper: a process orphaned below it (its supervisor was
    killed) is re-parented here instead of to init, so ``sweep_descendants`` can end it.
    For entry points (the CLI); a library never changes its host process like this."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _children(pid: int) -> list[int] | None:
    """Children of ``pid`` from /proc/PID/task/*/children (None when the kernel has no such
    files): reads only the tree, where a scan of /proc reads every process."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []  # gone
    for task in tasks:
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            if not (task / "children").parent.exists():
                continue  # the thread ended
            return None
        except OSError:
            continue
    return found


def descendants(root: int) -> list[int]:
    """Pids of every live descendant of ``root``, from /proc (empty elsewhere)."""
    found: list[int] = []
    todo = [root]
    while todo:
        children = _children(todo.pop())
        if children is None:
            return _descendants_by_scan(root)
        found.extend(children)
        todo.extend(children)
    return found


def _descendants_by_scan(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in parents.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` and all its descendants, in MiB (None when unknown)."""
    total_kb = 0
    seen = False
    for member in (pid, *descendants(pid)):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
                seen = True
                break
    return total_kb / 1024 if seen else None


def sweep_descendants() -> None:
    """Kill whatever still runs below this process and reap it (the entry point's last act)."""
    me = os.getpid()
    for _ in range(10):
        found = descendants(me)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
