"""Stopping a server from the inside. The CLI's ``run_async`` turns SIGTERM and Ctrl-C into
cancelling the serving coroutine; ``run_until_stopped`` then asks the server to wind down by
itself and waits for it, instead of letting the cancellation tear through it. For HTTP,
``EndStreamsOnStop`` ends open SSE streams so uvicorn's graceful shutdown can go on to the
ASGI lifespan shutdown; for stdio, ``stdio_front.StdioFront`` gives the SDK's stdin reader end
of input."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def run_until_stopped(
    task: asyncio.Task[None],
    stop: Callable[[], None],
    wind_down: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Await ``task``. When this coroutine is cancelled (SIGTERM, Ctrl-C), ``wind_down`` ends
    the work in flight while the server still answers (``Runs.stop_runs``: each call gets its
    cancelled result), then ``stop`` asks the task to wind down by itself; wait for both (a
    repeated signal does not cut that short), then re-raise the cancellation. Cancelling the
    task from outside instead would skip its shutdown (for uvicorn: the lifespan shutdown,
    whose orphaned task then logs a traceback when ``asyncio.run`` cancels it at exit)."""
    try:
        await asyncio.shield(task)
        return
    except asyncio.CancelledError:
        if task.done():
            raise
        if wind_down is not None:
            await _to_the_end(asyncio.ensure_future(wind_down()))
        stop()
        await _to_the_end(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error from None
        raise


async def _to_the_end(task: asyncio.Future[None]) -> None:
    """Wait for ``task`` whatever cancels this coroutine meanwhile."""
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)


class CallsInFlight:
    """Server middleware that knows when no request is being handled: a server stopping
    waits (``settled``) for the calls whose runs it cancelled to return their results before
    it ends its transport, so each call in flight is answered."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        self.count += 1
        self._idle.clear()
        try:
            return await call_next(ctx)
        finally:
            self.count -= 1
            if not self.count:
                self._idle.set()

    async def settled(self, timeout: float) -> None:
        """Wait, at most ``timeout`` s, until no request is being handled."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()


class EndStreamsOnStop:
    """Ends streaming responses (SSE streams of MCP calls and the standalone GET stream)
    once the server stops: uvicorn waits for every open response before the lifespan shutdown,
    and an SSE stream never ends by itself. The app is told its client left (``http.disconnect``),
    and the response is then terminated properly, so the client sees a clean end of stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = complete = body_read = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True
            await send(message)

        async def receive_until_stop() -> Message:
            nonlocal body_read
            if not body_read:  # the request body is read as usual
                message = await receive()
                body_read = message["type"] != "http.request" or not message.get("more_body")
                return message
            # After the body, a client can only disconnect: say so when the server stops.
            if self.stopping.is_set():
                return {"type": "http.disconnect"}
            get = asyncio.ensure_future(receive())
            stop = asyncio.ensure_future(self.stopping.wait())
            try:
                await asyncio.wait((get, stop), return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                get.cancel()
            if get.done() and not get.cancelled():
                return get.result()
            return {"type": "http.disconnect"}

        await self.app(scope, receive_until_stop, tracking_send)
        if started and not complete and self.stopping.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
