"""What guards the HTTP transport: bearer tokens, each an identity (``ClientTokens``), and
the Host/Origin allowlist against DNS rebinding (``same_origin.host_allowlist``, handed to the
SDK's check of the MCP endpoint as ``transport_security``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from codex_mcp_wrapper.engine.access import ANONYMOUS, Identity
from codex_mcp_wrapper.mcp.identity import SCOPE_KEY
from codex_mcp_wrapper.same_origin import Allowlist


# -- authentication and identities --------------------------------------------------------
class ClientTokens:
    """Who each HTTP request comes from. With tokens, a request must carry
    ``Authorization: Bearer TOKEN`` of one of them and is that token's identity (the scheme
    name is case-insensitive, RFC 7235; tokens are compared in constant time, as SHA-256
    digests, so not even their length shows in the timing); without, every request is the
    one anonymous identity (loopback only, see ``serve_http``).

    The identity goes into the ASGI scope (``identity.SCOPE_KEY``, read by the tools) and as
    ``scope["user"]``, by which the SDK binds an MCP session to the identity that opened it:
    another token presenting its session id is answered "Session not found"."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, Identity]) -> None:
        self.app = app
        self.digests = [(_digest(token), who) for token, who in tokens.items()]

    def identify(self, header: bytes) -> Identity | None:
        scheme, _, credentials = header.strip().partition(b" ")
        given = hashlib.sha256(credentials.strip()).digest()
        found = None
        for digest, who in self.digests:  # every digest compared, so every refusal costs the same
            if hmac.compare_digest(given, digest):
                found = who
        return found if scheme.lower() == b"bearer" else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            who: Identity | None = ANONYMOUS
            if self.digests:
                who = self.identify(dict(scope.get("headers") or []).get(b"authorization", b""))
            if who is None:
                await _refuse(send)
                return
            identified(scope, who)
        await self.app(scope, receive, send)


def identified(scope: Scope, who: Identity) -> None:
    """Put ``who`` into a request's ASGI scope, where the tools and pages read it."""
    scope["user"] = AuthenticatedUser(AccessToken(token="", client_id=who.name, scopes=[]))
    scope["state"] = {**(scope.get("state") or {}), SCOPE_KEY: who}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
        }
    )
    await send({"type": "http.response.body", "body": b"a bearer token is required\n"})


# -- Host/Origin allowlist -------------------------------------------------------------------
def transport_security(allowed: Allowlist) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding check of the MCP endpoint, over the same allowlist as the
    pages' ``SameOriginGuard``."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(allowed.hosts),
        allowed_origins=sorted(allowed.origins),
    )
