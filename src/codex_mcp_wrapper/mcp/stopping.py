"""Stopping a server from the inside. The CLI's ``run_async`` turns SIGTERM and Ctrl-C into
cancelling the serving coroutine; ``run_until_stopped`` then asks the server to wind down by
itself and waits for it, instead of letting the cancellation tear through it. For HTTP,
``EndStreamsOnStop`` ends open SSE streams so uvicorn's graceful shutdown can go on to the
ASGI lifespan shutdown; for stdio, ``stdio_front.StdioFront`` gives the SDK's stdin reader end
of input."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def run_until_stopped(task: asyncio.Task[None], stop: Callable[[], None]) -> None:
    """Await ``task``. When this coroutine is cancelled (SIGTERM, Ctrl-C), ``stop`` asks the
    task to wind down by itself; wait for it (a repeated signal does not cut that short), then
    re-raise the cancellation. Cancelling the task from outside instead would skip its
    shutdown (for uvicorn: the lifespan shutdown, whose orphaned task then logs a traceback
    when ``asyncio.run`` cancels it at exit)."""
    try:
        await asyncio.shield(task)
        return
    except asyncio.CancelledError:
        if task.done():
            raise
        stop()
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error from None
        raise


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
