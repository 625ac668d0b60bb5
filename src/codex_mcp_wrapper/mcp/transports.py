"""Serving the MCP server over stdio or streamable HTTP (loopback by default; a bearer token
and Host/Origin checks guard HTTP, see ``http_guard``).

Stopping: the CLI's ``run_async`` turns SIGTERM and Ctrl-C into cancelling the serving
coroutine. Both transports then first cancel the runs in progress and wait for the calls
running them to be answered with their cancelled results (``_stoppable``; for stdio until the
answers are on stdout), then stop their server from the inside and wait for it, instead of
letting the cancellation tear through it (``stopping``): for HTTP, uvicorn's own graceful
shutdown (open streams ended, then the ASGI lifespan shutdown that closes the SDK's session
manager); for stdio, end of input for the SDK's stdin reader. Then the workers are reaped, and
the cancellation goes on up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from codex_mcp_wrapper.engine.access import Identity
from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.errors import EnvironmentProblem, InputError
from codex_mcp_wrapper.mcp.call_timing import CallRecord, CallTiming
from codex_mcp_wrapper.mcp.http_guard import ClientTokens, transport_security
from codex_mcp_wrapper.mcp.page_guard import PageGuard
from codex_mcp_wrapper.mcp.server import build_server
from codex_mcp_wrapper.mcp.stdio_front import StdioFront
from codex_mcp_wrapper.mcp.stopping import CallsInFlight, EndStreamsOnStop, run_until_stopped
from codex_mcp_wrapper.same_origin import (
    Allowlist,
    SameOriginGuard,
    host_allowlist,
    is_loopback,
    parse_allowed_host,
)

MCP_PATH = "/mcp"
STDIO_BANNER = (
    "codex-mcp-wrapper MCP server on stdio: waiting for an MCP client on stdin/stdout "
    "(Ctrl-C to stop)"
)
# Once stopping (and the calls in flight answered), how long the stdio SDK gets to end by
# itself on end of input before it is cancelled.
STOP_GRACE = 5.0
# Once stopping, how long uvicorn lets open requests finish before cancelling them. Streams
# are ended at once (``EndStreamsOnStop``), so this only bounds a request that hangs anyway.
SHUTDOWN_GRACE = 5


@dataclass(frozen=True)
class Pages:
    """Web pages the HTTP server serves beside MCP (``serve --ui``: the dashboard), at every
    path but ``MCP_PATH``, behind the same Host/Origin allowlist and bearer tokens (a browser
    signs in once with its token: ``page_guard``); ``stop`` ends their open streams when the
    server stops."""

    app: ASGIApp
    stop: Callable[[], None]


def _beside(mcp_app: ASGIApp, pages: Pages, allowed: Allowlist) -> ASGIApp:
    """One ASGI app: MCP at ``MCP_PATH`` (and the lifespan), ``pages`` everywhere else, each
    page request first checked against the Host/Origin allowlist (``SameOriginGuard``: DNS
    rebinding, another site's form posting to the pages)."""
    guarded = SameOriginGuard(pages.app, allowed)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path == MCP_PATH or path.startswith(MCP_PATH + "/"):
            await mcp_app(scope, receive, send)
            return
        await guarded(scope, receive, send)

    return app


def _configure_logging() -> None:
    # Under stdio, stdout carries the protocol: every log goes to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


async def serve_stdio(runs: Runs, front: StdioFront, timing: CallRecord | None = None) -> None:
    """Serve over stdin/stdout, behind ``front`` (entered by the caller before the SDK was
    imported, so the handshake is answered at once). Nothing but protocol ever goes to stdout;
    on a terminal a one-line banner on stderr says that the server waits for a client."""
    _configure_logging()
    if sys.stderr.isatty():
        print(STDIO_BANNER, file=sys.stderr, flush=True)
    async with runs:
        server, settle = _stoppable(runs, timing)
        task = asyncio.create_task(server.run_stdio_async())

        async def wind_down() -> None:
            await settle()  # the calls have their results: wait for them to reach stdout
            await asyncio.to_thread(front.answered, STOP_GRACE)

        def stop() -> None:
            front.stop()  # the SDK reads end of input and ends by itself
            asyncio.get_running_loop().call_later(STOP_GRACE, task.cancel)

        await run_until_stopped(task, stop, wind_down)


def _stoppable(
    runs: Runs, timing: CallRecord | None = None
) -> tuple[MCPServer, Callable[[], Awaitable[None]]]:
    """The server, and what ends its work in flight when it stops: the runs are cancelled,
    then the calls running them return their (cancelled) results, while the server still
    answers. ``timing`` is told each tool call's latency (metrics)."""
    server = build_server(runs)
    if timing is not None:
        server.middleware.insert(0, CallTiming(timing))
    calls = CallsInFlight()
    server.middleware.insert(0, calls)

    async def wind_down() -> None:
        await runs.stop_runs()
        await calls.settled(runs.settings.timeouts.cancel)

    return server, wind_down


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EnvironmentProblem(
            f"cannot listen on {host}:{port} ({exc.strerror}); another server holds it? "
            "Choose another --port."
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve_http(
    runs: Runs,
    host: str,
    port: int,
    tokens: Mapping[str, Identity],
    allow_hosts: Sequence[str] = (),
    ready: asyncio.Event | None = None,
    timing: CallRecord | None = None,
    pages: Pages | None = None,
) -> None:
    """Serve over streamable HTTP; ``tokens`` maps each bearer token to its client's identity
    (none: loopback only, every client one identity); ``pages`` beside MCP when given."""
    if not is_loopback(host) and not tokens:
        raise InputError(
            f"refusing to serve on {host} without a bearer token: pass --token-file, set "
            "CODEX_MCP_WRAPPER_TOKEN or pass --token (loopback binds do not need one)."
        )
    extra = [parse_allowed_host(value) for value in allow_hosts]
    _configure_logging()
    sock = bind(host, port)
    port = sock.getsockname()[1]
    allowed = host_allowlist(host, port, extra)
    security = transport_security(allowed)
    async with runs:
        mcp_server, wind_down = _stoppable(runs, timing)
        streams = EndStreamsOnStop(
            mcp_server.streamable_http_app(
                streamable_http_path=MCP_PATH, transport_security=security, host=host
            )
        )
        app: ASGIApp = ClientTokens(streams, tokens)
        if pages is not None:
            app = _beside(app, replace(pages, app=PageGuard(pages.app, tokens)), allowed)
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
        server = uvicorn.Server(config)
        # Signals stay with run_async, which cancels this coroutine; see run_until_stopped.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        where = f"[{host}]" if ":" in host else host
        print(
            f"codex-mcp-wrapper MCP server on http://{where}:{port}{MCP_PATH}",
            file=sys.stderr,
            flush=True,
        )
        if pages is not None:
            print(f"codex-mcp-wrapper UI on http://{where}:{port}/", file=sys.stderr, flush=True)
        if not is_loopback(host) or extra:
            print(
                f"accepted Host headers: {', '.join(security.allowed_hosts)} "
                "(add names with --allow-host)",
                file=sys.stderr,
                flush=True,
            )
        task = asyncio.create_task(server.serve(sockets=[sock]))

        def stop() -> None:
            server.should_exit = True  # what uvicorn's own signal handler does
            streams.stop()
            if pages is not None:
                pages.stop()

        try:
            if ready is not None:
                ready.set()
            await run_until_stopped(task, stop, wind_down)
        finally:
            sock.close()
