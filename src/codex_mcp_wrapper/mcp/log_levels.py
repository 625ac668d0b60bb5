"""MCP logging as the spec has it: the server declares the ``logging`` capability by serving
``logging/setLevel``, and sends a session only the log messages at or above the level it set
(``info`` until it sets one). On 2026-07-28 logging is a per-request opt-in that the SDK
applies itself (``setLevel`` is no method of that revision)."""

from __future__ import annotations

import weakref
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import EmptyResult, SetLevelRequestParams

SEVERITY = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
DEFAULT_LEVEL = "info"


def _connection(session: Any) -> Any:
    """What a level belongs to: the SDK builds a session object per request, over one
    connection object per client (not public API; the session itself when it is absent)."""
    return getattr(session, "_connection", session)


class LogLevels:
    """The level each session set with ``logging/setLevel``."""

    def __init__(self) -> None:
        self._levels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def install(self, server: MCPServer) -> None:
        async def set_level(
            ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams
        ) -> EmptyResult:
            self._levels[_connection(ctx.session)] = params.level
            return EmptyResult()

        # MCPServer has no public hook for it; the low-level server's is the SDK's own way
        # (its capabilities are derived from the handlers present).
        server._lowlevel_server.add_request_handler(
            "logging/setLevel", SetLevelRequestParams, set_level
        )

    def wants(self, session: Any, level: str) -> bool:
        """Whether ``session`` asked for messages of ``level``."""
        floor = self._levels.get(_connection(session), DEFAULT_LEVEL)
        return SEVERITY.index(level) >= SEVERITY.index(floor)
