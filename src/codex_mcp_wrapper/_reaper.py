"""The supervisor ``process.spawn`` puts between the wrapper and every child it starts.

Run as ``python -I -S _reaper.py WRAPPER_PID -- ARGV...`` (no site, no package imports: it
starts in milliseconds). It becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``), so every
process its child leaves behind is re-parented to it, whatever process group or session that
process moved to (Codex runs ``danger-full-access`` commands in their own group, and its
shell-snapshot ``bash -lc`` outlives it for seconds). It asks for ``SIGTERM`` when the wrapper
dies (``PR_SET_PDEATHSIG``, so even a ``kill -9`` of the wrapper reaches it), and it ends by
killing every descendant it has:

- the child exits (Codex closed its stdin, crashed, was killed): sweep, exit with its status;
- SIGTERM (the wrapper died, or stopped the worker): sweep, exit.

It keeps no copy of the child's stdin/stdout, so the wrapper still sees EOF when the child
exits. Linux only; elsewhere ``process.spawn`` runs the child directly.
"""

import contextlib
import ctypes
import os
import signal
import sys
import time
from types import FrameType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SWEEP_ROUNDS = 50  # a descendant forking while we kill: sweep again until none is left
# Descendants get SIGTERM and this long to exit before SIGKILL: a shell killed outright skips its
# EXIT trap (pyenv's rehash then leaves its lock behind, and every later login shell waits 60 s).
TERM_GRACE = 2.0
TERM_POLL = 0.02

_libc = ctypes.CDLL(None, use_errno=True)


class Stop(Exception):
    """SIGTERM arrived: stop waiting (a plain handler would let waitpid() resume, PEP 475)."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def descendants(root: int) -> list[int]:
    """Pids of every live descendant of ``root`` (from /proc, parent links)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def sweep() -> None:
    """SIGTERM every descendant, give them TERM_GRACE to exit, then SIGKILL what is left and
    reap what was ours, until none is left."""
    me = os.getpid()
    pids = descendants(me)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + TERM_GRACE
    while pids and time.monotonic() < deadline:
        reap()
        pids = descendants(me)
        if pids:
            time.sleep(TERM_POLL)
    for _ in range(SWEEP_ROUNDS):
        pids = descendants(me)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        reap(block=True)


def reap(block: bool = False) -> dict[int, int]:
    """Reap exited children (adopted orphans included); returns {pid: wait status}."""
    statuses: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return statuses
        except InterruptedError:
            continue
        if pid == 0:
            return statuses
        statuses[pid] = status
        block = False


def main(argv: list[str]) -> int:
    wrapper = int(argv[1])
    command = argv[argv.index("--") + 1 :]
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the wrapper, which stops us
    signal.signal(signal.SIGTERM, _stop)
    try:
        if os.getppid() != wrapper:  # the wrapper died before we could ask to follow it
            return 1
        return supervise(command)
    except Stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sweep()
        return 128 + signal.SIGTERM


def supervise(command: list[str]) -> int:
    child = os.fork()
    if child == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"cannot run {command[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the child holds the pipes; EOF reaches the wrapper when it exits
    os.dup2(devnull, 1)
    code = 1
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            break
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sweep()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
