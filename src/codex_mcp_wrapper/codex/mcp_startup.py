"""Waiting for a thread's MCP servers to start, from Codex's startup notifications."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from codex_mcp_wrapper.codex.jsonrpc import CLOSED, Inbox, Notification
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
