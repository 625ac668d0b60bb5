"""Serving the MCP server over stdio or streamable HTTP (loopback by default; a bearer token
and Host/Origin checks guard HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import socket
import sys

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from codex_mcp_wrapper.engine.runs import Runs
from codex_mcp_wrapper.errors import EnvironmentProblem, InputError
from codex_mcp_wrapper.mcp.server import build_server

MCP_PATH = "/mcp"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """Requires ``Authorization: Bearer TOKEN`` on every HTTP request."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"a bearer token is required\n"})
                return
        await self.app(scope, receive, send)


def _configure_logging() -> None:
    # Under stdio, stdout carries the protocol: every log goes to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


async def serve_stdio(runs: Runs) -> None:
    _configure_logging()
    async with runs:
        await build_server(runs).run_stdio_async()


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
    token: str | None,
    ready: asyncio.Event | None = None,
) -> None:
    if not is_loopback(host) and not token:
        raise InputError(
            f"refusing to serve on {host} without a bearer token: pass --token or set "
            "CODEX_MCP_WRAPPER_TOKEN (loopback binds do not need one)."
        )
    _configure_logging()
    sock = bind(host, port)
    port = sock.getsockname()[1]
    hosts = {f"{h}:{port}" for h in (host, "127.0.0.1", "localhost", "[::1]")}
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(hosts),
        allowed_origins=sorted(f"http://{h}" for h in hosts),
    )
    async with runs:
        app: ASGIApp = build_server(runs).streamable_http_app(
            streamable_http_path=MCP_PATH, transport_security=security, host=host
        )
        if token:
            app = BearerAuth(app, token)
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        server = uvicorn.Server(config)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        print(
            f"codex-mcp-wrapper MCP server on http://{host}:{port}{MCP_PATH}",
            file=sys.stderr,
            flush=True,
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            if ready is not None:
                ready.set()
            await task
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await task
            sock.close()
