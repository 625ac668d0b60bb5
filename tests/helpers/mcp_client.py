"""Start the wrapper's MCP server for tests and talk to it with the official ``mcp`` client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

START_TIMEOUT = 30


def initialize_line(client: str = "test") -> str:
    """A raw JSON-RPC initialize request (handshake-era protocol), newline-terminated."""
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": client, "version": "0"},
        },
    }
    return json.dumps(request) + "\n"


def server_argv(state_dir: Path, *extra: str) -> list[str]:
    """``serve`` on ``state_dir``; its clients may use the test's temporary directory (the
    state dir's parent, where tests make their workspaces) besides the server's cwd."""
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "codex_mcp_wrapper",
        "--state-dir",
        str(state_dir),
        "serve",
        "--allow-workspace",
        str(state_dir.parent),
        *extra,
    ]


@asynccontextmanager
async def stdio_client(state_dir: Path, *extra: str, **client_kwargs: Any) -> AsyncIterator[Client]:
    argv = server_argv(state_dir, *extra)
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
    async with Client(params, **client_kwargs) as client:
        yield client


@contextmanager
def http_server(
    state_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``serve --transport http`` on a free port; yields the process and the /mcp URL."""
    proc = subprocess.Popen(
        server_argv(state_dir, "--transport", "http", "--port", "0", *extra),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:  # bounded by the server's own start and the test timeout
            match = re.search(r"MCP server on (http://\S+/mcp)", line)
            if match:
                url = match.group(1)
                break
        assert url, "the HTTP server did not start"
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(timeout=START_TIMEOUT)


class RawSession:
    """A JSON-RPC client speaking 2025-06-18 over the server's stdio, line by line, as the
    clients of the removed ``codex mcp-server`` did: it sees every message the server sends
    (non-standard notifications too) and answers server requests with whatever it is told."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []
        self.next_id = 1

    async def send(self, message: dict[str, Any]) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def receive(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.proc.stdout.readline(), START_TIMEOUT)
        assert line, "the server closed its stdout"
        message: dict[str, Any] = json.loads(line)
        self.seen.append(message)
        return message

    async def request(
        self,
        method: str,
        params: dict[str, Any],
        answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        timeout: float = 120,
    ) -> dict[str, Any]:
        """Send a request and read until its response; server requests in between are
        answered with ``answer(request)`` (an error when none is given)."""
        self.next_id += 1
        request_id = self.next_id
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        async with asyncio.timeout(timeout):
            while True:
                message = await self.receive()
                if "method" in message and "id" in message:  # a request of the server's
                    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
                    if answer is None:
                        reply["error"] = {"code": -32601, "message": "not supported"}
                    else:
                        reply["result"] = answer(message)
                    await self.send(reply)
                elif message.get("id") == request_id:
                    return message

    def notifications(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.seen if m.get("method") == method and "id" not in m]


@asynccontextmanager
async def raw_session(
    state_dir: Path,
    *extra: str,
    capabilities: dict[str, Any] | None = None,
    stderr: int = subprocess.DEVNULL,
) -> AsyncIterator[RawSession]:
    """``serve`` over stdio with a raw 2025-06-18 client, initialized; its stderr goes to
    ``stderr`` (``subprocess.PIPE``: ``session.proc.stderr``)."""
    argv = server_argv(state_dir, *extra)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=-1, stdout=-1, stderr=stderr, env=dict(os.environ)
    )
    session = RawSession(proc)
    try:
        hello = await session.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": capabilities or {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        )
        assert "result" in hello, hello
        await session.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield session
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), START_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
