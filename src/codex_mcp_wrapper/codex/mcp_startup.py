"""Waiting for a thread's MCP servers to start, from Codex's startup notifications."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codex_mcp_wrapper.codex.attempt import McpServersFailed
from codex_mcp_wrapper.codex.jsonrpc import CLOSED, Inbox, Notification
from codex_mcp_wrapper.engine.seams import EventSink, TaskRequest
from codex_mcp_wrapper.errors import WorkerDied


async def await_mcp_servers(
    inbox: Inbox,
    thread_id: str,
    servers: dict[str, dict[str, Any]],
    forward: Callable[[str, dict[str, Any]], None],
    default_timeout: float,
) -> list[str]:
    """Consume notifications until every named server is ``ready`` or has failed; each
    notification of the thread is passed to ``forward``. Returns the failures, if any."""
    pending = set(servers)
    limit = max(
        [default_timeout] + [float(s.get("startup_timeout_sec") or 0) for s in servers.values()]
    )
    failures: list[str] = []
    try:
        async with asyncio.timeout(limit):
            while pending:
                message = await inbox.get()
                if message is CLOSED:
                    raise WorkerDied("the worker exited while its MCP servers started")
                assert isinstance(message, Notification)
                if message.params.get("threadId") not in (None, thread_id):
                    continue
                forward(message.method, message.params)
                if message.method != "mcpServer/startupStatus/updated":
                    continue
                name, status = message.params.get("name"), message.params.get("status")
                if name in pending and status != "starting":
                    pending.discard(name)
                    if status != "ready":
                        failures.append(f"{name} ({status}: {message.params.get('error')})")
    except TimeoutError:
        failures += [f"{name} (not ready after {limit:g} s)" for name in sorted(pending)]
    return failures


async def task_servers_ready(
    inbox: Inbox,
    request: TaskRequest,
    thread_id: str,
    sink: EventSink,
    timeout: float,
    log_path: Path,
) -> None:
    """Wait until the task's MCP servers are up (their events go to ``sink``): Codex does not
    wait for them before its first model request, so a slow server would silently be missing
    from the turn. ``McpServersFailed`` names those that did not start."""
    servers = request.spec.config.get("mcp_servers") or {}
    if not servers:
        return

    def forward(method: str, params: dict[str, Any]) -> None:
        sink.codex_event(request.task_id, method, params)

    failures = await await_mcp_servers(inbox, thread_id, servers, forward, timeout)
    if failures:
        raise McpServersFailed(
            f"MCP server(s) did not start: {'; '.join(failures)}; check their command and "
            f"env in mcp_servers (Codex's log: {log_path})."
        )
