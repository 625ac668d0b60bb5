"""The control endpoint of a run going on: how a command in one process (``runs steer``,
``runs cancel``, the UI) reaches a run that another process (``run``, ``serve``, a background
server) is driving.

While a run goes on, the process driving it listens on 127.0.0.1, on a port the system
chooses, and writes ``control.json`` (``{"port", "token", "pid"}``, mode 0600) into the run's
folder; it removes the file when the run ends. A request is one JSON line with the token and an
op: ``{"op": "steer", "task_id", "text"}`` (answered ``{"turn_id"}``), ``{"op": "cancel",
"task_id"}`` (one running task; answered ``{"cancelled": true}`` once it is recorded) or
``{"op": "cancel"}`` (the whole run; answered ``{"cancelled": true}`` once its end is
recorded, ``false`` when it still stops after ``Timeouts.cancel``); an error is ``{"error",
"exit_code"}``. Whoever can read the run folder (its owner) may steer or cancel it, as they may
read its transcripts; nobody else can (the token). A wrapper killed with ``kill -9`` leaves a
``control.json`` nobody answers: the connection is refused, and ``ask`` says nobody answered.
No polling, no files to watch: the answer comes back on the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.engine.cancels import TaskCancels
from codex_mcp_wrapper.engine.seams import Backend
from codex_mcp_wrapper.errors import (
    EXIT_INVALID_INPUT,
    InputError,
    NotCancellable,
    NotSteerable,
    WrapperError,
)

CONTROL_FILE = "control.json"
LOOPBACK = "127.0.0.1"
MAX_REQUEST = 1 << 20  # a steer's text is a prompt, not a file

# (task id, text) -> the id of the turn the text was added to; raises a WrapperError when not.
Steer = Callable[[str, str], Awaitable[str]]


@dataclass(frozen=True)
class Controls:
    """What the control endpoint of a run does: steer a task's turn, cancel one running task
    (raises a WrapperError when it cannot), cancel the whole run (True once its end is
    recorded)."""

    steer: Steer
    cancel_task: Callable[[str], Awaitable[None]]
    cancel_run: Callable[[], Awaitable[bool]]


def _known(run_id: str, task_ids: Collection[str], task_id: str) -> None:
    if task_id not in task_ids:
        raise InputError(f"run {run_id} has no task '{task_id}' (tasks: {', '.join(task_ids)}).")


async def steer_here(
    backend: Backend, run_id: str, task_ids: Collection[str], task_id: str, text: str
) -> str:
    """Steer a task of a run this process drives; the id of the turn the text was added to."""
    _known(run_id, task_ids, task_id)
    turn_id = await backend.steer(run_id, task_id, text)
    if turn_id is None:
        raise NotSteerable(
            f"task '{task_id}' of run {run_id} is not running a turn (it is waiting, between "
            "turns or done), so there is nothing to steer."
        )
    return turn_id


async def _answer(line: bytes, token: str, controls: Controls) -> dict[str, Any]:
    """The answer to one request line."""
    try:
        request = json.loads(line)
    except ValueError:
        request = None
    if not isinstance(request, dict) or not hmac.compare_digest(
        str(request.get("token", "")).encode(), token.encode()
    ):
        return {"error": "not a control request of this run.", "exit_code": EXIT_INVALID_INPUT}
    try:
        return await _perform(request, controls)
    except WrapperError as exc:  # its sentence goes back to the asking process
        return {"error": str(exc), "exit_code": exc.exit_code}


async def _perform(request: dict[str, Any], controls: Controls) -> dict[str, Any]:
    """Do what an authenticated request asks."""
    op, task_id, text = request.get("op"), request.get("task_id"), request.get("text")
    if op == "steer" and isinstance(task_id, str) and isinstance(text, str):
        return {"turn_id": await controls.steer(task_id, text)}
    if op == "cancel" and isinstance(task_id, str):
        await controls.cancel_task(task_id)
        return {"cancelled": True}
    if op == "cancel" and task_id is None:
        return {"cancelled": await controls.cancel_run()}
    return {"error": "unknown control request.", "exit_code": EXIT_INVALID_INPUT}


def run_controls(
    backend: Backend,
    run_id: str,
    task_ids: Collection[str],
    cancels: TaskCancels,
    ended: asyncio.Event,
    cancel_timeout: float,
) -> Controls:
    """The controls of the run the current asyncio task drives (``drive_run``): ``ended`` is
    set once the run's end is recorded."""
    driving = asyncio.current_task()
    assert driving is not None

    async def cancel_task(task_id: str) -> None:
        _known(run_id, task_ids, task_id)
        if not cancels.reachable:
            raise NotCancellable(
                f"the tasks of run {run_id} run on hosts, where one cannot be cancelled alone; "
                "cancel the whole run."
            )
        if not await cancels.cancel(task_id, cancel_timeout):
            raise NotCancellable(
                f"task '{task_id}' of run {run_id} is not running (it is queued, waiting on its "
                "dependencies, or done), so there is nothing to cancel."
            )

    async def cancel_run() -> bool:
        driving.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cancel_timeout):
                await ended.wait()
        return ended.is_set()

    steer = functools.partial(steer_here, backend, run_id, task_ids)
    return Controls(steer, cancel_task, cancel_run)


def _write_private(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` readable by this user only, replacing any earlier file at once."""
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    partial.replace(path)


@contextlib.asynccontextmanager
async def listening(run_dir: Path, controls: Controls, timeout: float) -> AsyncIterator[None]:
    """Answer control requests for the run of ``run_dir`` until the block ends; each
    connection gets ``timeout`` seconds. A run folder that cannot take the file (a read-only
    state dir) leaves the run unreachable from other processes, not failed."""
    token = secrets.token_urlsafe(24)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(timeout):
                answer = await _answer(await reader.readline(), token, controls)
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
