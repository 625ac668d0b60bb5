"""Which client a request comes from: the identity ``http_guard.ClientTokens`` put in the
ASGI scope of each HTTP request (the token it presented), or ``stdio`` for the process that
launched a stdio server (its requests carry no HTTP request)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from codex_mcp_wrapper.engine.access import ANONYMOUS, STDIO, Identity

SCOPE_KEY = "codex_wrapper_identity"


def identity_of(request: Any) -> Identity:
    """The identity of a request (a Starlette request, or None on stdio)."""
    if request is None:
        return STDIO
    found = (getattr(request, "scope", None) or {}).get("state", {}).get(SCOPE_KEY)
    return found if isinstance(found, Identity) else ANONYMOUS


def client_of(ctx: Context) -> Identity:
    """The identity of the client making a tool call or reading a resource."""
    return identity_of(ctx.request_context.request)
