"""The hostile client suite's harness: the MCP server started as a hub would start it (its own
working directory, secrets in its environment), reached with the official ``mcp`` client over
stdio and over streamable HTTP, each at protocol 2025-06-18 and 2026-07-28 (the ``transport``
fixture's cells, tests/helpers/mcp_matrix.py), so one test body proves a rule everywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.helpers.mcp_matrix import CELLS, Cell, open_client

START_TIMEOUT = 30
# Secrets of the server's owner, in the server's environment: no client may ever read them.
API_KEY = "sk-owner-secret-0123456789abcdef"
DB_URL = "postgres://app:hunter2-db-password@db.internal/prod"
OWNER_ENV = {"OPENAI_API_KEY": API_KEY, "DATABASE_URL": DB_URL}


@dataclass
class Server:
    """A running ``serve`` (HTTP), or the recipe for one per client (stdio: the client
    launches it)."""

    transport: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    url: str | None = None
    stderr: list[str] = field(default_factory=list)
    revision: str | None = None  # what its clients speak; None: the SDK's choice

    @asynccontextmanager
    async def _connect(self, target: Any, **kwargs: Any) -> AsyncIterator[Client]:
        if self.revision is None:
            async with Client(target, **kwargs) as client:
                yield client
        else:
            async with open_client(target, self.revision, **kwargs) as client:
                yield client

    @asynccontextmanager
    async def client(self, token: str | None = None, **kwargs: Any) -> AsyncIterator[Client]:
        if self.transport == "stdio":
            params = StdioServerParameters(
                command=self.argv[0], args=self.argv[1:], env=self.env, cwd=str(self.cwd)
            )
            async with self._connect(params, **kwargs) as client:
                yield client
            return
        assert self.url is not None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=120) as http,
            self._connect(streamable_http_client(self.url, http_client=http), **kwargs) as client,
        ):
            yield client


@contextmanager
def serving(
    where: str | Cell,
    state_dir: Path,
    cwd: Path,
    codex_bin: str,
    *flags: str,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """``serve`` as a hub starts it: in ``cwd`` (the directory it serves), with the owner's
    secrets in its environment; ``where`` is a transport, or a cell (its clients then speak the
    cell's revision)."""
    cell = Cell(where, "") if isinstance(where, str) else where
    transport, revision = cell.transport, cell.revision or None
    argv = [sys.executable, "-m", "codex_mcp_wrapper", "--state-dir", str(state_dir)]
    argv += ["--codex-bin", codex_bin, "serve", "--transport", transport, *flags]
    full_env = {**os.environ, **OWNER_ENV, **(env or {})}
    full_env.pop("CODEX_MCP_WRAPPER_TOKEN", None)
    if transport == "stdio":
        yield Server(transport, argv, full_env, cwd, revision=revision)
        return
    proc = subprocess.Popen(
        [*argv, "--port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=full_env,
        cwd=cwd,
    )
    try:
        assert proc.stderr is not None
        server = Server(transport, argv, full_env, cwd, revision=revision)
        for line in proc.stderr:  # bounded by the server's start and the test timeout
            server.stderr.append(line)
            match = re.search(r"MCP server on (http://\S+/mcp)", line)
            if match:
                server.url = match.group(1)
                break
        assert server.url, f"the HTTP server did not start: {''.join(server.stderr)}"
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=START_TIMEOUT)


@pytest.fixture(params=CELLS, ids=str)
def transport(request: pytest.FixtureRequest) -> Cell:
    """Each cell of stdio/HTTP x 2025-06-18/2026-07-28, a server of its own per test."""
    cell: Cell = request.param
    return cell


@pytest.fixture
def served_dir(tmp_path: Path) -> Path:
    """The directory the server is started in: its workspace, all a client may use."""
    path = tmp_path / "hub"
    path.mkdir()
    return path


def text(result: Any) -> str:
    return str(result.content[0].text) if result.content else ""
