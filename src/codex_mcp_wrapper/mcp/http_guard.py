"""What guards the HTTP transport: bearer tokens, each an identity (``ClientTokens``), and
the Host/Origin allowlist against DNS rebinding (``host_allowlist``: the bind address,
loopback, the machine's own names for a wildcard bind, and ``--allow-host`` values read by
``parse_allowed_host``)."""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import ipaddress
import re
import socket
import sys
from collections.abc import Iterable, Mapping

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from codex_mcp_wrapper.engine.access import ANONYMOUS, Identity
from codex_mcp_wrapper.errors import InputError
from codex_mcp_wrapper.mcp.identity import SCOPE_KEY

LOOPBACK_NAMES = ("localhost",)
WILDCARD_BINDS = ("0.0.0.0", "::")
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
def parse_allowed_host(value: str) -> tuple[str, int | None]:
    """An ``--allow-host`` value (``NAME``, ``NAME:PORT``, ``ADDRESS``, ``[IPV6]:PORT``) as the
    host part of a Host header (IPv6 in brackets) and its port (None: the server's)."""
    bad = InputError(
        f"--allow-host '{value}' is not HOST or HOST:PORT (a host name or an IP address, "
        "IPv6 in brackets when a port follows; no scheme, no path)."
    )
    text = value.strip()
    port_text: str | None = None
    if text.startswith("["):
        address, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise bad
        port_text = rest[1:] if rest else None
        name = address
    elif text.count(":") > 1:  # a bare IPv6 address: no port
        name = text
    else:
        name, sep, after = text.partition(":")
        port_text = after if sep else None
    if ":" in name:
        try:
            name = f"[{ipaddress.IPv6Address(name).compressed}]"
        except ValueError:
            raise bad from None
    elif not _NAME.fullmatch(name):
        raise bad
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad
        port = int(port_text)
    return name, port


def _sockaddr_ip(pointer: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    raw = ctypes.string_at(pointer, 16)
    family = int.from_bytes(raw[:2], sys.byteorder) if sys.platform == "linux" else raw[1]
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[4:8])
    if family == socket.AF_INET6:
        return ipaddress.IPv6Address(ctypes.string_at(pointer, 24)[8:24])
    return None


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
]


def interface_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every IP address of the machine's network interfaces (getifaddrs(3)); empty when the
    C library cannot tell."""
    try:
        libc = ctypes.CDLL(None)
        head = ctypes.POINTER(_IfAddrs)()
        if libc.getifaddrs(ctypes.byref(head)) != 0:
            return set()
    except (OSError, AttributeError):
        return set()
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    try:
        node = head
        while node:
            entry = node.contents
            if entry.ifa_addr:
                address = _sockaddr_ip(entry.ifa_addr)
                if address is not None:
                    found.add(address)
            node = entry.ifa_next
    finally:
        libc.freeifaddrs(head)
    return found


def machine_names(bind_host: str) -> list[str]:
    """For a wildcard bind: the host name and the non-loopback addresses clients may use to
    reach this machine (IPv4 for ``0.0.0.0``; IPv4 and IPv6 for ``::``, which accepts both).
    IPv6 link-local addresses need a zone id no Host header carries, so they are left out."""
    names = {socket.gethostname()} - {"", "localhost"}
    for address in interface_addresses():
        if address.is_loopback or address.is_link_local:
            continue
        if address.version == 4:
            names.add(str(address))
        elif bind_host == "::":
            names.add(f"[{address.compressed}]")
    return sorted(names)


def host_allowlist(
    bind_host: str, port: int, extra: Iterable[tuple[str, int | None]]
) -> TransportSecuritySettings:
    """Host and Origin values accepted (DNS-rebinding protection): the bind address,
    loopback, the machine's own names for a wildcard bind, and ``extra`` (``--allow-host``),
    each on the server's port unless it names one."""
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    entries: set[tuple[str, int]] = {
        (name, port) for name in (shown, "127.0.0.1", "localhost", "[::1]")
    }
    if bind_host in WILDCARD_BINDS:
        entries |= {(name, port) for name in machine_names(bind_host)}
    entries |= {(name, given_port or port) for name, given_port in extra}
    # Host names are case-insensitive and clients tend to send them in lower case: a machine
    # named MyBox is reached as mybox. Each name is accepted as given and in lower case.
    entries |= {(name.lower(), at) for name, at in entries}
    hosts: set[str] = set()
    origins: set[str] = set()
    for name, at in entries:
        hosts.add(f"{name}:{at}")
        origins |= {f"http://{name}:{at}", f"https://{name}:{at}"}
        # Default ports are left out of Host and Origin (behind a proxy on 80 or 443).
        if at == 80:
            hosts.add(name)
            origins.add(f"http://{name}")
        elif at == 443:
            hosts.add(name)
            origins.add(f"https://{name}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(hosts),
        allowed_origins=sorted(origins),
    )
