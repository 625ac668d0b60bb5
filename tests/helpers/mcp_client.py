"""Start the wrapper's MCP server for tests and talk to it with the official ``mcp`` client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
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
    return [
        sys.executable,
        "-m",
        "codex_mcp_wrapper",
        "--state-dir",
        str(state_dir),
        "serve",
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
