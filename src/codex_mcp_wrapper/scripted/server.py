"""The scripted model's HTTP face: ``POST /v1/responses`` streaming Server-Sent Events.

Starlette serves the routes and uvicorn the sockets; ``ScriptedModel.serve()`` runs it inside the
caller's event loop and yields the base URL Codex should use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from codex_mcp_wrapper.errors import EnvironmentProblem
from codex_mcp_wrapper.scripted.player import (
    HttpError,
    Items,
    ScriptPlayer,
    Stall,
    StreamFailure,
)
from codex_mcp_wrapper.scripted.script import Script

LOOPBACK = "127.0.0.1"
SERVER_START_TIMEOUT = 10.0
SHUTDOWN_GRACE = 1
_RECORDED_HEADERS = ("thread-id", "session-id", "session_id", "originator", "user-agent")
log = logging.getLogger("codex_mcp_wrapper.scripted")


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _usage(body: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Deterministic token counts: about four characters a token."""
    input_tokens = len(json.dumps(body.get("input", []))) // 4
    output_tokens = max(1, len(json.dumps(items)) // 4)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


class RequestLog:
    """Appends every request the model receives to a JSONL file (flushed per line), through
    ``redact`` so no secret the requests carry (command output, env values) is written. A
    failing disk stops the recording with one warning; the model keeps answering."""

    def __init__(self, path: Path | None, redact: Callable[[str], str] | None = None) -> None:
        self.path = path
        self.redact = redact or (lambda text: text)
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None
        self.count = 0

    def write(self, headers: dict[str, str], body: Any) -> None:
        self.count += 1
        if self.path is None:
            return
        record = {
            "ts": time.time(),
            "headers": {k: v for k, v in headers.items() if k in _RECORDED_HEADERS},
            "body": body,
        }
        line = self.redact(json.dumps(record)) + "\n"
        with self._lock:
            try:
                if self._fh is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fh = self.path.open("a", encoding="utf-8")
                self._fh.write(line)
                self._fh.flush()
            except OSError as exc:
                log.warning("stopped recording model requests to %s (%s)", self.path, exc)
                self.path = None
                with contextlib.suppress(OSError):
                    if self._fh is not None:
                        self._fh.close()
                self._fh = None

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


@dataclass
class _Run:
    log: RequestLog
    listener: Callable[[dict[str, str], dict[str, Any]], None] | None


def bind_loopback(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as exc:
        sock.close()
        raise EnvironmentProblem(
            f"cannot listen on {LOOPBACK}:{port} ({exc.strerror}); "
            "choose another --port or leave it out to let the OS pick one."
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class QuietStop(logging.Filter):
    """Once its server stops, drops uvicorn's reports of the requests it cancels at the end of
    its graceful shutdown (a traceback each, and "Cancel N running task(s)"): a request still
    running when the program is told to stop is not an error of the program."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.stopping:
            return True
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError) or "graceful shutdown" in record.getMessage():
            log.debug("stopping: a request still running was cancelled")
            return False
        return True


@asynccontextmanager
async def serve_app(app: Starlette, port: int = 0, what: str = "a server") -> AsyncIterator[str]:
    """Serve ``app`` on loopback in this event loop; yields its ``http://127.0.0.1:N/v1``."""
    sock = bind_loopback(port)
    quiet = QuietStop()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(quiet)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )
    server = uvicorn.Server(config)
    # The embedding program owns the signals (Ctrl-C must reach the run, not uvicorn).
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(SERVER_START_TIMEOUT):
            while not server.started:
                if task.done():
                    await task
                    raise EnvironmentProblem(f"{what} stopped at start.")
                await asyncio.sleep(0.005)
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = quiet.stopping = True
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE + 5):
                await task
        except TimeoutError:
            task.cancel()
        finally:
            uvicorn_log.removeFilter(quiet)
            sock.close()


class ScriptedModel:
    """A Responses-compatible model server that plays scripts; loopback only."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        port: int = 0,
        record: Path | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.player = ScriptPlayer(default=script or Script())
        self.port = port
        self.log = RequestLog(record, redact)
        self.base_url = ""
        self.listeners: list[Callable[[dict[str, str], dict[str, Any]], None]] = []
        self._runs: dict[str, _Run] = {}
        self._stopping = asyncio.Event()  # set when serve() ends: delays and stalls end too

    def add_script(self, key: str, script: Script) -> str:
        """Register a script; a thread whose model is the returned name plays it."""
        self.player.scripts[key] = script
        return f"scripted@{key}"

    # -- runs sharing one model (a long-lived fleet) ------------------------------------------
    def add_run(
        self,
        run_id: str,
        record: Path | None = None,
        redact: Callable[[str], str] | None = None,
        listener: Callable[[dict[str, str], dict[str, Any]], None] | None = None,
    ) -> None:
        """Serve a run: requests whose model is ``scripted@RUN/...`` (``run_model``) are
        logged to its own ``record`` file and announced to its own ``listener``."""
        self._runs[run_id] = _Run(RequestLog(record, redact), listener)

    def run_model(self, run_id: str, task_id: str, script: Script | None) -> str:
        """The model name a task of a run uses: its script, or echo when it has none."""
        key = f"{run_id}/{task_id}"
        if script is not None:
            return self.add_script(key, script)
        return f"scripted@{key}"

    def end_run(self, run_id: str) -> None:
        """Forget a run: its scripts, its threads' places in them, its request log."""
        run = self._runs.pop(run_id, None)
        if run is not None:
            run.log.close()
        self.player.forget(f"{run_id}/")

    def _run_of(self, body: dict[str, Any]) -> _Run | None:
        key = str(body.get("model", "")).partition("@")[2]
        run_id, slash, _ = key.partition("/")
        return self._runs.get(run_id) if slash else None

    # -- HTTP -----------------------------------------------------------------------------
    async def _responses(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": {"message": "request body is not JSON"}}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": {"message": "request body must be an object"}}, 400)
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.log.write(headers, body)
        run = self._run_of(body)
        if run is not None:
            run.log.write(headers, body)
            if run.listener is not None:
                run.listener(headers, body)
        for listener in list(self.listeners):
            listener(headers, body)
        reply = self.player.answer(headers, body)
        if reply.delay and await self._pause(reply.delay):
            return JSONResponse({"error": {"message": "the scripted model is stopping"}}, 503)
        if isinstance(reply, HttpError):
            extra = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after else None
            kind = "rate_limit_exceeded" if reply.status == 429 else "scripted_error"
            return JSONResponse(
                {"error": {"message": reply.message, "type": kind, "code": kind}},
                reply.status,
                headers=extra,
            )
        return StreamingResponse(
            self._stream(body, reply),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less when the server stops (True then)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _stream(
        self, body: dict[str, Any], reply: Items | StreamFailure | Stall
    ) -> AsyncIterator[bytes]:
        rid = f"resp_{self.log.count}"
        yield _sse({"type": "response.created", "response": {"id": rid}})
        if isinstance(reply, Stall):
            await self._pause(reply.seconds)
            return  # drop the stream without completing it
        if isinstance(reply, StreamFailure):
            yield _sse(
                {
                    "type": "response.failed",
                    "response": {
                        "id": rid,
                        "error": {"code": "server_error", "message": reply.message},
                    },
                }
            )
            return
        for index, item in enumerate(reply.items):
            yield _sse({"type": "response.output_item.added", "output_index": index, "item": item})
            if item["type"] == "message":
                text = item["content"][0]["text"]
                yield _sse(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "content_index": 0,
                        "delta": text,
                    }
                )
            yield _sse({"type": "response.output_item.done", "output_index": index, "item": item})
        yield _sse(
            {
                "type": "response.completed",
                "response": {"id": rid, "usage": _usage(body, reply.items)},
            }
        )

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/responses", self._responses, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # -- lifecycle ---------------------------------------------------------------------------
    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Run the server in this event loop; yields the base URL (``http://127.0.0.1:N/v1``)."""
        try:
            async with serve_app(self.app(), self.port, "the scripted model server") as url:
                self.base_url = url
                self._stopping.clear()
                try:
                    yield url
                finally:
                    self._stopping.set()
        finally:
            self.log.close()
            for run in self._runs.values():
                run.log.close()
