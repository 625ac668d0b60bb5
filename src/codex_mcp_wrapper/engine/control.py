"""The control endpoint of a run going on: how a command in one process (``runs steer``)
reaches a run that another process (``run``, ``serve``, a background server) is driving.

While a run goes on, the process driving it listens on 127.0.0.1, on a port the system
chooses, and writes ``control.json`` (``{"port", "token", "pid"}``, mode 0600) into the run's
folder; it removes the file when the run ends. A request is one JSON line
``{"token", "op": "steer", "task_id", "text"}``; the answer is one JSON line, ``{"turn_id"}``
or ``{"error", "exit_code"}``. Whoever can read the run folder (its owner) may steer it, as
they may read its transcripts; nobody else can (the token). A wrapper killed with ``kill -9``
leaves a ``control.json`` nobody answers: the connection is refused, and ``ask`` says nobody
answered. No polling, no files to watch: the answer comes back on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.engine.seams import Backend
from codex_mcp_wrapper.errors import EXIT_INVALID_INPUT, InputError, NotSteerable, WrapperError

CONTROL_FILE = "control.json"
LOOPBACK = "127.0.0.1"
MAX_REQUEST = 1 << 20  # a steer's text is a prompt, not a file

# (task id, text) -> the id of the turn the text was added to; raises a WrapperError when not.
Steer = Callable[[str, str], Awaitable[str]]


async def steer_here(
    backend: Backend, run_id: str, task_ids: Collection[str], task_id: str, text: str
) -> str:
    """Steer a task of a run this process drives; the id of the turn the text was added to."""
    if task_id not in task_ids:
        raise InputError(f"run {run_id} has no task '{task_id}' (tasks: {', '.join(task_ids)}).")
    turn_id = await backend.steer(run_id, task_id, text)
    if turn_id is None:
        raise NotSteerable(
            f"task '{task_id}' of run {run_id} is not running a turn (it is waiting, between "
            "turns or done), so there is nothing to steer."
        )
    return turn_id


async def _answer(line: bytes, token: str, steer: Steer) -> dict[str, Any]:
    """The answer to one request line."""
    try:
        request = json.loads(line)
    except ValueError:
        request = None
    if not isinstance(request, dict) or not hmac.compare_digest(
        str(request.get("token", "")).encode(), token.encode()
    ):
        return {"error": "not a control request of this run.", "exit_code": EXIT_INVALID_INPUT}
    task_id, text = request.get("task_id"), request.get("text")
    if request.get("op") != "steer" or not isinstance(task_id, str) or not isinstance(text, str):
        return {"error": "unknown control request.", "exit_code": EXIT_INVALID_INPUT}
    try:
        return {"turn_id": await steer(task_id, text)}
    except WrapperError as exc:  # its sentence goes back to the asking process
        return {"error": str(exc), "exit_code": exc.exit_code}


def _write_private(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` readable by this user only, replacing any earlier file at once."""
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    partial.replace(path)


@contextlib.asynccontextmanager
async def listening(run_dir: Path, steer: Steer, timeout: float) -> AsyncIterator[None]:
    """Answer control requests for the run of ``run_dir`` until the block ends; each
    connection gets ``timeout`` seconds. A run folder that cannot take the file (a read-only
    state dir) leaves the run unreachable from other processes, not failed."""
    token = secrets.token_urlsafe(24)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(timeout):
                answer = await _answer(await reader.readline(), token, steer)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (TimeoutError, OSError, ValueError):
            pass  # the asking process went away, too slow, or sent too long a line
        finally:
            writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0, limit=MAX_REQUEST)
    path = run_dir / CONTROL_FILE
    port = server.sockets[0].getsockname()[1]
    with contextlib.suppress(OSError):
        _write_private(path, {"port": port, "token": token, "pid": os.getpid()})
    try:
        async with server:
            yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


async def ask(run_dir: Path, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """Send ``request`` to the process driving the run of ``run_dir``; its answer, or None
    when no process answers for that run (it is not going on, or its wrapper died)."""
    try:
        info = json.loads((run_dir / CONTROL_FILE).read_text())
        port, token = int(info["port"]), str(info["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(LOOPBACK, port, limit=MAX_REQUEST)
            try:
                writer.write(json.dumps({**request, "token": token}).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
        answer = json.loads(line)
    except (OSError, TimeoutError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None
