"""Stopping a server from the inside. The CLI's ``run_async`` turns SIGTERM and Ctrl-C into
cancelling the serving coroutine; ``run_until_stopped`` then asks the server to wind down by
itself and waits for it, instead of letting the cancellation tear through it. For HTTP,
``EndStreamsOnStop`` ends open SSE streams so uvicorn's graceful shutdown can go on to the
ASGI lifespan shutdown; for stdio, ``StdinRelay`` gives the SDK's stdin reader end of input."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
from collections.abc import Callable
from types import TracebackType

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


class StdinRelay:
    """Puts a pipe under fd 0, filled from the real stdin by a daemon thread, so that stopping
    can end the SDK's input. The SDK reads stdin in a worker thread that cancellation has to wait
    for; on a terminal or an idle client's pipe that read never returns, so SIGTERM and Ctrl-C
    could not stop ``serve`` until the client wrote a line or closed stdin. ``stop`` makes the
    relay close the pipe: the SDK reads end of input and its reader returns."""

    def __init__(self) -> None:
        self._stdin = -1
        self._pipe_w = -1
        self._wake_r, self._wake_w = os.pipe()

    def __enter__(self) -> StdinRelay:
        try:
            self._stdin = os.dup(0)
        except OSError:  # no stdin at all: the SDK reads end of input at once anyway
            return self
        pipe_r, self._pipe_w = os.pipe()
        os.dup2(pipe_r, 0)
        os.close(pipe_r)
        threading.Thread(target=self._relay, name="stdin-relay", daemon=True).start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _relay(self) -> None:
        poller = select.poll()
        poller.register(self._stdin, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready:
                    break
                data = os.read(self._stdin, 65536)
                if not data:
                    break
                view = memoryview(data)
                while view:
                    view = view[os.write(self._pipe_w, view) :]
        except OSError:
            pass
        finally:
            os.close(self._pipe_w)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._stdin >= 0:
            # The relay may still block reading the real stdin: keep its descriptor open.
            with contextlib.suppress(OSError):
                os.dup2(self._stdin, 0)
