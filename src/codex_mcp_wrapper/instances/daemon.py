"""Background MCP servers per instance: start (detached), stop, status.

The pid file records ``pid port``; a pid file whose process is gone (or is not ours) is stale
and removed. Stopping sends SIGTERM (the server cancels its runs and reaps its workers), waits,
then kills the process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from codex_mcp_wrapper.errors import EnvironmentProblem
from codex_mcp_wrapper.instances.registry import Instance

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
POLL = 0.1


@dataclass(frozen=True)
class ServerState:
    instance: str
    running: bool
    pid: int | None
    port: int | None
    stale: bool = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie or another program that reused the pid is not our server
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return b"codex" in cmdline and b"serve" in cmdline


def read_state(inst: Instance) -> ServerState:
    try:
        pid_text, port_text = inst.pid_file.read_text().split()
        pid, port = int(pid_text), int(port_text)
    except (OSError, ValueError):
        return ServerState(inst.name, False, None, None)
    if _alive(pid):
        return ServerState(inst.name, True, pid, port)
    return ServerState(inst.name, False, pid, port, stale=True)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _holder(port: int, instances: list[Instance]) -> str:
    for other in instances:
        state = read_state(other)
        if state.running and state.port == port:
            return f"instance '{other.name}' (pid {state.pid})"
    return "another program"


def launch_argv(inst: Instance, port: int, extra: list[str]) -> list[str]:
    """Run the instance's installed release when it has one, else this checkout's code."""
    base = (
        [str(inst.launcher)]
        if inst.launcher.exists()
        else [sys.executable, "-m", "codex_mcp_wrapper"]
    )
    return [
        *base,
        "--instance",
        inst.name,
        "serve",
        "--transport",
        "http",
        "--port",
        str(port),
        *extra,
    ]


def start(
    inst: Instance,
    port: int,
    extra: list[str],
    others: list[Instance],
    env_extra: dict[str, str] | None = None,
) -> ServerState:
    state = read_state(inst)
    if state.running:
        raise EnvironmentProblem(
            f"instance '{inst.name}' is already serving on port {state.port} (pid {state.pid}); "
            f"stop it first with `codex-mcp-wrapper --instance {inst.name} serve stop`."
        )
    if state.stale:
        inst.pid_file.unlink(missing_ok=True)
    if not port_free(port):
        raise EnvironmentProblem(
            f"port {port} is busy, held by {_holder(port, others)}; choose another with --port."
        )
    log = inst.log_file(port)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(env_extra or {}), "CODEX_MCP_WRAPPER_INSTANCE": inst.name}
    with log.open("ab") as fh:
        proc = subprocess.Popen(  # detached: its own session, no terminal, logs to the file
            launch_argv(inst, port, extra),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=fh,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    inst.pid_file.write_text(f"{proc.pid} {port}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while port_free(port):
        if proc.poll() is not None:
            inst.pid_file.unlink(missing_ok=True)
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise EnvironmentProblem(
                f"the server of instance '{inst.name}' exited at start: {tail[0]} (log: {log})."
            )
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            inst.pid_file.unlink(missing_ok=True)
            raise EnvironmentProblem(
                f"the server did not listen within {START_TIMEOUT:g} s; see {log}."
            )
        time.sleep(POLL)
    return ServerState(inst.name, True, proc.pid, port)


def stop(inst: Instance) -> ServerState:
    state = read_state(inst)
    if not state.running or state.pid is None:
        inst.pid_file.unlink(missing_ok=True)
        return state
    with contextlib.suppress(ProcessLookupError):
        os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(state.pid) and time.monotonic() < deadline:
        time.sleep(POLL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(state.pid, signal.SIGKILL)  # whatever is left of its group
    inst.pid_file.unlink(missing_ok=True)
    return ServerState(inst.name, False, state.pid, state.port)
