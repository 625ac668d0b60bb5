"""JSON-RPC 2.0 over newline-delimited JSON on a child's stdio (the app-server wire format).

A reader task dispatches each incoming line: responses resolve the pending request's future,
notifications go to the inbox of the thread they name (``inbox(thread_id)``, a queue that
thread's turn loop consumes, so many threads can share one connection; once ``route_threads``
was called) or else to ``incoming``; requests from the server (approvals) go to ``on_request``
whose answer is written back. When the stream ends every pending request fails with
``WorkerDied`` and ``incoming`` and every inbox receive ``CLOSED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from codex_mcp_wrapper.errors import ProtocolError, WorkerDied


@dataclass(frozen=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class ServerRequest:
    id: int | str
    method: str
    params: dict[str, Any]


class _Closed:
    def __repr__(self) -> str:
        return "CLOSED"


CLOSED = _Closed()
RequestHandler = Callable[[ServerRequest], Awaitable[dict[str, Any]]]
Inbox = asyncio.Queue[Notification | _Closed]


class RpcError(ProtocolError):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.code = error.get("code")
        self.data = error.get("data")
        message = str(error.get("message", error))
        # An older Codex refuses a request it does not know, listing every one it knows.
        self.unsupported = f"unknown variant `{method}`" in message
        if self.unsupported:
            message = (
                f"this Codex does not support {method} (0.163.0 and later do); point "
                "--codex-bin (or $CODEX_BIN) at a newer Codex"
            )
        super().__init__(f"{method} failed: {message}")


def thread_of(note: Notification) -> str | None:
    """The thread a notification is about: ``threadId``, or ``thread.id`` (``thread/started``)."""
    thread_id = note.params.get("threadId")
    if thread_id is None and isinstance(note.params.get("thread"), dict):
        thread_id = note.params["thread"].get("id")
    return thread_id if isinstance(thread_id, str) else None


class JsonRpcConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_request: RequestHandler,
        name: str = "codex",
        watch: Callable[[Notification], None] | None = None,
    ) -> None:
        """``watch`` sees each notification as it is read, before it is queued (so a request
        that follows it can rely on what it said)."""
        self._reader = reader
        self._writer = writer
        self._on_request = on_request
        self._watch = watch
        self._name = name
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[dict[str, Any]]] = {}
        self._methods: dict[int | str, str] = {}
        self._write_lock = asyncio.Lock()
        self.incoming: Inbox = asyncio.Queue()
        self._inboxes: dict[str, Inbox] = {}
        self._dropped: set[str] = set()
        self._routing = False
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader_task: asyncio.Task[None] | None = None

    def inbox(self, thread_id: str) -> Inbox:
        """The queue of ``thread_id``'s notifications (until ``drop_inbox``), holding those
        that arrived before it was asked for (``thread/start`` answers after the thread's
        first notifications). Routing starts with ``route_threads()``; before that every
        notification goes to ``incoming``."""
        self._dropped.discard(thread_id)
        inbox = self._inboxes.get(thread_id)
        if inbox is None:
            inbox = self._inboxes[thread_id] = asyncio.Queue()
            if self.closed.is_set():
                inbox.put_nowait(CLOSED)
        return inbox

    def drop_inbox(self, thread_id: str) -> None:
        """Forget ``thread_id``: its queue, and any notification of it from now on."""
        self._inboxes.pop(thread_id, None)
        self._dropped.add(thread_id)

    def route_threads(self) -> None:
        """From now on, a notification that names a thread goes to that thread's inbox, and
        one that names none to every inbox (``incoming`` gets nothing more)."""
        self._routing = True

    def start(self) -> None:
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"{self._name}-reader")

    async def aclose(self) -> None:
        tasks = [t for t in (self._reader_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._fail_pending("the connection was closed")

    async def _send(self, message: dict[str, Any]) -> None:
        if self.closed.is_set():
            raise WorkerDied(f"{self._name} is gone ({self.close_reason}).")
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        async with self._write_lock:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise WorkerDied(f"{self._name} stopped reading its input ({exc}).") from exc

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        timeout: float = 30.0,
        trace: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send ``method`` and wait (``timeout``) for its answer; ``trace``: a W3C trace
        context (``traceparent``) app-server continues its own spans of the request from."""
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self._methods[rid] = method
        try:
            message = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
            if trace:
                message["trace"] = trace
            await self._send(message)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            raise ProtocolError(
                f"{self._name} did not answer {method} within {timeout:g} s."
            ) from exc
        finally:
            self._pending.pop(rid, None)
            self._methods.pop(rid, None)

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(WorkerDied(f"{self._name} is gone ({reason})."))
        self._pending.clear()

    async def _read_loop(self) -> None:
        reason = "its output ended"
        try:
            while True:
                try:
                    line = await self._reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    reason = "it wrote a line longer than the read limit"
                    break
                if not line:
                    break
                line = line.strip()
                if not line:
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not protocol (a stray log line); ignore
                if isinstance(message, dict):
                    self._dispatch(message)
        finally:
            self.close_reason = reason
            self.closed.set()
            self._fail_pending(reason)
            self.incoming.put_nowait(CLOSED)
            for inbox in self._inboxes.values():
                inbox.put_nowait(CLOSED)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:
            request = ServerRequest(message["id"], message["method"], message.get("params") or {})
            task = asyncio.create_task(self._answer(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif "method" in message:
            params = message.get("params") or {}
            note = Notification(message["method"], params if isinstance(params, dict) else {})
            if self._watch is not None:
                self._watch(note)
            if not self._routing:
                self.incoming.put_nowait(note)
                return
            thread_id = thread_of(note)
            if thread_id is None:  # about no thread (MCP server start-up, rate limits): all
                for inbox in self._inboxes.values():
                    inbox.put_nowait(note)
            elif thread_id not in self._dropped:
                self.inbox(thread_id).put_nowait(note)
        elif "id" in message:
            future = self._pending.get(message["id"])
            if future is None or future.done():
                return
            if "error" in message:
                method = self._methods.get(message["id"], "request")
                future.set_exception(RpcError(method, message["error"] or {}))
            else:
                future.set_result(message.get("result") or {})

    async def _answer(self, request: ServerRequest) -> None:
        """Answer a request from the server; it is always answered, or Codex would wait."""
        try:
            result = await self._on_request(request)
        except WorkerDied:
            return
        except Exception as exc:  # noqa: BLE001 - report it to Codex instead of leaving it waiting
            error = {"code": -32603, "message": f"the wrapper could not answer: {exc}"}
            with contextlib.suppress(WorkerDied):
                await self._send({"jsonrpc": "2.0", "id": request.id, "error": error})
            return
        with contextlib.suppress(WorkerDied):
            await self._send({"jsonrpc": "2.0", "id": request.id, "result": result})
