"""One MCP test body over every transport and protocol revision.

The ``connect`` fixture (tests/conftest.py) is parametrised over ``CELLS``: stdio and
streamable HTTP, each at 2025-06-18 (the handshake revision the removed ``codex mcp-server``'s
clients speak) and at 2026-07-28 (stateless, no handshake). A test written against it runs once
per cell with the official ``mcp`` client:

    async def test_something(connect: MatrixServer) -> None:
        async with connect() as client:
            result = await client.call_tool("codex", {"prompt": "hi"})

A module's tests share one ``serve --scripted`` per cell, started for the cell's first test and
stopped after the module: over stdio the process's one client is shared too (a stdio server
lives as long as its client); over HTTP each test connects a client of its own, with the bearer
token the server was started with and an ``Origin`` it accepts. A shared server's warm Codex
processes outlive each test on purpose: the suite's leftover check (``held_by_a_matrix_server``)
leaves them be, and the server's stop checks they are gone.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from unittest import mock

import httpx2
import mcp.client.session
from mcp import Client, StdioServerParameters
from mcp import types as mt
from mcp.client.session import LoggingFnT
from mcp.client.streamable_http import streamable_http_client
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

from tests.helpers.mcp_client import START_TIMEOUT, server_argv
from tests.helpers.procs import codex_processes, environ, wait_gone

TRANSPORTS = ("stdio", "http")
REVISIONS = ("2025-06-18", "2026-07-28")
HTTP_TOKEN = "matrix-bearer-token"  # HTTP cells serve with a token, as a shared port should
# An HTTP read may wait this long: ``mission_wait`` blocks up to 55 s, a batch longer.
HTTP_READ_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0  # a server's clean stop, workers included (it stops them in ~1 s)
STDERR_TAIL = 50  # lines of a server's stderr kept to explain a failure

# State dirs of the matrix servers running now: their Codex processes are theirs, not a test's.
_RUNNING: set[Path] = set()


@dataclass(frozen=True)
class Cell:
    transport: str
    revision: str

    def __str__(self) -> str:
        return f"{self.transport}-{self.revision}"


CELLS = [Cell(t, r) for t in TRANSPORTS for r in REVISIONS]


def held_by_a_matrix_server(pid: int) -> bool:
    """Whether Codex process ``pid`` is a warm worker of a running matrix server."""
    home = environ(pid).get("CODEX_HOME", "")
    return any(home.startswith(f"{state}{os.sep}") for state in _RUNNING)


def codex_of(state_dir: Path) -> list[int]:
    """The Codex processes working for the server on ``state_dir``."""
    return [
        p for p in codex_processes() if f"{state_dir}{os.sep}" in environ(p).get("CODEX_HOME", "")
    ]


@contextmanager
def _offering(revision: str) -> Iterator[None]:
    """The SDK's handshake offers its newest handshake revision (2025-11-25); make it offer
    ``revision``, as an older client does. Only the handshake reads it."""
    if revision in MODERN_PROTOCOL_VERSIONS:
        yield
        return
    with mock.patch.object(mcp.client.session, "LATEST_HANDSHAKE_VERSION", revision):
        yield


@asynccontextmanager
async def open_client(target: Any, revision: str, **client_kwargs: Any) -> AsyncIterator[Client]:
    """The official client connected to ``target`` at ``revision`` (checked, so a cell never
    runs at a revision other than its own)."""
    mode = "auto" if revision in MODERN_PROTOCOL_VERSIONS else "legacy"  # auto: server/discover
    async with AsyncExitStack() as stack:
        with _offering(revision):
            client = await stack.enter_async_context(Client(target, mode=mode, **client_kwargs))
        assert client.protocol_version == revision, (client.protocol_version, revision)
        yield client


class MatrixServer:
    """``serve --scripted`` for one cell on ``root/state``, clients' default workspace
    ``root/workspace``; call it for a connected client."""

    def __init__(self, cell: Cell, root: Path, *extra: str) -> None:
        self.cell = cell
        self.root = root
        self.state_dir = root / "state"
        self.workspace = root / "workspace"
        self.extra = extra
        self.stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._stack = AsyncExitStack()
        self._client: Client | None = None  # stdio: the process's one client
        self._on_log: LoggingFnT | None = None  # stdio: the current test's logging callback
        self._url = ""
        self._drain: asyncio.Task[None] | None = None  # http: reads the server's stderr

    def fresh(self, root: Path) -> MatrixServer:
        """Another server of this cell, with these options, on ``root`` (not started)."""
        return MatrixServer(self.cell, root, *self.extra)

    def _argv(self) -> list[str]:
        return server_argv(
            self.state_dir, "--scripted", "--workspace", str(self.workspace), *self.extra
        )

    async def __aenter__(self) -> MatrixServer:
        self.workspace.mkdir(parents=True, exist_ok=True)
        _RUNNING.add(self.state_dir)
        try:
            if self.cell.transport == "stdio":
                argv = self._argv()
                params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
                self._client = await self._stack.enter_async_context(
                    open_client(params, self.cell.revision, **self._client_kwargs(self._log))
                )
            else:
                self._url = await self._start_http()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        workers = codex_of(self.state_dir)
        try:
            await self._stack.aclose()
            gone = await asyncio.to_thread(wait_gone, workers, STOP_TIMEOUT)
            left = codex_of(self.state_dir)
            assert gone, f"{self.cell} server left Codex {left} behind: {''.join(self.stderr)}"
        finally:
            _RUNNING.discard(self.state_dir)

    async def _start_http(self) -> str:
        argv = [*self._argv(), "--transport", "http", "--port", "0"]
        env = {**os.environ, "CODEX_MCP_WRAPPER_TOKEN": HTTP_TOKEN}
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        self._stack.push_async_callback(self._stop_http, proc)
        assert proc.stderr is not None
        match = None
        async with asyncio.timeout(START_TIMEOUT):
            while line := (await proc.stderr.readline()).decode(errors="replace"):
                self.stderr.append(line)
                if match := re.search(r"MCP server on (http://\S+/mcp)", line):
                    break
        assert match, f"the HTTP server did not start: {''.join(self.stderr)}"
        # Keep reading its stderr, so its log lines never fill the pipe and stall it.
        self._drain = asyncio.create_task(self._read_stderr(proc.stderr))
        return match.group(1)

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.stderr.append(line.decode(errors="replace"))

    async def _stop_http(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"{self.cell} server ignored SIGTERM") from None
        finally:
            if self._drain is not None:  # ends at the stderr's end, the process's exit
                await asyncio.wait_for(self._drain, STOP_TIMEOUT)

    def _client_kwargs(self, logging_callback: LoggingFnT | None) -> dict[str, Any]:
        return {"logging_callback": logging_callback, "log_level": "info"}

    async def _log(self, params: mt.LoggingMessageNotificationParams) -> None:
        if self._on_log is not None:
            await self._on_log(params)

    @asynccontextmanager
    async def __call__(self, logging_callback: LoggingFnT | None = None) -> AsyncIterator[Client]:
        """A client of this server: over stdio its one client (log messages go to
        ``logging_callback`` meanwhile), over HTTP a new one. Both ask for ``info`` logs."""
        if self._client is not None:
            self._on_log = logging_callback
            try:
                yield self._client
            finally:
                self._on_log = None
            return
        origin = self._url.removesuffix("/mcp")  # the server's own origin, which it accepts
        headers = {"Authorization": f"Bearer {HTTP_TOKEN}", "Origin": origin}
        async with AsyncExitStack() as stack:
            http = await stack.enter_async_context(
                httpx2.AsyncClient(headers=headers, timeout=HTTP_READ_TIMEOUT)
            )
            transport = streamable_http_client(self._url, http_client=http)
            kwargs = self._client_kwargs(logging_callback)
            yield await stack.enter_async_context(
                open_client(transport, self.cell.revision, **kwargs)
            )
