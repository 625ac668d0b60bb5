"""Serving the UI: uvicorn on a loopback address (the pages can apply patches and steer runs,
so nothing beyond this machine may reach them), behind ``same_origin.SameOriginGuard`` (no
other Host, no other site's form: ``guarded``), until Ctrl-C or SIGTERM (``ui``), or beside
the stdio MCP server while it runs (``serve --ui``: ``ui_beside``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn
from starlette.types import ASGIApp

from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.same_origin import SameOriginGuard, host_allowlist, is_loopback
from codex_mcp_wrapper.ui.pages import dashboard_app

BACKLOG = 64  # connections waiting while the server starts
# An open page keeps its event stream open: after this, a stopping UI closes it.
SHUTDOWN_TIMEOUT = 2  # seconds


async def serve_ui(runs: Runs, host: str, port: int) -> None:
    """Serve the UI over ``runs`` on ``host:port`` until the process is told to stop."""
    _refuse_beyond_loopback(host)
    app = dashboard_app(runs)
    with _listening(host, port) as sock:
        server = _server(guarded(app, host, sock), host)
        # Listening already: whoever reads this line can connect at once.
        print(f"codex-mcp-wrapper ui: {_address(sock)}", file=sys.stderr)
        await _serve_until_signalled(server, sock, app.state.dashboard.stop)


@contextlib.asynccontextmanager
async def ui_beside(runs: Runs, port: int, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve the UI over ``runs`` on a loopback ``host:port`` while the block runs (``serve
    --ui`` on stdio: the page beside the MCP server); yields its address, also printed on
    stderr. At the end its event streams are ended and the server stopped as uvicorn does."""
    _refuse_beyond_loopback(host)
    app = dashboard_app(runs)
    with _listening(host, port) as sock:
        server = _server(guarded(app, host, sock), host)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        address = _address(sock)
        print(f"codex-mcp-wrapper UI on {address}", file=sys.stderr, flush=True)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            yield address
        finally:
            app.state.dashboard.stop()
            server.should_exit = True
            await asyncio.shield(serving)


def guarded(app: ASGIApp, host: str, sock: socket.socket) -> ASGIApp:
    """``app`` as served on ``sock`` (bound to ``host``): only for requests naming this
    machine's loopback names or ``host`` on its port, and state changes only from its own
    pages (``SameOriginGuard``)."""
    return SameOriginGuard(app, host_allowlist(host, sock.getsockname()[1]))


def _refuse_beyond_loopback(host: str) -> None:
    if not is_loopback(host):
        raise InputError(
            f"the UI serves only this machine; --host {host} is not a loopback address "
            "(use 127.0.0.1 and an SSH tunnel to reach it from elsewhere)."
        )


def _server(app: ASGIApp, host: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
    )
    return uvicorn.Server(config)


@contextlib.contextmanager
def _listening(host: str, port: int) -> Iterator[socket.socket]:
    """A socket listening on ``host:port``, closed at the end of the block."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot serve the UI on {host}:{port} ({exc.strerror}).") from exc
        sock.listen(BACKLOG)
        yield sock


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    return f"http://{shown}:{port}/"


async def _serve_until_signalled(
    server: uvicorn.Server, sock: socket.socket, end_streams: Callable[[], None]
) -> None:
    """Serve until SIGTERM or SIGINT, then end the pages' event streams, stop as uvicorn does
    and return: a stopped UI exits 0, not by the signal uvicorn would raise again."""

    def stop() -> None:
        end_streams()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await server.serve(sockets=[sock])
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
