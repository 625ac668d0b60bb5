"""Serving the UI: uvicorn on a loopback address (the pages can apply patches and steer runs,
so nothing beyond this machine may reach them), until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import sys
from collections.abc import Callable

import uvicorn

from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.ui.pages import dashboard_app

BACKLOG = 64  # connections waiting while the server starts
# An open page keeps its event stream open: after this, a stopping UI closes it.
SHUTDOWN_TIMEOUT = 2  # seconds


def loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve_ui(runs: Runs, host: str, port: int) -> None:
    """Serve the UI over ``runs`` on ``host:port`` until the process is told to stop."""
    if not loopback(host):
        raise InputError(
            f"the UI serves only this machine; --host {host} is not a loopback address "
            "(use 127.0.0.1 and an SSH tunnel to reach it from elsewhere)."
        )
    app = dashboard_app(runs)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_TIMEOUT,
    )
    server = uvicorn.Server(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot serve the UI on {host}:{port} ({exc.strerror}).") from exc
        sock.listen(BACKLOG)
        # Listening already: whoever reads this line can connect at once.
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        print(f"codex-mcp-wrapper ui: http://{shown}:{sock.getsockname()[1]}/", file=sys.stderr)
        await _serve_until_signalled(server, sock, app.state.dashboard.stop)


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
